package io.vfu.core.linux;

/**
 * Linux errno values used by the vfio-user protocol and by the system calls of this package.
 *
 * <p>Java has no errno constants; the values are the Linux x86-64/aarch64 ones (protocol reference §1).
 * The header of a vfio-user error reply carries {@link #value()}.
 */
public enum Errno {
    EPERM(1, "Operation not permitted"),
    ENOENT(2, "No such file or directory"),
    ESRCH(3, "No such process"),
    EINTR(4, "Interrupted system call"),
    EIO(5, "Input/output error"),
    ENXIO(6, "No such device or address"),
    E2BIG(7, "Argument list too long"),
    EBADF(9, "Bad file descriptor"),
    ECHILD(10, "No child processes"),
    EAGAIN(11, "Resource temporarily unavailable"),
    ENOMEM(12, "Cannot allocate memory"),
    EACCES(13, "Permission denied"),
    EFAULT(14, "Bad address"),
    EBUSY(16, "Device or resource busy"),
    EEXIST(17, "File exists"),
    ENODEV(19, "No such device"),
    ENOTDIR(20, "Not a directory"),
    EISDIR(21, "Is a directory"),
    EINVAL(22, "Invalid argument"),
    ENFILE(23, "Too many open files in system"),
    EMFILE(24, "Too many open files"),
    ENOTTY(25, "Inappropriate ioctl for device"),
    EFBIG(27, "File too large"),
    ENOSPC(28, "No space left on device"),
    ESPIPE(29, "Illegal seek"),
    EROFS(30, "Read-only file system"),
    EPIPE(32, "Broken pipe"),
    ERANGE(34, "Numerical result out of range"),
    ENAMETOOLONG(36, "File name too long"),
    ENOSYS(38, "Function not implemented"),
    ENOMSG(42, "No message of desired type"),
    EPROTO(71, "Protocol error"),
    EBADMSG(74, "Bad message"),
    EOVERFLOW(75, "Value too large for defined data type"),
    ENOTSOCK(88, "Socket operation on non-socket"),
    EMSGSIZE(90, "Message too long"),
    EPROTOTYPE(91, "Protocol wrong type for socket"),
    EOPNOTSUPP(95, "Operation not supported"),
    EAFNOSUPPORT(97, "Address family not supported by protocol"),
    EADDRINUSE(98, "Address already in use"),
    EADDRNOTAVAIL(99, "Cannot assign requested address"),
    ENETDOWN(100, "Network is down"),
    ECONNABORTED(103, "Software caused connection abort"),
    ECONNRESET(104, "Connection reset by peer"),
    ENOBUFS(105, "No buffer space available"),
    EISCONN(106, "Transport endpoint is already connected"),
    ENOTCONN(107, "Transport endpoint is not connected"),
    ETIMEDOUT(110, "Connection timed out"),
    ECONNREFUSED(111, "Connection refused"),
    EALREADY(114, "Operation already in progress"),
    EINPROGRESS(115, "Operation now in progress");

    /** ENOTSUP is the same number as EOPNOTSUPP on Linux. */
    public static final Errno ENOTSUP = EOPNOTSUPP;

    private static final Errno[] BY_VALUE = new Errno[256];

    static {
        for (Errno e : values()) {
            BY_VALUE[e.value] = e;
        }
    }

    private final int value;
    private final String description;

    Errno(int value, String description) {
        this.value = value;
        this.description = description;
    }

    /** The positive Linux errno number. */
    public int value() {
        return value;
    }

    /** The strerror(3) text. */
    public String description() {
        return description;
    }

    /**
     * The constant for a Linux errno number, or {@code null} when this enum does not name it.
     *
     * @see #fromWire(int)
     */
    public static Errno of(int value) {
        return value > 0 && value < BY_VALUE.length ? BY_VALUE[value] : null;
    }

    /**
     * Interprets the error field of a vfio-user error reply. A value of 0 or above 4096 is mapped to
     * {@link #EINVAL}, as libvfio-user's client does (protocol reference §3.2); other unknown values
     * also become EINVAL.
     */
    public static Errno fromWire(int value) {
        Errno e = of(value);
        return e != null ? e : EINVAL;
    }
}
