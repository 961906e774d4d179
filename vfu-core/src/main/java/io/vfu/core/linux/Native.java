package io.vfu.core.linux;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The libc functions this package calls, each bound once as a {@code static final} {@link MethodHandle}
 * that captures {@code errno}, plus the struct layouts and constants of x86-64 and aarch64 Linux (LP64:
 * both use the same numbers and layouts for everything here).
 *
 * <p>Every wrapper takes the caller's confined {@link Arena}, allocates its errno capture segment there
 * (never a shared static segment: errno is per call and per thread), retries {@code EINTR} unless noted,
 * and throws {@link LinuxException} naming the call. Wrappers return the raw result on success.
 *
 * <p>When native access is not enabled for this module, the handles are not bound and
 * {@link #ensureAvailable()} throws one actionable message; every public entry point of the package calls it
 * before touching a handle.
 */
final class Native {
    private Native() {}

    // ---- constants (asm-generic / x86-64 values, identical on aarch64) ----
    static final int AF_UNIX = 1;
    static final int SOCK_STREAM = 1;
    static final int SOCK_CLOEXEC = 0x80000; // 02000000 == O_CLOEXEC
    static final int SOL_SOCKET = 1;
    static final int SO_PEERCRED = 17;
    static final int SO_SNDBUF = 7;
    static final int SO_RCVBUF = 8;
    /** struct timeval {long tv_sec; long tv_usec} on LP64 (x86-64, aarch64). */
    static final int SO_RCVTIMEO = 20;
    static final int SCM_RIGHTS = 1;
    static final int MSG_CTRUNC = 0x8;
    static final int MSG_NOSIGNAL = 0x4000;
    static final int MSG_CMSG_CLOEXEC = 0x40000000;
    static final int MSG_DONTWAIT = 0x40;
    static final int SHUT_RD = 0;
    static final int SHUT_WR = 1;
    static final int SHUT_RDWR = 2;
    static final int EFD_SEMAPHORE = 1;
    static final int EFD_NONBLOCK = 0x800; // 04000 == O_NONBLOCK
    static final int EFD_CLOEXEC = 0x80000;
    static final int MFD_CLOEXEC = 1;
    static final int PROT_READ = 1;
    static final int PROT_WRITE = 2;
    static final int MAP_SHARED = 1;
    static final int MAP_PRIVATE = 2;
    static final int MAP_ANONYMOUS = 0x20;
    static final int F_DUPFD_CLOEXEC = 1030;
    static final int SC_PAGESIZE = 30;
    /** Kernel limit of fds in one SCM_RIGHTS message (include/net/scm.h SCM_MAX_FD). */
    static final int SCM_MAX_FD = 253;
    /** {@code sa_flags}: interrupted calls restart. */
    static final int SA_RESTART = 0x10000000;
    /** {@code __SIGRTMAX}: the kernel's highest signal number (_NSIG) on x86-64 and aarch64. */
    static final int SIGRTMAX = 64;
    /** Maximum iovec entries per sendmsg (UIO_MAXIOV). */
    static final int IOV_MAX = 1024;
    /** {@code sizeof(sun_path)}. */
    static final int SUN_PATH_MAX = 108;

    // ---- struct layouts ----
    /** {@code struct iovec { void *iov_base; size_t iov_len; }} — 16 bytes. */
    static final StructLayout IOVEC = MemoryLayout.structLayout(
            ADDRESS.withName("iov_base"), JAVA_LONG.withName("iov_len")).withName("iovec");

    /**
     * {@code struct msghdr} — 56 bytes.
     * <pre>
     *  0 msg_name       void*
     *  8 msg_namelen    socklen_t (+4 padding)
     * 16 msg_iov        struct iovec*
     * 24 msg_iovlen     size_t
     * 32 msg_control    void*
     * 40 msg_controllen size_t
     * 48 msg_flags      int (+4 padding)
     * </pre>
     */
    static final StructLayout MSGHDR = MemoryLayout.structLayout(
            ADDRESS.withName("msg_name"),
            JAVA_INT.withName("msg_namelen"),
            MemoryLayout.paddingLayout(4),
            ADDRESS.withName("msg_iov"),
            JAVA_LONG.withName("msg_iovlen"),
            ADDRESS.withName("msg_control"),
            JAVA_LONG.withName("msg_controllen"),
            JAVA_INT.withName("msg_flags"),
            MemoryLayout.paddingLayout(4)).withName("msghdr");

    static final long MSG_NAME = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_name"));
    static final long MSG_IOV = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_iov"));
    static final long MSG_IOVLEN = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_iovlen"));
    static final long MSG_CONTROL = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_control"));
    static final long MSG_CONTROLLEN = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_controllen"));
    static final long MSG_FLAGS = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_flags"));

    /**
     * {@code struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }} — 16 bytes, data follows,
     * each cmsg aligned to 8 bytes ({@code CMSG_ALIGN}).
     */
    static final StructLayout CMSGHDR = MemoryLayout.structLayout(
            JAVA_LONG.withName("cmsg_len"), JAVA_INT.withName("cmsg_level"), JAVA_INT.withName("cmsg_type"))
            .withName("cmsghdr");

    static final long CMSG_LEVEL = CMSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("cmsg_level"));
    static final long CMSG_TYPE = CMSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("cmsg_type"));

    /** {@code struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }} — 110 bytes. */
    static final StructLayout SOCKADDR_UN = MemoryLayout.structLayout(
            JAVA_SHORT.withName("sun_family"),
            MemoryLayout.sequenceLayout(SUN_PATH_MAX, ValueLayout.JAVA_BYTE).withName("sun_path"))
            .withName("sockaddr_un");

    static final long SUN_PATH = SOCKADDR_UN.byteOffset(MemoryLayout.PathElement.groupElement("sun_path"));

    /** {@code struct pollfd { int fd; short events; short revents; }} — 8 bytes. */
    static final StructLayout POLLFD = MemoryLayout.structLayout(
            JAVA_INT.withName("fd"), JAVA_SHORT.withName("events"), JAVA_SHORT.withName("revents"))
            .withName("pollfd");

    /**
     * glibc's {@code struct sigaction} (the generic layout, used by x86-64 and aarch64) — 152 bytes.
     * <pre>
     *   0 sa_handler / sa_sigaction  void*
     *   8 sa_mask                    sigset_t (1024 bits)
     * 136 sa_flags                   int (+4 padding)
     * 144 sa_restorer                void* (set by glibc)
     * </pre>
     */
    static final StructLayout SIGACTION_LAYOUT = MemoryLayout.structLayout(
            ADDRESS.withName("sa_handler"),
            MemoryLayout.sequenceLayout(16, JAVA_LONG).withName("sa_mask"),
            JAVA_INT.withName("sa_flags"),
            MemoryLayout.paddingLayout(4),
            ADDRESS.withName("sa_restorer")).withName("sigaction");

    static final long SA_HANDLER = SIGACTION_LAYOUT.byteOffset(MemoryLayout.PathElement.groupElement("sa_handler"));
    static final long SA_FLAGS = SIGACTION_LAYOUT.byteOffset(MemoryLayout.PathElement.groupElement("sa_flags"));

    /** {@code struct ucred { pid_t pid; uid_t uid; gid_t gid; }} — 12 bytes. */
    static final StructLayout UCRED = MemoryLayout.structLayout(
            JAVA_INT.withName("pid"), JAVA_INT.withName("uid"), JAVA_INT.withName("gid")).withName("ucred");

    /**
     * {@code struct stat}: only {@code st_size} is read. It is at byte 48 in both the x86-64 layout (dev, ino,
     * nlink, mode, uid, gid, pad, rdev, size) and the asm-generic layout used by aarch64 (dev, ino, mode, nlink,
     * uid, gid, rdev, pad, size). 144 bytes on x86-64, 128 on aarch64: allocate the larger.
     */
    static final long STAT_SIZE = 144;
    static final long STAT_ST_SIZE = 48;

    /** {@code CMSG_ALIGN}: cmsg headers and data are aligned to {@code sizeof(size_t)}. */
    static long cmsgAlign(long n) {
        return (n + 7) & ~7L;
    }

    /** {@code CMSG_SPACE(n)}. */
    static long cmsgSpace(long n) {
        return CMSGHDR.byteSize() + cmsgAlign(n);
    }

    /** {@code CMSG_LEN(n)}. */
    static long cmsgLen(long n) {
        return CMSGHDR.byteSize() + n;
    }

    // ---- binding ----
    static final String UNAVAILABLE = checkAccess();
    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    private static final MethodHandle SOCKET = bind("socket", JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle SOCKETPAIR =
            bind("socketpair", JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS);
    private static final MethodHandle BIND = bind("bind", JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle LISTEN = bind("listen", JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle ACCEPT4 = bind("accept4", JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT);
    private static final MethodHandle CONNECT = bind("connect", JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle SENDMSG = bind("sendmsg", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle RECVMSG = bind("recvmsg", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle GETSOCKOPT =
            bind("getsockopt", JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle SETSOCKOPT =
            bind("setsockopt", JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle SHUTDOWN = bind("shutdown", JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle CLOSE = bind("close", JAVA_INT, JAVA_INT);
    private static final MethodHandle FCHMOD = bind("fchmod", JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle POLL = bind("poll", JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT);
    private static final MethodHandle READ = bind("read", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG);
    private static final MethodHandle WRITE = bind("write", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG);
    private static final MethodHandle EVENTFD = bind("eventfd", JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle MEMFD_CREATE = bind("memfd_create", JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle FTRUNCATE = bind("ftruncate", JAVA_INT, JAVA_INT, JAVA_LONG);
    private static final MethodHandle FSTAT = bind("fstat", JAVA_INT, JAVA_INT, ADDRESS);
    private static final MethodHandle MMAP =
            bind("mmap", ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG);
    private static final MethodHandle MUNMAP = bind("munmap", JAVA_INT, ADDRESS, JAVA_LONG);
    /** {@code int fcntl(int fd, int cmd, ...)}: bound with one variadic int argument. */
    private static final MethodHandle FCNTL_INT = bindVariadic("fcntl", 2, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle SYSCONF = bind("sysconf", JAVA_LONG, JAVA_INT);
    private static final MethodHandle GETTID = bind("gettid", JAVA_INT);
    private static final MethodHandle GETPID = bind("getpid", JAVA_INT);
    private static final MethodHandle TGKILL = bind("tgkill", JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle SIGACTION = bind("sigaction", JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);

    private static String checkAccess() {
        if (!Native.class.getModule().isNativeAccessEnabled()) {
            return "vfu-core needs native access for Linux system calls: start java with "
                    + "--enable-native-access=ALL-UNNAMED (or --enable-native-access=<module> when vfu-core "
                    + "is on the module path)";
        }
        String os = System.getProperty("os.name", "");
        String arch = System.getProperty("os.arch", "");
        if (!os.equals("Linux") || !(arch.equals("amd64") || arch.equals("x86_64") || arch.equals("aarch64"))) {
            return "vfu-core's Linux bindings support Linux on x86-64 and aarch64 only, not " + os + "/" + arch;
        }
        return null;
    }

    private static MethodHandle bind(String name, ValueLayout result, ValueLayout... args) {
        return bindWith(name, FunctionDescriptor.of(result, args), Linker.Option.captureCallState("errno"));
    }

    private static MethodHandle bindVariadic(String name, int firstVariadic, ValueLayout result, ValueLayout... args) {
        return bindWith(name, FunctionDescriptor.of(result, args),
                Linker.Option.captureCallState("errno"), Linker.Option.firstVariadicArg(firstVariadic));
    }

    private static MethodHandle bindWith(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        if (UNAVAILABLE != null) {
            return null;
        }
        MemorySegment symbol = LIBC.find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc function not found: " + name));
        return LINKER.downcallHandle(symbol, descriptor, options);
    }

    /** Throws the one actionable message when native calls are not possible. */
    static void ensureAvailable() {
        if (UNAVAILABLE != null) {
            throw new UnsupportedOperationException(UNAVAILABLE);
        }
    }

    // ---- errno helpers ----
    static final int EINTR = Errno.EINTR.value();
    static final int EAGAIN = Errno.EAGAIN.value();

    static MemorySegment errnoSegment(Arena arena) {
        return arena.allocate(CAPTURE_LAYOUT);
    }

    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /** Rethrows what a downcall can throw (unchecked only); anything else is a bug. */
    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new AssertionError("unexpected checked exception from a downcall", t);
    }

    // ---- wrappers (EINTR retried unless noted) ----

    static int socket(Arena arena, int domain, int type, int protocol) throws LinuxException {
        MemorySegment err = errnoSegment(arena);
        try {
            while (true) {
                int r = (int) SOCKET.invokeExact(err, domain, type, protocol);
                if (r >= 0) {
                    return r;
                }
                int e = errno(err);
                if (e != EINTR) {
                    throw new LinuxException("socket", e);
                }
            }
        } catch (LinuxException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Fills {@code sv} (two ints) with the connected pair. */
    static void socketpair(Arena arena, int domain, int type, int protocol, MemorySegment sv) throws LinuxException {
        MemorySegment err = errnoSegment(arena);
        try {
            while (true) {
                int r = (int) SOCKETPAIR.invokeExact(err, domain, type, protocol, sv);
                if (r == 0) {
                    return;
                }
                int e = errno(err);
                if (e != EINTR) {
                    throw new LinuxException("socketpair", e);
                }
            }
        } catch (LinuxException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void bind(Arena arena, int fd, MemorySegment addr, int len, String context) throws LinuxException {
        simple("bind", arena, context, err -> (int) BIND.invokeExact(err, fd, addr, len));
    }

    static void listen(Arena arena, int fd, int backlog, String context) throws LinuxException {
        simple("listen", arena, context, err -> (int) LISTEN.invokeExact(err, fd, backlog));
    }

    static int accept4(Arena arena, int fd, int flags) throws LinuxException {
        return simple("accept4", arena, null,
                err -> (int) ACCEPT4.invokeExact(err, fd, MemorySegment.NULL, MemorySegment.NULL, flags));
    }

    /**
     * connect(2). On EINTR the call is repeated; for an AF_UNIX stream socket an interrupted connect leaves the
     * socket unconnected, and a repeat that reports EISCONN means the first attempt completed.
     */
    static void connect(Arena arena, int fd, MemorySegment addr, int len, String context) throws LinuxException {
        MemorySegment err = errnoSegment(arena);
        boolean interrupted = false;
        try {
            while (true) {
                int r = (int) CONNECT.invokeExact(err, fd, addr, len);
                if (r == 0) {
                    return;
                }
                int e = errno(err);
                if (e == EINTR) {
                    interrupted = true;
                    continue;
                }
                if (interrupted && e == Errno.EISCONN.value()) {
                    return;
                }
                throw new LinuxException("connect", e, context);
            }
        } catch (LinuxException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static long sendmsg(Arena arena, int fd, MemorySegment msg, int flags) throws LinuxException {
        return sendmsg(errnoSegment(arena), fd, msg, flags);
    }

    /**
     * sendmsg(2) with a caller-provided errno capture segment ({@link #errnoSegment}): the hot path, without
     * a lambda or an arena per call.
     */
    static long sendmsg(MemorySegment err, int fd, MemorySegment msg, int flags) throws LinuxException {
        try {
            while (true) {
                long r = (long) SENDMSG.invokeExact(err, fd, msg, flags);
                if (r >= 0) {
                    return r;
                }
                int e = errno(err);
                if (e != EINTR) {
                    throw new LinuxException("sendmsg", e);
                }
            }
        } catch (LinuxException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static long recvmsg(Arena arena, int fd, MemorySegment msg, int flags) throws LinuxException {
        return recvmsg(errnoSegment(arena), fd, msg, flags);
    }

    /** recvmsg(2) with a caller-provided errno capture segment (see {@link #sendmsg(MemorySegment, int, MemorySegment, int)}). */
    static long recvmsg(MemorySegment err, int fd, MemorySegment msg, int flags) throws LinuxException {
        try {
            while (true) {
                long r = (long) RECVMSG.invokeExact(err, fd, msg, flags);
                if (r >= 0) {
                    return r;
                }
                int e = errno(err);
                if (e != EINTR) {
                    throw new LinuxException("recvmsg", e);
                }
            }
        } catch (LinuxException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * recvmsg(2) with {@link #MSG_DONTWAIT} added to {@code flags}: EINTR retried, {@code -1} when nothing can be
     * read now (EAGAIN, no exception: a miss is an expected outcome here).
     */
    static long recvmsgNow(MemorySegment err, int fd, MemorySegment msg, int flags) throws LinuxException {
        long r;
        do {
            r = resultOrWouldBlock("recvmsg", recvmsgOnce(err, fd, msg, flags | MSG_DONTWAIT), err);
        } while (r == RETRY);
        return r;
    }

    /**
     * recvmsg(2) once, NOT retried on EINTR: returns the result, {@code -1} with errno in {@code err} (the caller
     * decides whether an interrupted receive is retried).
     */
    static long recvmsgOnce(MemorySegment err, int fd, MemorySegment msg, int flags) {
        try {
            return (long) RECVMSG.invokeExact(err, fd, msg, flags);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** gettid(2): the calling (carrier) thread's kernel id. */
    static int gettid(Arena arena) {
        try {
            return (int) GETTID.invokeExact(errnoSegment(arena));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** getpid(2). */
    static int getpid(Arena arena) {
        try {
            return (int) GETPID.invokeExact(errnoSegment(arena));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** tgkill(2): signals one thread of a thread group; returns 0 or the errno (e.g. ESRCH). */
    static int tgkill(MemorySegment err, int tgid, int tid, int sig) {
        try {
            int r = (int) TGKILL.invokeExact(err, tgid, tid, sig);
            return r == 0 ? 0 : errno(err);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** sigaction(2); {@code act} or {@code old} may be {@link MemorySegment#NULL}. */
    static void sigaction(Arena arena, int sig, MemorySegment act, MemorySegment old) throws LinuxException {
        simple("sigaction", arena, "signal " + sig, err -> (int) SIGACTION.invokeExact(err, sig, act, old));
    }

    /** The address of a libc function (for a signal handler that is plain C). */
    static MemorySegment libcFunction(String name) {
        return LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc function not found: " + name));
    }

    static void setsockopt(Arena arena, int fd, int level, int name, MemorySegment value) throws LinuxException {
        int len = (int) value.byteSize();
        simple("setsockopt", arena, null, err -> (int) SETSOCKOPT.invokeExact(err, fd, level, name, value, len));
    }

    static void getsockopt(Arena arena, int fd, int level, int name, MemorySegment value, MemorySegment len)
            throws LinuxException {
        simple("getsockopt", arena, null, err -> (int) GETSOCKOPT.invokeExact(err, fd, level, name, value, len));
    }

    /** shutdown(2); returns 0 or the errno (callers decide which errors matter). */
    static int shutdown(Arena arena, int fd, int how) {
        MemorySegment err = errnoSegment(arena);
        try {
            int r = (int) SHUTDOWN.invokeExact(err, fd, how);
            return r == 0 ? 0 : errno(err);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * close(2), NOT retried on EINTR: on Linux the descriptor is released even when close reports EINTR, and a
     * repeat could close a descriptor another thread has just opened. Returns 0, or the errno (never EINTR).
     */
    static int close(Arena arena, int fd) {
        MemorySegment err = errnoSegment(arena);
        try {
            int r = (int) CLOSE.invokeExact(err, fd);
            if (r == 0) {
                return 0;
            }
            int e = errno(err);
            return e == EINTR ? 0 : e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void fchmod(Arena arena, int fd, int mode) throws LinuxException {
        simple("fchmod", arena, null, err -> (int) FCHMOD.invokeExact(err, fd, mode));
    }

    /** poll(2) once: returns the count, or {@code -1} on EINTR (the caller recomputes its timeout). */
    static int pollOnce(Arena arena, MemorySegment fds, long nfds, int timeoutMillis) throws LinuxException {
        return pollOnce(errnoSegment(arena), fds, nfds, timeoutMillis);
    }

    /** As {@link #pollOnce(Arena, MemorySegment, long, int)} with a caller-provided errno capture segment. */
    static int pollOnce(MemorySegment err, MemorySegment fds, long nfds, int timeoutMillis) throws LinuxException {
        try {
            int r = (int) POLL.invokeExact(err, fds, nfds, timeoutMillis);
            if (r >= 0) {
                return r;
            }
            int e = errno(err);
            if (e == EINTR) {
                return -1;
            }
            throw new LinuxException("poll", e);
        } catch (LinuxException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** read(2): returns bytes read, or {@code -1} when the fd is non-blocking and would block (EAGAIN). */
    static long read(Arena arena, int fd, MemorySegment buf, long count) throws LinuxException {
        return readWrite("read", READ, arena, fd, buf, count);
    }

    /** write(2): returns bytes written, or {@code -1} when the fd is non-blocking and would block (EAGAIN). */
    static long write(Arena arena, int fd, MemorySegment buf, long count) throws LinuxException {
        return readWrite("write", WRITE, arena, fd, buf, count);
    }

    private static long readWrite(String call, MethodHandle handle, Arena arena, int fd, MemorySegment buf,
            long count) throws LinuxException {
        MemorySegment err = errnoSegment(arena);
        try {
            long r;
            do {
                r = resultOrWouldBlock(call, (long) handle.invokeExact(err, fd, buf, count), err);
            } while (r == RETRY);
            return r;
        } catch (LinuxException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** What {@link #resultOrWouldBlock} returns for an interrupted call (EINTR): make it again. */
    private static final long RETRY = Long.MIN_VALUE;

    /**
     * The outcome of a call that may find nothing to do on a non-blocking fd: its result {@code r} if it
     * succeeded, {@code -1} for EAGAIN, {@link #RETRY} for EINTR; any other errno is thrown.
     */
    private static long resultOrWouldBlock(String call, long r, MemorySegment err) throws LinuxException {
        if (r >= 0) {
            return r;
        }
        int e = errno(err);
        if (e == EAGAIN) {
            return -1;
        }
        if (e == EINTR) {
            return RETRY;
        }
        throw new LinuxException(call, e);
    }

    static int eventfd(Arena arena, int initval, int flags) throws LinuxException {
        return simple("eventfd", arena, null, err -> (int) EVENTFD.invokeExact(err, initval, flags));
    }

    static int memfdCreate(Arena arena, String name, int flags) throws LinuxException {
        MemorySegment cname = arena.allocateFrom(name);
        return simple("memfd_create", arena, name, err -> (int) MEMFD_CREATE.invokeExact(err, cname, flags));
    }

    static void ftruncate(Arena arena, int fd, long length) throws LinuxException {
        simple("ftruncate", arena, null, err -> (int) FTRUNCATE.invokeExact(err, fd, length));
    }

    /** fstat(2), returning {@code st_size}. */
    static long fstatSize(Arena arena, int fd) throws LinuxException {
        MemorySegment st = arena.allocate(STAT_SIZE, 8);
        simple("fstat", arena, null, err -> (int) FSTAT.invokeExact(err, fd, st));
        return st.get(JAVA_LONG, STAT_ST_SIZE);
    }

    /** mmap(2) with a NULL hint; returns the address. */
    static long mmap(Arena arena, long length, int prot, int flags, int fd, long offset) throws LinuxException {
        MemorySegment err = errnoSegment(arena);
        try {
            MemorySegment r = (MemorySegment) MMAP.invokeExact(err, MemorySegment.NULL, length, prot, flags, fd, offset);
            if (r.address() != -1L) { // MAP_FAILED
                return r.address();
            }
            throw new LinuxException("mmap", errno(err),
                    "fd " + fd + ", offset " + offset + ", length " + length);
        } catch (LinuxException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void munmap(Arena arena, long address, long length) throws LinuxException {
        MemorySegment addr = MemorySegment.ofAddress(address);
        simple("munmap", arena, null, err -> (int) MUNMAP.invokeExact(err, addr, length));
    }

    static int fcntl(Arena arena, int fd, int cmd, int arg) throws LinuxException {
        return simple("fcntl", arena, null, err -> (int) FCNTL_INT.invokeExact(err, fd, cmd, arg));
    }

    static long sysconf(Arena arena, int name) throws LinuxException {
        MemorySegment err = errnoSegment(arena);
        try {
            ERRNO.set(err, 0L, 0);
            long r = (long) SYSCONF.invokeExact(err, name);
            if (r == -1L) {
                throw new LinuxException("sysconf", errno(err), "name " + name);
            }
            return r;
        } catch (LinuxException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- the common shape: call, retry EINTR, throw on -1 ----

    @FunctionalInterface
    private interface IntCall {
        int call(MemorySegment errno) throws Throwable;
    }

    @FunctionalInterface
    private interface LongCall {
        long call(MemorySegment errno) throws Throwable;
    }

    private static int simple(String name, Arena arena, String context, IntCall call) throws LinuxException {
        MemorySegment err = errnoSegment(arena);
        try {
            while (true) {
                int r = call.call(err);
                if (r >= 0) {
                    return r;
                }
                int e = errno(err);
                if (e != EINTR) {
                    throw new LinuxException(name, e, context);
                }
            }
        } catch (LinuxException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static long simpleLong(String name, Arena arena, LongCall call) throws LinuxException {
        MemorySegment err = errnoSegment(arena);
        try {
            while (true) {
                long r = call.call(err);
                if (r >= 0) {
                    return r;
                }
                int e = errno(err);
                if (e != EINTR) {
                    throw new LinuxException(name, e);
                }
            }
        } catch (LinuxException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }
}
