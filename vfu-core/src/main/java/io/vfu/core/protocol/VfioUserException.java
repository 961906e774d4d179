package io.vfu.core.protocol;

import io.vfu.core.linux.Errno;

/**
 * A per-message protocol failure: the message is answered with an error reply carrying {@link #errno()},
 * and the connection stays up. Connection-fatal failures are {@link java.io.IOException}s instead.
 *
 * <p>The message names the command and field, e.g.
 * {@code "REGION_READ: offset 0x2000 + count 8 beyond region 1 size 0x2000"}.
 */
public class VfioUserException extends RuntimeException {
    private final Errno errno;
    private final String detail;

    public VfioUserException(Errno errno, String message) {
        super(errno.name() + ": " + message);
        this.errno = errno;
        this.detail = message;
    }

    public VfioUserException(Errno errno, String message, Throwable cause) {
        super(errno.name() + ": " + message, cause);
        this.errno = errno;
        this.detail = message;
    }

    /** The message without the errno prefix. */
    public String detail() {
        return detail;
    }

    /** The errno sent in the error reply. */
    public Errno errno() {
        return errno;
    }

    /** Shorthand for an {@link Errno#EINVAL} failure. */
    public static VfioUserException einval(String message) {
        return new VfioUserException(Errno.EINVAL, message);
    }
}
