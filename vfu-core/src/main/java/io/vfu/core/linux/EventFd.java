package io.vfu.core.linux;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * An eventfd(2): a kernel 64-bit counter used as a wake-up signal, e.g. an interrupt passed to another process.
 *
 * <p>{@link #signal(long)} adds to the counter; {@link #read()} returns it and resets it to 0 (or, in semaphore
 * mode, returns 1 and decrements it). Always created with {@code EFD_CLOEXEC}.
 *
 * <p>Thread-safe. {@link #close()} while another thread is blocked in {@link #read()} or {@link #await(long)}
 * cannot wake it (an eventfd has no shutdown); the descriptor is released when that call returns.
 */
public final class EventFd implements AutoCloseable {
    private final FdOwner owner;

    private EventFd(int fd) {
        this.owner = new FdOwner(fd);
    }

    /** A blocking, non-semaphore eventfd with counter 0. */
    public static EventFd create() throws IOException {
        return create(0, false, false);
    }

    /**
     * Creates an eventfd.
     *
     * @param initial     the initial counter, 0 to 2^32-1 (the system call takes an unsigned int)
     * @param semaphore   {@code EFD_SEMAPHORE}: each read returns 1 and decrements the counter
     * @param nonBlocking {@code EFD_NONBLOCK}: reads of a zero counter return 0 at once
     */
    public static EventFd create(long initial, boolean semaphore, boolean nonBlocking) throws IOException {
        if (initial < 0 || initial > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException("initial value must be 0..2^32-1, got " + initial);
        }
        Native.ensureAvailable();
        int flags = Native.EFD_CLOEXEC | (semaphore ? Native.EFD_SEMAPHORE : 0)
                | (nonBlocking ? Native.EFD_NONBLOCK : 0);
        try (Arena arena = Arena.ofConfined()) {
            return new EventFd(Native.eventfd(arena, (int) initial, flags));
        }
    }

    /** Takes ownership of an eventfd descriptor, e.g. one received with {@code SCM_RIGHTS}. */
    public static EventFd adopt(int fd) {
        Native.ensureAvailable();
        return new EventFd(fd);
    }

    /** The descriptor (owned by this object: do not close it). */
    public int fd() {
        return owner.fd();
    }

    /** Adds 1 to the counter. */
    public void signal() throws IOException {
        signal(1);
    }

    /**
     * Adds {@code value} to the counter (an 8-byte write). Blocks if the counter would exceed 2^64-2, unless
     * non-blocking.
     *
     * @throws LinuxException {@code write: EAGAIN} when a non-blocking counter would overflow
     */
    public void signal(long value) throws IOException {
        if (value == -1L) {
            throw new IllegalArgumentException("0xffffffffffffffff is not a valid eventfd increment");
        }
        int fd = owner.acquire("write");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocateFrom(JAVA_LONG, value);
            long n = Native.write(arena, fd, buf, 8);
            if (n < 0) {
                throw new LinuxException("write", Native.EAGAIN, "eventfd " + fd + " counter would overflow");
            }
            if (n != 8) {
                throw new LinuxException("write", Errno.EIO.value(), "eventfd " + fd + " took " + n + " of 8 bytes");
            }
        } finally {
            owner.release();
        }
    }

    /**
     * Reads the counter (an 8-byte read): returns it and resets it to 0, or returns 1 and decrements it in
     * semaphore mode. Blocks while the counter is 0, unless the eventfd is non-blocking, when it returns 0.
     * The counter is unsigned: compare with {@link Long#compareUnsigned}.
     */
    public long read() throws IOException {
        int fd = owner.acquire("read");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(JAVA_LONG);
            long n = Native.read(arena, fd, buf, 8);
            if (n < 0) {
                return 0; // EAGAIN: non-blocking and nothing signalled
            }
            if (n != 8) {
                throw new LinuxException("read", Errno.EIO.value(), "eventfd " + fd + " gave " + n + " of 8 bytes");
            }
            return buf.get(JAVA_LONG, 0);
        } finally {
            owner.release();
        }
    }

    /**
     * Waits until the counter is non-zero (poll for {@code POLLIN}) without reading it.
     *
     * @param timeoutMillis milliseconds; negative waits forever
     * @return {@code false} on timeout
     */
    public boolean await(long timeoutMillis) throws IOException {
        int fd = owner.acquire("poll");
        try {
            return Poll.pollOne(fd, Poll.POLLIN, timeoutMillis) != 0;
        } finally {
            owner.release();
        }
    }

    /** Closes the descriptor; idempotent. */
    @Override
    public void close() {
        owner.close(null);
    }

    @Override
    public String toString() {
        return "EventFd[fd=" + owner.fd() + (owner.isClosed() ? ", closed]" : "]");
    }
}
