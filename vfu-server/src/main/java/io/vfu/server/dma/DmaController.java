package io.vfu.server.dma;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.Fds;
import io.vfu.core.linux.LinuxException;
import io.vfu.core.linux.Mapping;
import io.vfu.core.linux.MemFd;
import io.vfu.core.protocol.DmaMapRequest;
import io.vfu.core.protocol.DmaUnmapRequest;
import io.vfu.core.protocol.FeaturePayload;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.Dma;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's table of client memory (DMA_MAP / DMA_UNMAP, protocol reference §7), device access to it
 * ({@link Dma}), and dirty-page logging (DEVICE_FEATURE DMA_LOGGING_START / STOP / REPORT, §11.4).
 *
 * <h2>Mappings</h2>
 * Regions are kept in a {@link TreeMap} keyed by IOVA in unsigned order: lookup, insert and delete are
 * O(log n), so the table scales to any {@code maxMappings} (QEMU announces 65535, see
 * {@link #DEFAULT_MAX_MAPPINGS}).
 * <ul>
 * <li><b>With an fd</b>: the range is mmap'ed {@code MAP_SHARED} at DMA_MAP time (so mmap failures are
 *     reported to the client with mmap's errno, like libvfio-user), from {@code offset} rounded down to the
 *     host page size, with {@code PROT_WRITE} only if the WRITE flag is set. The range must lie within the
 *     file's current size (EINVAL otherwise), because touching a page past the end of the file raises
 *     SIGBUS and kills the JVM. The fd is closed as soon as the mapping exists: the mapping keeps the memory
 *     alive, and 65535 mappings do not hold 65535 descriptors. A region mapped with flags 0 is not mmap'ed.</li>
 * <li><b>Without an fd</b> (fd -1): accesses become DMA_READ / DMA_WRITE messages through the current
 *     {@link DmaMessenger}, split by its {@link DmaMessenger#maxTransferSize()}. {@code offset} is ignored
 *     (but compared for the duplicate rule).</li>
 * <li><b>fd ownership</b>: {@link #map} always consumes the fd, on success and on every failure.</li>
 * <li><b>Overlap</b> (ambiguity #9): an exact duplicate (same address, size, offset, flags, fd presence and
 *     file identity, st_dev + st_ino, when both are known) succeeds and changes nothing; any other overlap
 *     fails with EEXIST, as the specification says (libvfio-user: EINVAL).</li>
 * <li><b>Table full</b>: ENOSPC (the kernel's answer when its DMA entry limit is reached; libvfio-user
 *     answers EINVAL).</li>
 * <li><b>Unmap</b>: exact (address, size) match, else ENOENT; flag ALL unmaps everything.</li>
 * </ul>
 *
 * <h2>Device access</h2>
 * An access may span adjacent mappings: it is checked as a whole first (EFAULT if any byte is unmapped,
 * EPERM if a mapping lacks READ for a read or WRITE for a write), then split per mapping. Direct copies run
 * under the read side of a read-write lock; unmap takes the write side, so it waits for in-flight direct
 * copies and no copy starts on an unmapped region (the copy fails with EFAULT instead). Message accesses hold
 * no lock while waiting for the client. A messenger {@link IOException} becomes EIO; no messenger (no client)
 * is EIO too. Views from {@link #directView} die with the mapping: later accesses through them throw
 * {@link IllegalStateException} (the memory belongs to a shared arena, so this never crashes the JVM). If a
 * view is in use by a native call when the region is unmapped, the munmap is retried at the next
 * unmap/close (the address range stays reserved until then).
 *
 * <h2>Dirty logging</h2>
 * <ul>
 * <li>Tracking granularity = max(requested page_size, {@value #MIN_TRACKING_PAGE_SIZE}), echoed in the START
 *     reply. page_size 0 or not a power of two: EINVAL.</li>
 * <li>Ranges are honoured (libvfio-user ignores them): only writes inside them are logged, and REPORT must
 *     stay within their union (EINVAL). num_ranges 0 logs every write anywhere, including in regions mapped
 *     later. Empty or overlapping ranges: EINVAL. More than {@value #MAX_LOGGED_RANGES} ranges, or ranges
 *     whose bitmaps would exceed {@link #MAX_BITMAP_BYTES}: E2BIG.</li>
 * <li>Both fd-backed and message regions are logged (libvfio-user logs only fd-backed ones).</li>
 * <li>START while logging: the same START again (page_size and ranges; reserved is ignored) is an
 *     idempotent success (libvfio-user does the same for an equal page size); anything else is EINVAL. STOP while not logging: no-op success (as the kernel).</li>
 * <li>REPORT: EINVAL when not logging, for length 0, or outside the logged ranges; E2BIG if the bitmap
 *     would exceed {@link #MAX_BITMAP_BYTES} (checked before allocating). Any power-of-two page size is
 *     accepted: coarser pages OR the tracking bits, finer ones replicate them. Read-and-clear: only the
 *     tracking pages entirely inside the reported range are cleared (an edge tracking page only partly
 *     inside is reported and kept, so nothing is ever lost).</li>
 * <li>{@link #write} and {@link #markDirty} mark pages; {@link #directView} does not (not even for
 *     {@code write = true}: the device writes later, possibly after a REPORT, so it must call
 *     {@link #markDirty} after writing, as the {@link Dma} contract says).</li>
 * </ul>
 *
 * <h2>Threads</h2>
 * {@link #map}, {@link #unmap}, the logging calls and {@link #messenger} come from the connection thread
 * (they are serialised anyway); {@link #read}, {@link #write}, {@link #directView} and {@link #markDirty}
 * may run on any thread.
 */
public final class DmaController implements Dma, AutoCloseable {
    /** Default table size: the {@code max_dma_maps} QEMU announces. */
    public static final int DEFAULT_MAX_MAPPINGS = 65535;
    /** Finest dirty-tracking granularity: a finer START page size is replaced by this one in the echo. */
    public static final long MIN_TRACKING_PAGE_SIZE = 4096;
    /**
     * Largest dirty bitmap: for one REPORT, and for all START ranges together at the tracking page size.
     * 256 MiB, QEMU's {@code max_bitmap_size} (8 TiB at 4 KiB pages).
     */
    public static final long MAX_BITMAP_BYTES = 256L << 20;
    /** Most DMA_LOGGING_START ranges accepted. */
    public static final int MAX_LOGGED_RANGES = 65535;

    private static final Logger LOG = LoggerFactory.getLogger(DmaController.class);

    private final int maxMappings;
    private final Object mutex = new Object();
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    /** Guarded by {@link #lock} (writes also hold {@link #mutex}). */
    private final TreeMap<Long, DmaRegion> regions = new TreeMap<>(Long::compareUnsigned);
    /** Mappings whose munmap failed because a native call was using them; retried. Guarded by mutex. */
    private final List<Mapping> pendingClose = new ArrayList<>();
    private volatile DmaMessenger messenger;
    private volatile io.vfu.server.DmaListener listener = new io.vfu.server.DmaListener() { };
    private volatile DirtyLog log;
    private boolean closed;

    /**
     * @param messenger   reaches regions mapped without an fd; may be null until a client connects
     * @param maxMappings most regions at once (&gt; 0), e.g. {@link #DEFAULT_MAX_MAPPINGS}
     */
    public DmaController(DmaMessenger messenger, int maxMappings) {
        if (maxMappings <= 0) {
            throw new IllegalArgumentException("maxMappings must be positive: " + maxMappings);
        }
        this.messenger = messenger;
        this.maxMappings = maxMappings;
    }

    /** A controller without messenger and with {@link #DEFAULT_MAX_MAPPINGS}. */
    public DmaController() {
        this(null, DEFAULT_MAX_MAPPINGS);
    }

    /** Sets who is told about mappings coming and going (the device). */
    public void listener(io.vfu.server.DmaListener l) {
        this.listener = Objects.requireNonNull(l);
    }

    /** Replaces the messenger, e.g. when a client (re)connects; null when none is connected. */
    public void messenger(DmaMessenger m) {
        this.messenger = m;
    }

    // ------------------------------------------------------------------------------------------ map/unmap

    /**
     * DMA_MAP. Takes ownership of {@code fd}: it is closed before this method returns or throws.
     *
     * @param fd the descriptor received with the message, or -1 (any negative value) for none
     * @throws VfioUserException EINVAL (size 0, overflowing range, bad flags, offset or range outside the
     *                           file), EEXIST (overlap other than an exact duplicate), ENOSPC (table full),
     *                           mmap's errno
     * @throws IllegalStateException after {@link #close()}
     */
    public void map(DmaMapRequest request, int fd) {
        Mapping mapping = null;
        int ownedFd = fd;
        DmaRegion added = null;
        try {
            Objects.requireNonNull(request, "request");
            synchronized (mutex) {
                if (closed) {
                    throw new IllegalStateException("DMA controller closed");
                }
                validate(request);
                boolean hasFd = fd >= 0;
                DmaRegion.FileId file = hasFd ? DmaRegion.FileId.of(fd) : null;
                long end = request.address() + request.size();
                DmaRegion existing = firstOverlap(request.address(), end);
                if (existing != null) {
                    if (existing.sameAs(request, hasFd, file)) {
                        return; // exact duplicate: idempotent success
                    }
                    throw new VfioUserException(Errno.EEXIST, "DMA_MAP: " + range(request.address(), end)
                            + " overlaps mapping " + existing);
                }
                if (regions.size() >= maxMappings) {
                    throw new VfioUserException(Errno.ENOSPC, "DMA_MAP: " + maxMappings + " mappings already");
                }
                long delta = 0;
                if (hasFd && (request.flags() & (DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE)) != 0) {
                    long aligned = request.offset() & -Fds.pageSize();
                    delta = request.offset() - aligned;
                    MemFd owner = MemFd.adopt(fd);
                    ownedFd = -1; // owned and closed by mmap() now
                    mapping = mmap(owner, request, aligned, delta);
                }
                DmaRegion region = new DmaRegion(request, hasFd, file, mapping, delta);
                lock.writeLock().lock();
                try {
                    regions.put(region.iova, region);
                } finally {
                    lock.writeLock().unlock();
                }
                mapping = null; // owned by the region now
                added = region;
            }
        } finally {
            Fds.closeQuietly(ownedFd);
            if (mapping != null) {
                mapping.close();
            }
        }
        // Outside the mutex: the device may use Dma from its callback.
        listener.mapped(added.iova, added.size, request.flags(), added.mapping != null);
    }

    private static void validate(DmaMapRequest r) {
        if ((r.flags() & ~(DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE)) != 0) {
            throw VfioUserException.einval("DMA_MAP: invalid flags 0x" + Integer.toHexString(r.flags()));
        }
        if (r.size() == 0) {
            throw VfioUserException.einval("DMA_MAP: size 0 at address 0x" + Long.toHexString(r.address()));
        }
        if (Long.compareUnsigned(r.address() + r.size(), r.address()) <= 0) {
            throw VfioUserException.einval("DMA_MAP: address 0x" + Long.toHexString(r.address()) + " + size 0x"
                    + Long.toHexString(r.size()) + " overflows u64");
        }
    }

    /** Maps {@code [offset, offset + size)} of the file; closes {@code file} in every case. */
    private static Mapping mmap(MemFd file, DmaMapRequest request, long aligned, long delta) {
        try (file) {
            if (aligned < 0 || request.size() < 0 || request.size() > Long.MAX_VALUE - delta) {
                throw VfioUserException.einval("DMA_MAP: offset 0x" + Long.toHexString(request.offset())
                        + " size 0x" + Long.toHexString(request.size()) + " cannot be mapped");
            }
            return file.map(aligned, delta + request.size(), request.writable());
        } catch (IllegalArgumentException e) {
            throw new VfioUserException(Errno.EINVAL, "DMA_MAP: offset 0x" + Long.toHexString(request.offset())
                    + " + size 0x" + Long.toHexString(request.size()) + ": " + e.getMessage(), e);
        } catch (LinuxException e) {
            throw new VfioUserException(e.errno(), "DMA_MAP: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new VfioUserException(Errno.EIO, "DMA_MAP: " + e.getMessage(), e);
        }
    }

    /** The lowest-addressed region overlapping {@code [start, end)}, or null. Caller holds the mutex. */
    private DmaRegion firstOverlap(long start, long end) {
        Map.Entry<Long, DmaRegion> below = regions.floorEntry(start);
        if (below != null && below.getValue().contains(start)) {
            return below.getValue();
        }
        Map.Entry<Long, DmaRegion> above = regions.higherEntry(start);
        if (above != null && Long.compareUnsigned(above.getKey(), end) < 0) {
            return above.getValue();
        }
        return null;
    }

    /**
     * DMA_UNMAP: with flag ALL {@link #unmapAll()}, else removes the mapping with exactly this address and
     * size. Returns after in-flight direct accesses to it have finished and its memory is unmapped.
     *
     * @throws VfioUserException ENOENT if no mapping has exactly this address and size
     */
    public void unmap(DmaUnmapRequest request) {
        if (request.unmapAll()) {
            unmapAll();
            return;
        }
        synchronized (mutex) {
            DmaRegion r = regions.get(request.address());
            if (r == null || r.size != request.size()) {
                throw new VfioUserException(Errno.ENOENT, "DMA_UNMAP: no mapping "
                        + range(request.address(), request.address() + request.size())
                        + (r == null ? "" : " (mapping at that address is " + r + ")"));
            }
            lock.writeLock().lock();
            try {
                regions.remove(r.iova);
            } finally {
                lock.writeLock().unlock();
            }
            release(List.of(r));
        }
        listener.unmapped(request.address(), request.size());
    }

    /** Removes every mapping (DMA_UNMAP with flag ALL, client disconnect). */
    public void unmapAll() {
        List<DmaRegion> all;
        synchronized (mutex) {
            lock.writeLock().lock();
            try {
                all = new ArrayList<>(regions.values());
                regions.clear();
            } finally {
                lock.writeLock().unlock();
            }
            release(all);
        }
        for (DmaRegion r : all) {
            listener.unmapped(r.iova, r.size);
        }
    }

    /** Unmaps the memory of removed regions. Caller holds the mutex. */
    private void release(List<DmaRegion> removed) {
        List<Mapping> retry = new ArrayList<>(pendingClose);
        pendingClose.clear();
        for (DmaRegion r : removed) {
            if (r.mapping != null) {
                retry.add(r.mapping);
            }
        }
        for (Mapping m : retry) {
            try {
                m.close();
            } catch (IllegalStateException e) {
                LOG.warn("DMA mapping {} is in use by a native call; munmap deferred", m);
                pendingClose.add(m);
            } catch (UncheckedIOException e) {
                LOG.warn("munmap of DMA mapping {} failed", m, e);
            }
        }
    }

    /** The number of mappings. */
    public int mappingCount() {
        lock.readLock().lock();
        try {
            return regions.size();
        } finally {
            lock.readLock().unlock();
        }
    }

    /** Unmaps everything and stops logging; later {@link #map} calls throw IllegalStateException. Idempotent. */
    @Override
    public void close() {
        synchronized (mutex) {
            closed = true;
            log = null;
            messenger = null;
            unmapAll();
            if (!pendingClose.isEmpty()) {
                LOG.warn("{} DMA mappings still in use by native calls at close; left mapped", pendingClose.size());
            }
        }
    }

    // ------------------------------------------------------------------------------------------ access

    @Override
    public void read(long iova, MemorySegment dst) {
        access(iova, dst, false, false);
    }

    @Override
    public void write(long iova, MemorySegment src) {
        access(iova, src, true, false);
    }

    @Override
    public void readByMessage(long iova, MemorySegment dst) {
        access(iova, dst, false, true);
    }

    @Override
    public void writeByMessage(long iova, MemorySegment src) {
        access(iova, src, true, true);
    }

    private void access(long iova, MemorySegment buffer, boolean write, boolean byMessage) {
        long length = buffer.byteSize();
        if (length == 0) {
            return;
        }
        String op = write ? "DMA write" : "DMA read";
        if (Long.compareUnsigned(iova, -length) > 0) {
            throw new VfioUserException(Errno.EFAULT, op + ": iova " + hex(iova) + " + " + length + " overflows u64");
        }
        boolean copied;
        lock.readLock().lock();
        try {
            copied = !byMessage && copyWithinOneRegion(iova, buffer, write);
            if (!copied) {
                check(op, iova, length, write);
            }
        } finally {
            lock.readLock().unlock();
        }
        if (copied) {
            if (write) {
                logWrite(iova, length);
            }
            return;
        }
        long done = 0;
        while (done < length) {
            long at = iova + done;
            DmaRegion r;
            long n;
            lock.readLock().lock();
            try {
                r = find(at);
                if (r == null || (write ? !r.writable() : !r.readable())) {
                    check(op, at, length - done, write); // unmapped or remapped since the first check
                    throw new IllegalStateException("unreachable: check() passed for " + hex(at));
                }
                n = minUnsigned(length - done, r.end - at);
                if (r.direct() && !byMessage) {
                    long in = at - r.iova;
                    if (write) {
                        MemorySegment.copy(buffer, done, r.view, in, n);
                    } else {
                        MemorySegment.copy(r.view, in, buffer, done, n);
                    }
                }
            } finally {
                lock.readLock().unlock();
            }
            if (r.direct() && !byMessage) {
                if (write) {
                    logWrite(at, n);
                }
            } else {
                message(op, at, buffer.asSlice(done, n), write);
            }
            done += n;
        }
    }

    /**
     * The fast path of an access: if one fd-mapped region with the needed permission holds all of it, copies
     * and returns true (one lookup, one copy); else false, nothing done. Under the read lock.
     */
    private boolean copyWithinOneRegion(long iova, MemorySegment buffer, boolean write) {
        DmaRegion r = find(iova);
        long length = buffer.byteSize();
        if (r == null || !r.direct() || (write ? !r.writable() : !r.readable())
                || Long.compareUnsigned(length, r.end - iova) > 0) {
            return false;
        }
        long in = iova - r.iova;
        if (write) {
            MemorySegment.copy(buffer, 0, r.view, in, length);
        } else {
            MemorySegment.copy(r.view, in, buffer, 0, length);
        }
        return true;
    }

    /** Whole-access check: every byte mapped (EFAULT) with the needed permission (EPERM). Under the read lock. */
    private void check(String op, long iova, long length, boolean write) {
        long at = iova;
        long left = length;
        while (left > 0) {
            DmaRegion r = find(at);
            if (r == null) {
                throw new VfioUserException(Errno.EFAULT, op + ": " + range(iova, iova + length)
                        + (at == iova ? " is not mapped" : " is not mapped from " + hex(at)));
            }
            if (write ? !r.writable() : !r.readable()) {
                throw new VfioUserException(Errno.EPERM, op + ": " + range(iova, iova + length) + " in mapping " + r
                        + (write ? " without WRITE" : " without READ"));
            }
            long n = minUnsigned(left, r.end - at);
            at += n;
            left -= n;
        }
    }

    /** The region containing {@code iova}, or null. Caller holds the lock. */
    private DmaRegion find(long iova) {
        Map.Entry<Long, DmaRegion> e = regions.floorEntry(iova);
        return e != null && e.getValue().contains(iova) ? e.getValue() : null;
    }

    /** DMA_READ/DMA_WRITE messages for {@code buffer} at {@code iova}, split by the client's max size. */
    private void message(String op, long iova, MemorySegment buffer, boolean write) {
        DmaMessenger m = messenger;
        if (m == null) {
            throw new VfioUserException(Errno.EIO, op + ": " + range(iova, iova + buffer.byteSize())
                    + " is mapped without fd and no client is connected");
        }
        long max = m.maxTransferSize();
        if (max <= 0) {
            throw new VfioUserException(Errno.EIO, op + ": client max_data_xfer_size " + max);
        }
        long done = 0;
        while (done < buffer.byteSize()) {
            long n = Math.min(max, buffer.byteSize() - done);
            long at = iova + done;
            try {
                if (write) {
                    m.dmaWrite(at, buffer.asSlice(done, n));
                } else {
                    m.dmaRead(at, buffer.asSlice(done, n));
                }
            } catch (IOException e) {
                throw new VfioUserException(Errno.EIO, op + ": " + range(at, at + n) + ": " + e.getMessage(), e);
            } finally {
                if (write) {
                    logWrite(at, n); // conservative: the client may have applied it even if the reply failed
                }
            }
            done += n;
        }
    }

    @Override
    public MemorySegment directView(long iova, long length, boolean write) {
        if (length < 0 || Long.compareUnsigned(iova, -length) > 0 && length != 0) {
            return null;
        }
        lock.readLock().lock();
        try {
            DmaRegion r = find(iova);
            if (r == null || !r.direct() || (write ? !r.writable() : !r.readable())
                    || Long.compareUnsigned(length, r.end - iova) > 0) {
                return null;
            }
            MemorySegment view = r.view.asSlice(iova - r.iova, length);
            return write ? view : view.asReadOnly();
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * Records a device write of {@code [iova, iova + length)} while logging (nothing otherwise). The range
     * need not be mapped.
     *
     * @throws IllegalArgumentException {@code length} negative or the range overflows u64
     */
    @Override
    public void markDirty(long iova, long length) {
        if (length < 0 || Long.compareUnsigned(iova, -length) > 0 && length != 0) {
            throw new IllegalArgumentException("markDirty: bad range " + hex(iova) + " + " + length);
        }
        logWrite(iova, length);
    }

    private void logWrite(long iova, long length) {
        DirtyLog l = log;
        if (l != null && length != 0) {
            l.mark(iova, iova + length - 1);
        }
    }

    // ------------------------------------------------------------------------------------------ dirty logging

    /**
     * DMA_LOGGING_START (feature 6 SET).
     *
     * @return the data to echo: {@code control} with the tracking page size actually used
     * @throws VfioUserException see the class documentation (EINVAL, E2BIG)
     */
    public FeaturePayload.DmaLoggingControl startLogging(FeaturePayload.DmaLoggingControl control) {
        synchronized (mutex) {
            DirtyLog current = log;
            if (current != null) {
                if (current.requested.pageSize() == control.pageSize()
                        && current.requested.ranges().equals(control.ranges())) { // reserved is not compared
                    return echo(control, current);
                }
                throw VfioUserException.einval("DMA_LOGGING_START: dirty logging already started with other parameters");
            }
            DirtyLog started = DirtyLog.start(control);
            log = started;
            return echo(control, started);
        }
    }

    private static FeaturePayload.DmaLoggingControl echo(FeaturePayload.DmaLoggingControl control, DirtyLog log) {
        return new FeaturePayload.DmaLoggingControl(log.pageSize, control.reserved(), control.ranges());
    }

    /** DMA_LOGGING_STOP (feature 7 SET): drops the dirty state. A no-op when not logging. */
    public void stopLogging() {
        synchronized (mutex) {
            log = null;
        }
    }

    /** Whether dirty logging is on. */
    public boolean logging() {
        return log != null;
    }

    /** The tracking page size while logging, else 0. */
    public long trackingPageSize() {
        DirtyLog l = log;
        return l == null ? 0 : l.pageSize;
    }

    /**
     * DMA_LOGGING_REPORT (feature 8 GET), with the bitmap in memory from {@code Arena.ofAuto()}.
     *
     * @see #report(FeaturePayload.DmaLoggingReportQuery, SegmentAllocator)
     */
    public FeaturePayload.DmaLoggingReport report(FeaturePayload.DmaLoggingReportQuery query) {
        return report(query, Arena.ofAuto());
    }

    /**
     * DMA_LOGGING_REPORT: read-and-clear of the dirty pages of the query range at its page size.
     *
     * @param allocator where the bitmap is allocated (8-byte aligned; zero-filled here)
     * @throws VfioUserException EINVAL (not logging, length 0, range not inside the logged ranges), E2BIG
     *                           (bitmap larger than {@link #MAX_BITMAP_BYTES})
     */
    public FeaturePayload.DmaLoggingReport report(FeaturePayload.DmaLoggingReportQuery query, SegmentAllocator allocator) {
        synchronized (mutex) {
            DirtyLog l = log;
            String what = "DMA_LOGGING_REPORT: " + range(query.iova(), query.iova() + query.length());
            if (l == null) {
                throw VfioUserException.einval(what + ": dirty logging is not started");
            }
            if (query.length() == 0) {
                throw VfioUserException.einval(what + ": length 0");
            }
            long bytes = query.bitmapSize();
            if (bytes > MAX_BITMAP_BYTES) {
                throw new VfioUserException(Errno.E2BIG, what + ": bitmap of " + bytes + " bytes at page size "
                        + Long.toUnsignedString(query.pageSize()) + " exceeds " + MAX_BITMAP_BYTES);
            }
            long last = query.iova() + query.length() - 1;
            if (!l.covers(query.iova(), last)) {
                throw VfioUserException.einval(what + " is not inside the logged ranges");
            }
            return new FeaturePayload.DmaLoggingReport(query,
                    l.report(query.iova(), query.length(), query.pageSize(), allocator));
        }
    }

    // ------------------------------------------------------------------------------------------ helpers

    private static long minUnsigned(long a, long b) {
        return Long.compareUnsigned(a, b) <= 0 ? a : b;
    }

    private static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    private static String range(long start, long end) {
        return "[" + hex(start) + ", " + hex(end) + ")";
    }

    @Override
    public String toString() {
        return "DmaController[" + mappingCount() + " mappings" + (logging() ? ", logging]" : "]");
    }
}
