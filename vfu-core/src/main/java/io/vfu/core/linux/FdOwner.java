package io.vfu.core.linux;

import java.lang.foreign.Arena;
import java.util.function.IntConsumer;

/**
 * Owns one descriptor for a resource class and makes {@code close()} safe against concurrent use.
 *
 * <p>Each operation brackets its system call with {@link #acquire(String)} and {@link #release()}. A close
 * that finds the descriptor in use runs a wake-up action (e.g. {@code shutdown}) while the descriptor is still
 * valid and leaves the actual close(2) to the last user's {@code release()}: a blocked call is never left
 * waiting on a number that close(2) freed and a new open reused.
 */
final class FdOwner {
    private final int fd;
    private int users;
    private boolean closed;

    FdOwner(int fd) {
        if (fd < 0) {
            throw new IllegalArgumentException("negative fd " + fd);
        }
        this.fd = fd;
    }

    /** The descriptor number (valid until closed; for display and for handing to other calls). */
    int fd() {
        return fd;
    }

    synchronized boolean isClosed() {
        return closed;
    }

    /**
     * Registers a use of the descriptor.
     *
     * @throws LinuxException EBADF naming {@code call} when the owner is closed
     */
    synchronized int acquire(String call) throws LinuxException {
        if (closed) {
            throw new LinuxException(call, Errno.EBADF.value(), "fd " + fd + " is closed");
        }
        users++;
        return fd;
    }

    /** Ends a use; the last use after a close request closes the descriptor (errors ignored). */
    void release() {
        boolean doClose;
        synchronized (this) {
            users--;
            doClose = closed && users == 0;
        }
        if (doClose) {
            Fds.closeQuietly(fd);
        }
    }

    /**
     * Requests the close. Idempotent: returns {@code false} if already requested. When the descriptor is in
     * use, {@code wake} runs (under the lock, so the descriptor is still open) and the close is deferred;
     * otherwise the descriptor is closed now and close(2) errors are thrown unchecked.
     */
    boolean close(IntConsumer wake) {
        boolean closeNow;
        synchronized (this) {
            if (closed) {
                return false;
            }
            closed = true;
            closeNow = users == 0;
            if (!closeNow && wake != null) {
                wake.accept(fd);
            }
        }
        if (closeNow) {
            Fds.closeOwned(fd);
        }
        return true;
    }

    /** A wake-up action: shutdown(SHUT_RDWR), errors ignored (e.g. ENOTCONN). */
    static void shutdownQuietly(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            Native.shutdown(arena, fd, Native.SHUT_RDWR);
        }
    }
}
