package io.vfu.core.linux;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.util.Objects;

/**
 * An anonymous shared-memory file from memfd_create(2) (always {@code MFD_CLOEXEC}): memory that can be mapped
 * by this process and, once its fd is passed with {@code SCM_RIGHTS}, by another.
 *
 * <p>Thread-safe. Closing the fd does not unmap {@link Mapping}s made from it: each mapping has its own lifetime.
 */
public final class MemFd implements AutoCloseable {
    private final FdOwner owner;

    private MemFd(int fd) {
        this.owner = new FdOwner(fd);
    }

    /**
     * Creates a memfd of {@code size} bytes (zero-filled).
     *
     * @param name shown in {@code /proc/PID/fd} as {@code memfd:NAME}; at most 249 bytes
     */
    public static MemFd create(String name, long size) throws IOException {
        Objects.requireNonNull(name, "name");
        if (size < 0) {
            throw new IllegalArgumentException("negative size " + size);
        }
        Native.ensureAvailable();
        try (Arena arena = Arena.ofConfined()) {
            int fd = Native.memfdCreate(arena, name, Native.MFD_CLOEXEC);
            try {
                Native.ftruncate(arena, fd, size);
            } catch (LinuxException e) {
                Fds.closeQuietly(fd);
                throw e;
            }
            return new MemFd(fd);
        }
    }

    /** Takes ownership of a memfd (or any mappable file) descriptor, e.g. one received with SCM_RIGHTS. */
    public static MemFd adopt(int fd) {
        Native.ensureAvailable();
        return new MemFd(fd);
    }

    /** The descriptor (owned by this object: do not close it). */
    public int fd() {
        return owner.fd();
    }

    /** The current size in bytes (fstat {@code st_size}). */
    public long size() throws IOException {
        int fd = owner.acquire("fstat");
        try (Arena arena = Arena.ofConfined()) {
            return Native.fstatSize(arena, fd);
        } finally {
            owner.release();
        }
    }

    /** Sets the size (ftruncate): growing adds zeros, shrinking discards the tail. */
    public void truncate(long size) throws IOException {
        if (size < 0) {
            throw new IllegalArgumentException("negative size " + size);
        }
        int fd = owner.acquire("ftruncate");
        try (Arena arena = Arena.ofConfined()) {
            Native.ftruncate(arena, fd, size);
        } finally {
            owner.release();
        }
    }

    /**
     * Maps {@code [offset, offset + length)} shared and readable, writable if {@code write}.
     *
     * <p>The range must lie within the current {@link #size()}: touching a mapped page beyond the end of the
     * file raises SIGBUS, which kills the JVM. Shrinking the file while mapped (here or in another process that
     * shares it) has the same danger.
     *
     * @param offset a multiple of {@link Fds#pageSize()}
     * @throws IllegalArgumentException the range is not page aligned or exceeds the size
     */
    public Mapping map(long offset, long length, boolean write) throws IOException {
        int fd = owner.acquire("mmap");
        try {
            long size;
            try (Arena arena = Arena.ofConfined()) {
                size = Native.fstatSize(arena, fd);
            }
            if (offset < 0 || length <= 0 || offset > size || length > size - offset) {
                throw new IllegalArgumentException("mapping [" + offset + ", " + offset + " + " + length
                        + ") is not within memfd " + fd + " of size " + size);
            }
            return Mapping.map(fd, offset, length, true, write);
        } finally {
            owner.release();
        }
    }

    /** Closes the descriptor; idempotent. Existing mappings stay valid. */
    @Override
    public void close() {
        owner.close(null);
    }

    @Override
    public String toString() {
        return "MemFd[fd=" + owner.fd() + (owner.isClosed() ? ", closed]" : "]");
    }
}
