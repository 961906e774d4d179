package io.vfu.core.linux;

import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A memory mapping (mmap(2) of a file with {@code MAP_SHARED}, or {@linkplain #zeros read-only zeros}) seen as a
 * {@link MemorySegment}, with an explicit lifetime: {@link #close()} invalidates the segment (every later access throws {@link IllegalStateException})
 * and then unmaps the memory.
 *
 * <p>The segment belongs to a shared {@link Arena}: any thread may use it. {@code close()} is thread-safe and
 * idempotent; it throws {@link IllegalStateException} (and leaves the mapping open) if the segment is in use by
 * a native call at that moment. A read-only mapping has a {@linkplain MemorySegment#isReadOnly() read-only}
 * segment, so a stray write fails in Java instead of crashing the JVM.
 *
 * <p>Touching a page beyond the end of the mapped file raises SIGBUS, which kills the JVM: map only ranges
 * within the file, and do not shrink a mapped file.
 */
public final class Mapping implements AutoCloseable {
    private final long address;
    private final long length;
    private final Arena arena;
    private final MemorySegment segment;
    private boolean closed;

    private Mapping(long address, long length, boolean write) {
        this.address = address;
        this.length = length;
        this.arena = Arena.ofShared();
        MemorySegment s = MemorySegment.ofAddress(address).reinterpret(length, arena, null);
        this.segment = write ? s : s.asReadOnly();
    }

    /**
     * Maps {@code length} bytes of {@code fd} from {@code offset}, {@code MAP_SHARED}.
     *
     * @param offset a multiple of {@link Fds#pageSize()}
     * @param length more than 0
     * @param read   must be {@code true}: memory without {@code PROT_READ} cannot be safely exposed as a segment
     * @param write  {@code PROT_WRITE}; without it the segment is read-only
     * @throws IllegalArgumentException bad offset, length or protection
     * @throws LinuxException           the mmap(2) failure, e.g. EACCES (fd not open for writing), ENODEV
     */
    public static Mapping map(int fd, long offset, long length, boolean read, boolean write) throws LinuxException {
        if (!read) {
            throw new IllegalArgumentException("mappings must be readable (PROT_READ)");
        }
        if (length <= 0) {
            throw new IllegalArgumentException("mapping length must be positive, got " + length);
        }
        if (offset < 0 || offset % Fds.pageSize() != 0) {
            throw new IllegalArgumentException("mapping offset " + offset + " is not a multiple of the page size "
                    + Fds.pageSize());
        }
        Native.ensureAvailable();
        int prot = Native.PROT_READ | (write ? Native.PROT_WRITE : 0);
        try (Arena call = Arena.ofConfined()) {
            long address = Native.mmap(call, length, prot, Native.MAP_SHARED, fd, offset);
            return new Mapping(address, length, write);
        }
    }

    /**
     * {@code length} bytes that read as zero and cost no memory: a private anonymous read-only mapping, whose
     * pages all map the kernel's one zero page. A source of zero padding of any length that needs no memset and
     * stays in the CPU cache however long it is (the kernel's copy from it reads the same 4 KiB again).
     *
     * @param length more than 0
     */
    public static Mapping zeros(long length) throws LinuxException {
        if (length <= 0) {
            throw new IllegalArgumentException("mapping length must be positive, got " + length);
        }
        Native.ensureAvailable();
        try (Arena call = Arena.ofConfined()) {
            long address = Native.mmap(call, length, Native.PROT_READ, Native.MAP_PRIVATE | Native.MAP_ANONYMOUS, -1, 0);
            return new Mapping(address, length, false);
        }
    }

    /**
     * The mapped memory. Valid until {@link #close()}; afterwards every access throws
     * {@link IllegalStateException}.
     */
    public MemorySegment segment() {
        return segment;
    }

    /** The mapped length in bytes. */
    public long length() {
        return length;
    }

    /** Whether {@link #close()} has completed. */
    public synchronized boolean isClosed() {
        return closed;
    }

    /**
     * Invalidates the segment, then unmaps. Idempotent and thread-safe.
     *
     * @throws IllegalStateException the segment is being used by a native call right now (nothing changed)
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        arena.close(); // throws IllegalStateException while a downcall holds the segment
        closed = true;
        try (Arena call = Arena.ofConfined()) {
            Native.munmap(call, address, length);
        } catch (LinuxException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public String toString() {
        return "Mapping[0x" + Long.toHexString(address) + ", " + length + " bytes" + (isClosed() ? ", closed]" : "]");
    }
}
