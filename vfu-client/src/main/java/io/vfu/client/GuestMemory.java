package io.vfu.client;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.Mapping;
import io.vfu.core.linux.MemFd;
import io.vfu.core.protocol.DirtyBitmap;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.protocol.Wire;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.TreeMap;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Client ("guest") memory a vfio-user device may DMA into, addressed by IOVA (protocol reference §7).
 *
 * <p>Two kinds of {@link Region}:
 * <ul>
 * <li>{@link #allocate memfd-backed}: the memfd is passed with DMA_MAP, so the server maps it and accesses it
 *     directly (such writes are invisible to the client; use DMA logging, §11.4, to learn about them);</li>
 * <li>{@link #allocateWithoutFd fd-less}: nothing is passed; the server must use DMA_READ/DMA_WRITE messages,
 *     which the client serves from this object.</li>
 * </ul>
 *
 * <p>Serving ({@link VfioUserClient} does it on the connection's reader thread) is bounds- and
 * permission-checked: a range not inside one region that is currently DMA-mapped → EFAULT; DMA_WRITE into a
 * region mapped without {@code WRITE} (or DMA_READ without {@code READ}) → EPERM. Every byte written by a
 * DMA_WRITE marks its pages dirty in the region's bitmap ({@link Region#readAndClearDirty()}), since the
 * server does not log message-based DMA (§11.4: "the client … must mark those pages dirty itself").
 *
 * <p>Thread-safe. Regions are added and removed under a write lock; serving holds the read lock, so a region
 * is never freed while a DMA access is copying from or into it. Closing the memory frees every region.
 */
public final class GuestMemory implements AutoCloseable {
    /** Default dirty-tracking granularity: 4 KiB. */
    public static final long DEFAULT_PAGE_SIZE = 4096;

    private final long pageSize;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final TreeMap<Long, Region> byIova = new TreeMap<>(Long::compareUnsigned);
    private boolean closed;

    /** Memory with dirty tracking at {@link #DEFAULT_PAGE_SIZE}. */
    public GuestMemory() {
        this(DEFAULT_PAGE_SIZE);
    }

    /** Memory with dirty tracking at {@code pageSize} (a power of two ≥ 8). */
    public GuestMemory(long pageSize) {
        if (pageSize < 8 || !DirtyBitmap.isPowerOfTwo(pageSize)) {
            throw new IllegalArgumentException("page size must be a power of two >= 8: " + pageSize);
        }
        this.pageSize = pageSize;
    }

    /** The dirty-tracking page size. */
    public long pageSize() {
        return pageSize;
    }

    /**
     * Adds a memfd-backed region of {@code size} zeroed bytes at {@code iova}.
     *
     * @param deviceRead  whether the device may read it (DMA_MAP flag READ)
     * @param deviceWrite whether the device may write it (DMA_MAP flag WRITE)
     * @throws IllegalArgumentException size ≤ 0, address overflow, or overlap with an existing region
     */
    public Region allocate(long iova, long size, boolean deviceRead, boolean deviceWrite) throws IOException {
        checkRange(iova, size);
        MemFd memFd = MemFd.create("vfu-guest-" + Long.toHexString(iova), size);
        Mapping mapping;
        try {
            mapping = memFd.map(0, size, true);
        } catch (IOException | RuntimeException e) {
            memFd.close();
            throw e;
        }
        return add(new Region(this, iova, size, deviceRead, deviceWrite, mapping.segment(), memFd, mapping, null));
    }

    /**
     * Adds a region of {@code size} zeroed bytes at {@code iova} that is not backed by a passable fd: the
     * server reaches it only through DMA_READ/DMA_WRITE messages.
     *
     * @throws IllegalArgumentException size ≤ 0, address overflow, or overlap with an existing region
     */
    public Region allocateWithoutFd(long iova, long size, boolean deviceRead, boolean deviceWrite) {
        checkRange(iova, size);
        Arena arena = Arena.ofShared();
        MemorySegment segment;
        try {
            segment = arena.allocate(size, 64);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
        return add(new Region(this, iova, size, deviceRead, deviceWrite, segment, null, null, arena));
    }

    private void checkRange(long iova, long size) {
        if (size <= 0) {
            throw new IllegalArgumentException("region size must be positive: " + size);
        }
        if (Long.compareUnsigned(iova + size, iova) < 0 && iova + size != 0) {
            throw new IllegalArgumentException("iova " + Wire.hex(iova) + " + size " + Wire.hex(size) + " overflows");
        }
        if (DirtyBitmap.pageCount(size, pageSize) > (long) Integer.MAX_VALUE * 64) {
            throw new IllegalArgumentException("region too large for dirty tracking: " + size);
        }
    }

    private Region add(Region r) {
        lock.writeLock().lock();
        try {
            if (closed) {
                r.free();
                throw new IllegalStateException("guest memory is closed");
            }
            Map.Entry<Long, Region> below = byIova.floorEntry(r.iova);
            Map.Entry<Long, Region> above = byIova.ceilingEntry(r.iova);
            if ((below != null && below.getValue().contains(r.iova))
                    || (above != null && Long.compareUnsigned(above.getKey() - r.iova, r.size) < 0)) {
                r.free();
                throw new IllegalArgumentException("region " + r + " overlaps an existing region");
            }
            byIova.put(r.iova, r);
            return r;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** The region starting at {@code iova}, if any. */
    public Optional<Region> region(long iova) {
        lock.readLock().lock();
        try {
            return Optional.ofNullable(byIova.get(iova));
        } finally {
            lock.readLock().unlock();
        }
    }

    /** All regions in IOVA order (a snapshot). */
    public List<Region> regions() {
        lock.readLock().lock();
        try {
            return List.copyOf(new ArrayList<>(byIova.values()));
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * Removes and frees a region. Unmap it from the device first ({@link VfioUserClient#dmaUnmap(Region)}):
     * a server holding its fd mapping keeps the memfd's pages alive, but no more DMA messages are served.
     * Waits for a DMA message being served to end (a DMA_READ reply being sent from guest memory, a DMA_WRITE's
     * data being received into it): a server that stalls in the middle of one holds this up until its
     * connection ends ({@link VfioUserClient#close} ends the connections before it frees the memory).
     */
    public void remove(Region region) {
        lock.writeLock().lock();
        try {
            if (byIova.get(region.iova) == region) {
                byIova.remove(region.iova);
                region.free();
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Frees every region. */
    @Override
    public void close() {
        lock.writeLock().lock();
        try {
            closed = true;
            for (Region r : byIova.values()) {
                r.free();
            }
            byIova.clear();
        } finally {
            lock.writeLock().unlock();
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Serving (package-private, called from the connection reader threads)

    /**
     * DMA_READ: copies {@code count} bytes at {@code address} to {@code dst} (at least count bytes).
     *
     * @throws VfioUserException EFAULT (not inside one mapped region), EPERM (region not readable by the device)
     */
    void dmaRead(long address, long count, MemorySegment dst) {
        MemorySegment view = acquireReadView(address, count);
        try {
            MemorySegment.copy(view, 0, dst, 0, count);
        } finally {
            releaseReadView();
        }
    }

    /**
     * DMA_READ without a copy: the {@code count} bytes at {@code address} as a view of their region, for the reply
     * to be sent straight from guest memory. On success this thread holds the memory's read lock until
     * {@link #releaseReadView()}: the region cannot be removed (its memory unmapped) while the view is in use.
     *
     * @throws VfioUserException EFAULT (not inside one mapped region), EPERM (region not readable by the device);
     *                           then no lock is held
     */
    MemorySegment acquireReadView(long address, long count) {
        lock.readLock().lock();
        boolean held = false;
        try {
            Region r = findFor(address, count, false);
            MemorySegment view = r.segment.asSlice(address - r.iova, count);
            r.bytesRead.add(count);
            held = true;
            return view;
        } finally {
            if (!held) {
                lock.readLock().unlock();
            }
        }
    }

    /** Ends {@link #acquireReadView} (same thread). */
    void releaseReadView() {
        lock.readLock().unlock();
    }

    /**
     * DMA_WRITE without a copy: where the {@code count} bytes at {@code address} go, a view of their region, for
     * the command's data to be received straight into guest memory. On success this thread holds the memory's
     * read lock until {@link #releaseWriteView}: the region cannot be removed while the data lands in it.
     *
     * @throws VfioUserException EFAULT (not inside one mapped region), EPERM (region read-only for the device);
     *                           then no lock is held
     */
    WriteView acquireWriteView(long address, long count) {
        lock.readLock().lock();
        boolean held = false;
        try {
            Region r = findFor(address, count, true);
            long offset = address - r.iova;
            WriteView view = new WriteView(r, offset, r.segment.asSlice(offset, count));
            held = true;
            return view;
        } finally {
            if (!held) {
                lock.readLock().unlock();
            }
        }
    }

    /**
     * Ends {@link #acquireWriteView} (same thread): the pages are marked dirty, also when not all the data came
     * ({@code complete} false: whatever landed must still be migrated); only complete writes are counted. The
     * region is the one the view was taken from, even if the device unmapped it meanwhile.
     */
    void releaseWriteView(WriteView view, boolean complete) {
        try {
            view.region.markDirty(view.offset, view.segment.byteSize());
            if (complete) {
                view.region.bytesWritten.add(view.segment.byteSize());
            }
        } finally {
            lock.readLock().unlock();
        }
    }

    /** A DMA_WRITE's destination in {@code region} at {@code offset} (see {@link #acquireWriteView}). */
    record WriteView(Region region, long offset, MemorySegment segment) {
    }

    /**
     * DMA_WRITE: copies {@code data} to {@code address} and marks the pages dirty.
     *
     * @throws VfioUserException EFAULT (not inside one mapped region), EPERM (region read-only for the device)
     */
    void dmaWrite(long address, MemorySegment data) {
        WriteView view = acquireWriteView(address, data.byteSize());
        try {
            view.segment.copyFrom(data);
        } finally {
            releaseWriteView(view, true);
        }
    }

    /** The region a device access of {@code count} bytes at {@code address} goes to, if the device may make it. */
    private Region findFor(long address, long count, boolean write) {
        String what = write ? "DMA_WRITE" : "DMA_READ";
        Region r = find(address, count, what);
        if (write ? !r.deviceWrite : !r.deviceRead) {
            throw new VfioUserException(Errno.EPERM, what + ": " + Wire.hex(address) + " in " + r
                    + ", which the device may not " + (write ? "write" : "read"));
        }
        return r;
    }

    private Region find(long address, long count, String what) {
        Map.Entry<Long, Region> e = byIova.floorEntry(address);
        Region r = e == null ? null : e.getValue();
        long end = address + count;
        if (r == null || !r.mapped || !r.contains(address) || Long.compareUnsigned(end, address) < 0 && end != 0
                || Long.compareUnsigned(address - r.iova + count, r.size) > 0) {
            throw new VfioUserException(Errno.EFAULT, what + ": " + Wire.hex(address) + " + " + count
                    + " is not inside one DMA-mapped region");
        }
        return r;
    }

    /**
     * One contiguous piece of {@link GuestMemory} at an IOVA.
     *
     * <p>{@link #segment()} is the client's view of the memory (valid until the region is removed or the memory
     * closed). {@link #mapped()} tells whether it is currently DMA-mapped on the device (set by
     * {@link VfioUserClient#dmaMap(Region)}, cleared by {@link VfioUserClient#dmaUnmap(Region)}); only mapped
     * regions are served.
     */
    public static final class Region {
        private final GuestMemory owner;
        private final long iova;
        private final long size;
        private final boolean deviceRead;
        private final boolean deviceWrite;
        private final MemorySegment segment;
        private final MemFd memFd;
        private final Mapping mapping;
        private final Arena arena;
        private final long[] dirty;
        private final LongAdder bytesRead = new LongAdder();
        private final LongAdder bytesWritten = new LongAdder();
        private volatile boolean mapped;

        private Region(GuestMemory owner, long iova, long size, boolean deviceRead, boolean deviceWrite,
                       MemorySegment segment, MemFd memFd, Mapping mapping, Arena arena) {
            this.owner = owner;
            this.iova = iova;
            this.size = size;
            this.deviceRead = deviceRead;
            this.deviceWrite = deviceWrite;
            this.segment = segment;
            this.memFd = memFd;
            this.mapping = mapping;
            this.arena = arena;
            this.dirty = new long[(int) ((DirtyBitmap.pageCount(size, owner.pageSize) + 63) / 64)];
        }

        /** First IOVA. */
        public long iova() {
            return iova;
        }

        /** Length in bytes. */
        public long size() {
            return size;
        }

        /** Whether the device may read it (DMA_MAP flag READ). */
        public boolean deviceReadable() {
            return deviceRead;
        }

        /** Whether the device may write it (DMA_MAP flag WRITE). */
        public boolean deviceWritable() {
            return deviceWrite;
        }

        /** The memory, as the client sees it. */
        public MemorySegment segment() {
            return segment;
        }

        /** The memfd passed with DMA_MAP, or empty for a message-only region. */
        public OptionalInt fd() {
            return memFd == null ? OptionalInt.empty() : OptionalInt.of(memFd.fd());
        }

        /** Whether the device currently has it DMA-mapped. */
        public boolean mapped() {
            return mapped;
        }

        void mapped(boolean value) {
            this.mapped = value;
        }

        boolean contains(long address) {
            return Long.compareUnsigned(address - iova, size) < 0;
        }

        synchronized void markDirty(long offset, long length) {
            if (length == 0) {
                return;
            }
            long first = offset / owner.pageSize;
            long last = (offset + length - 1) / owner.pageSize;
            for (long p = first; p <= last; p++) {
                dirty[(int) (p >>> 6)] |= 1L << (p & 63);
            }
        }

        /**
         * The pages written by DMA_WRITE messages since the last call, as a {@link DirtyBitmap} (bit n = page n
         * of {@link GuestMemory#pageSize()} bytes from {@link #iova()}), and clears them.
         */
        public synchronized MemorySegment readAndClearDirty() {
            MemorySegment out = MemorySegment.ofArray(new byte[dirty.length * 8]);
            for (int i = 0; i < dirty.length; i++) {
                out.set(Wire.U64, i * 8L, dirty[i]);
                dirty[i] = 0;
            }
            return out;
        }

        /**
         * Bytes the device has read from this region with DMA_READ messages served by the client, since the region
         * was added (direct accesses through its fd are not seen). Lets a caller wait until a device's DMA through
         * messages is complete.
         */
        public long dmaBytesRead() {
            return bytesRead.sum();
        }

        /** Bytes the device has written to this region with DMA_WRITE messages served by the client, since it was added. */
        public long dmaBytesWritten() {
            return bytesWritten.sum();
        }

        /** The number of pages currently marked dirty. */
        public synchronized long dirtyPageCount() {
            long n = 0;
            for (long w : dirty) {
                n += Long.bitCount(w);
            }
            return n;
        }

        /** Whether page {@code page} (0-based from {@link #iova()}) is marked dirty. */
        public synchronized boolean isDirty(long page) {
            return page >= 0 && page < (long) dirty.length * 64 && (dirty[(int) (page >>> 6)] & (1L << (page & 63))) != 0;
        }

        private void free() {
            mapped = false;
            if (mapping != null) {
                mapping.close();
            }
            if (memFd != null) {
                memFd.close();
            }
            if (arena != null) {
                arena.close();
            }
        }

        @Override
        public String toString() {
            return "region [" + Wire.hex(iova) + ", +" + Wire.hex(size) + ")" + (memFd != null ? " memfd" : "")
                    + (deviceRead ? " R" : "") + (deviceWrite ? " W" : "");
        }
    }
}
