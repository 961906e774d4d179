package io.vfu.core.linux;

import java.io.IOException;

/**
 * A failed Linux system call: carries the call's name and the {@link Errno} it set.
 *
 * <p>The message reads like {@code "sendmsg: EPIPE (Broken pipe)"}, optionally followed by context.
 */
public final class LinuxException extends IOException {
    private final String call;
    private final int errno;

    public LinuxException(String call, int errno) {
        this(call, errno, null);
    }

    public LinuxException(String call, int errno, String context) {
        super(format(call, errno, context));
        this.call = call;
        this.errno = errno;
    }

    private static String format(String call, int errno, String context) {
        Errno e = Errno.of(errno);
        String name = e != null ? e.name() + " (" + e.description() + ")" : "errno " + errno;
        return call + ": " + name + (context == null ? "" : ": " + context);
    }

    /** The system call that failed, e.g. {@code "recvmsg"}. */
    public String call() {
        return call;
    }

    /** The raw errno number. */
    public int errnoValue() {
        return errno;
    }

    /** The errno as a constant; {@link Errno#EIO} when the number is not one this project names. */
    public Errno errno() {
        Errno e = Errno.of(errno);
        return e != null ? e : Errno.EIO;
    }
}
