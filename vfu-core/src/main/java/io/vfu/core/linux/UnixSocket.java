package io.vfu.core.linux;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An {@code AF_UNIX} {@code SOCK_STREAM} socket (always {@code SOCK_CLOEXEC}) with gathered sends,
 * {@code SCM_RIGHTS} fd passing and {@code SO_PEERCRED}.
 *
 * <h2>Memory</h2>
 * Every segment given to {@link #send} or {@link #receive} must be a native segment (from an {@link Arena}, a
 * {@link Mapping}, ...): the kernel reads and writes it in place, nothing is copied. Heap segments are rejected
 * with {@link IllegalArgumentException}; so are read-only destinations.
 *
 * <h2>Threading</h2>
 * One thread may receive while others send. {@link #send} is atomic per call: concurrent sends do not interleave
 * their bytes (an internal lock serialises them). Receives are not serialised: use one receiving thread.
 * {@link #close()} may be called from any thread at any time: it shuts the socket down, which wakes a thread
 * blocked in {@link #receive}, {@link #accept} or {@link #awaitReadable} (they see end-of-file, or
 * {@link LinuxException} EBADF/EINVAL), and the descriptor is released when the last such call returns, so its
 * number is never reused under a running call. (That shutdown acts on the socket itself, so it also ends the
 * connection for other processes holding a passed copy of it; an idle socket is simply closed.) Operations
 * started after close throw {@link LinuxException} EBADF.
 *
 * <h2>Blocking</h2>
 * All calls block in the kernel: run them on platform threads (a virtual thread blocked in a native call pins
 * its carrier).
 */
public final class UnixSocket implements AutoCloseable {
    /** Default for {@link #maxFds()}. */
    public static final int DEFAULT_MAX_FDS = 16;
    /** The kernel's limit on fds in one message ({@code SCM_MAX_FD}). */
    public static final int MAX_FDS = Native.SCM_MAX_FD;
    /** Default permission bits of a listening socket's file. */
    public static final int DEFAULT_MODE = 0600;

    private static final int SKIP_CHUNK = 64 * 1024;
    private static final long IOVEC_SIZE = Native.IOVEC.byteSize();
    private static final int SCRATCH_IOVECS = 8;

    /**
     * The native structures of one sendmsg/recvmsg: reused per socket so that the hot path allocates nothing
     * (no arena, no errno segment, no lambda per call).
     */
    private static final class IoScratch {
        final MemorySegment msg;
        final MemorySegment iov;
        final MemorySegment control;
        final MemorySegment err;
        /** A pollfd for {@link #awaitReadable} without waiting. */
        final MemorySegment pollfd;
        final int iovMax;

        IoScratch(Arena arena, int iovMax, int maxFds) {
            this.iovMax = iovMax;
            this.pollfd = arena.allocate(Native.POLLFD);
            this.msg = arena.allocate(Native.MSGHDR);
            this.iov = arena.allocate(Native.IOVEC, iovMax);
            this.control = maxFds > 0 ? arena.allocate(Native.cmsgSpace(4L * maxFds), 8) : MemorySegment.NULL;
            this.err = Native.errnoSegment(arena);
        }
    }

    private final FdOwner owner;
    private final Path path;
    private final Object fileKey;
    private final ReentrantLock sendLock = new ReentrantLock();
    private final ReentrantLock receiveLock = new ReentrantLock();
    /** Native msghdr/iovec/control/errno reused by every send (guarded by sendLock). */
    private final IoScratch sendScratch = new IoScratch(Arena.ofAuto(), SCRATCH_IOVECS, MAX_FDS);
    /**
     * The same for receives (guarded by receiveLock; a concurrent receive uses a temporary one, or waits its turn
     * when a receive timeout is set).
     */
    private final IoScratch receiveScratch = new IoScratch(Arena.ofAuto(), 2, MAX_FDS);
    private volatile int maxFds = DEFAULT_MAX_FDS;
    /** The receive timeout when {@link ReceiveWatchdog} bounds it; null for none (or when SO_RCVTIMEO does). */
    private volatile ReceiveWatchdog.Watch watch;
    /** Orders changes of {@link #watch}. */
    private final Object watchLock = new Object();

    private UnixSocket(int fd, Path path, Object fileKey) {
        this.owner = new FdOwner(fd);
        this.path = path;
        this.fileKey = fileKey;
    }

    // ---------------------------------------------------------------- creation

    /** {@link #listen(Path, int, int)} with mode {@code 0600} and backlog 1. */
    public static UnixSocket listen(Path path) throws IOException {
        return listen(path, DEFAULT_MODE, 1);
    }

    /**
     * Creates the socket file at {@code path}, binds and listens.
     *
     * <p>The file gets exactly the permission bits {@code mode}: the socket is {@code fchmod}ed before
     * {@code bind}, so the file is never created more permissive than {@code mode} whatever the umask, and is
     * raised to {@code mode} afterwards if the umask removed bits. An existing file at {@code path} (e.g. a stale
     * socket of a dead server) is never removed: bind fails with {@link Errno#EADDRINUSE}. {@link #close()}
     * unlinks the file if it is still the one this call created.
     *
     * @param mode    permission bits, {@code 0} to {@code 0777}
     * @param backlog pending-connection queue length for listen(2)
     * @throws LinuxException e.g. {@code bind: EADDRINUSE} or {@code ENAMETOOLONG} (sun_path holds 107 bytes)
     */
    public static UnixSocket listen(Path path, int mode, int backlog) throws IOException {
        Objects.requireNonNull(path, "path");
        if ((mode & ~0777) != 0) {
            throw new IllegalArgumentException("mode must be permission bits 0..0777, got 0" + Integer.toOctalString(mode));
        }
        if (backlog < 0) {
            throw new IllegalArgumentException("negative backlog " + backlog);
        }
        Native.ensureAvailable();
        encode("bind", path); // the final name must fit sun_path
        // Bind and listen under a private sibling name, then link it to the real name: a client that sees
        // the path can connect at once (libvfio-user's sample client polls stat() and connects immediately),
        // and link(2) fails on an existing file, so a live socket is never replaced.
        Path staging = path.resolveSibling(path.getFileName() + ".~" + ProcessHandle.current().pid() + "."
                + STAGING.incrementAndGet());
        boolean atomic = staging.toString().getBytes(pathCharset()).length < Native.SUN_PATH_MAX;
        Path bindPath = atomic ? staging : path;
        byte[] name = encode("bind", bindPath);
        try (Arena arena = Arena.ofConfined()) {
            int fd = Native.socket(arena, Native.AF_UNIX, Native.SOCK_STREAM | Native.SOCK_CLOEXEC, 0);
            boolean bound = false;
            try {
                Native.fchmod(arena, fd, mode);
                MemorySegment addr = sockaddr(arena, name);
                try {
                    Native.bind(arena, fd, addr, addrLen(name), path.toString());
                } catch (LinuxException e) {
                    if (e.errno() == Errno.EADDRINUSE) {
                        throw new LinuxException("bind", e.errnoValue(), path
                                + " exists (a stale socket? remove it if no server is using it)");
                    }
                    throw e;
                }
                bound = true;
                Set<PosixFilePermission> wanted = permissions(mode);
                if (!Files.getPosixFilePermissions(bindPath, LinkOption.NOFOLLOW_LINKS).equals(wanted)) {
                    Files.setPosixFilePermissions(bindPath, wanted);
                }
                Object key = Files.readAttributes(bindPath, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS)
                        .fileKey();
                Native.listen(arena, fd, backlog, path.toString());
                if (atomic) {
                    try {
                        Files.createLink(path, staging);
                    } catch (java.nio.file.FileAlreadyExistsException e) {
                        throw new LinuxException("bind", Errno.EADDRINUSE.value(), path
                                + " exists (a stale socket? remove it if no server is using it)");
                    } finally {
                        Files.deleteIfExists(staging);
                    }
                }
                return new UnixSocket(fd, path, key);
            } catch (IOException | RuntimeException e) {
                if (bound && !atomic) {
                    try {
                        Files.deleteIfExists(path);
                    } catch (IOException suppressed) {
                        e.addSuppressed(suppressed);
                    }
                }
                Fds.closeQuietly(fd);
                throw e;
            }
        }
    }

    private static final java.util.concurrent.atomic.AtomicLong STAGING = new java.util.concurrent.atomic.AtomicLong();

    /**
     * Connects to the socket at {@code path}.
     *
     * @throws LinuxException e.g. {@code connect: ENOENT} (no such file) or {@code ECONNREFUSED} (nobody
     *                        listens); the message names the path
     */
    public static UnixSocket connect(Path path) throws IOException {
        Objects.requireNonNull(path, "path");
        Native.ensureAvailable();
        byte[] name = encode("connect", path);
        try (Arena arena = Arena.ofConfined()) {
            int fd = Native.socket(arena, Native.AF_UNIX, Native.SOCK_STREAM | Native.SOCK_CLOEXEC, 0);
            try {
                Native.connect(arena, fd, sockaddr(arena, name), addrLen(name), path.toString());
                return new UnixSocket(fd, null, null);
            } catch (IOException | RuntimeException e) {
                Fds.closeQuietly(fd);
                throw e;
            }
        }
    }

    /** A connected pair of sockets (socketpair(2)). */
    public static UnixSocket[] pair() throws IOException {
        Native.ensureAvailable();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sv = arena.allocate(JAVA_INT, 2);
            Native.socketpair(arena, Native.AF_UNIX, Native.SOCK_STREAM | Native.SOCK_CLOEXEC, 0, sv);
            return new UnixSocket[] {
                new UnixSocket(sv.getAtIndex(JAVA_INT, 0), null, null),
                new UnixSocket(sv.getAtIndex(JAVA_INT, 1), null, null)
            };
        }
    }

    /**
     * Takes ownership of a connected stream socket descriptor, e.g. one received with {@code SCM_RIGHTS}
     * ({@link FdList#take(int)}). {@link #close()} will close it.
     */
    public static UnixSocket adopt(int fd) {
        Native.ensureAvailable();
        return new UnixSocket(fd, null, null);
    }

    /**
     * Waits for and accepts one connection (accept4 with {@code SOCK_CLOEXEC}).
     *
     * @throws LinuxException EBADF if this socket was closed, also while waiting
     */
    public UnixSocket accept() throws IOException {
        int fd = owner.acquire("accept4");
        try (Arena arena = Arena.ofConfined()) {
            return new UnixSocket(Native.accept4(arena, fd, Native.SOCK_CLOEXEC), null, null);
        } catch (LinuxException e) {
            if (owner.isClosed()) {
                throw new LinuxException("accept4", Errno.EBADF.value(), "socket closed while waiting");
            }
            throw e;
        } finally {
            owner.release();
        }
    }

    // ---------------------------------------------------------------- accessors

    /** The descriptor (owned by this object: do not close it). */
    public int fd() {
        return owner.fd();
    }

    /** The path this socket is bound to (listening sockets), or {@code null}. */
    public Path path() {
        return path;
    }

    /** How many fds one {@link #receive} accepts; more arriving fds are dropped and flag the list truncated. */
    public int maxFds() {
        return maxFds;
    }

    /** Sets {@link #maxFds()}: 0 to {@value #MAX_FDS}. */
    public void maxFds(int n) {
        if (n < 0 || n > MAX_FDS) {
            throw new IllegalArgumentException("maxFds must be 0.." + MAX_FDS + ", got " + n);
        }
        maxFds = n;
    }

    // ---------------------------------------------------------------- I/O

    /**
     * Writes every byte of {@code parts}, in order, gathered by sendmsg(2) straight from the segments.
     *
     * <p>{@code fds} (may be {@code null} or empty; at most {@value #MAX_FDS}) travel as one
     * {@code SCM_RIGHTS} message attached to the first sendmsg, i.e. to the first byte. A partial write is
     * continued with the remaining bytes and no ancillary data; EINTR is retried. {@code MSG_NOSIGNAL}: a closed
     * peer gives {@code EPIPE} as an exception, never a signal. The caller keeps ownership of {@code fds}.
     *
     * @param parts native segments; empty ones are skipped
     * @throws IllegalArgumentException a heap segment, too many fds, or fds with no byte to carry them
     * @throws LinuxException           e.g. {@code sendmsg: EPIPE}, {@code ECONNRESET}
     */
    public void send(int[] fds, MemorySegment... parts) throws IOException {
        Objects.requireNonNull(parts, "parts");
        int nfds = checkFds(fds);
        long total = 0;
        for (int i = 0; i < parts.length; i++) {
            checkPart(parts[i], i);
            total += parts[i].byteSize();
        }
        if (!nothingToSend(total, nfds)) {
            sendLocked(fds, nfds, null, null, null, null, parts, total);
        }
    }

    /**
     * As {@link #send(int[], MemorySegment...)} for exactly two parts (either may be empty, e.g. a message header
     * and its data), without an array: the hot path of every vfio-user message. Storing segments into a reused
     * {@code MemorySegment[]} costs an interface subtype check per element, which showed in profiles of the
     * REGION_READ round trip.
     */
    public void send(int[] fds, MemorySegment first, MemorySegment second) throws IOException {
        send(fds, first, second, MemorySegment.NULL, MemorySegment.NULL);
    }

    /**
     * As {@link #send(int[], MemorySegment, MemorySegment)} for up to four parts (any may be empty), e.g. a reply
     * held back with its data, then the next message and its data.
     */
    public void send(int[] fds, MemorySegment p0, MemorySegment p1, MemorySegment p2, MemorySegment p3)
            throws IOException {
        checkPart(p0, 0);
        checkPart(p1, 1);
        checkPart(p2, 2);
        checkPart(p3, 3);
        int nfds = checkFds(fds);
        long total = p0.byteSize() + p1.byteSize() + p2.byteSize() + p3.byteSize();
        if (!nothingToSend(total, nfds)) {
            sendLocked(fds, nfds, p0, p1, p2, p3, null, total);
        }
    }

    /** A part must be a native segment (the message naming it is built only when it is not). */
    private static void checkPart(MemorySegment part, int index) {
        if (part == null || !part.isNative()) {
            requireNative(part, "part " + index);
        }
    }

    /** Sends {@code parts}, or if null {@code p0} to {@code p3}, under the send lock. */
    private void sendLocked(int[] fds, int nfds, MemorySegment p0, MemorySegment p1, MemorySegment p2,
                            MemorySegment p3, MemorySegment[] parts, long total) throws IOException {
        sendLock.lock();
        try {
            int fd = owner.acquire("sendmsg");
            try {
                if (parts == null) {
                    sendFew(sendScratch, fd, fds, nfds, p0, p1, p2, p3, total);
                } else if (parts.length <= sendScratch.iovMax) {
                    sendAll(sendScratch, fd, fds, nfds, parts, total);
                } else {
                    try (Arena arena = Arena.ofConfined()) {
                        sendAll(new IoScratch(arena, Math.min(parts.length, Native.IOV_MAX), nfds), fd, fds, nfds,
                                parts, total);
                    }
                }
            } finally {
                owner.release();
            }
        } finally {
            sendLock.unlock();
        }
    }

    /** Up to four parts with one sendmsg (iovecs straight from the segments); a partial write goes on via sendAll. */
    private static void sendFew(IoScratch scratch, int fd, int[] fds, int nfds, MemorySegment p0, MemorySegment p1,
                                MemorySegment p2, MemorySegment p3, long total) throws LinuxException {
        MemorySegment iov = scratch.iov;
        int n = iovec(iov, 0, p0);
        n = iovec(iov, n, p1);
        n = iovec(iov, n, p2);
        n = iovec(iov, n, p3);
        long w = sendmsg(scratch, fd, fds, nfds, n);
        if (w < total) { // a partial write (a full socket buffer): the rest without fds, the general way
            sendAll(scratch, fd, null, 0, rest(w, p0, p1, p2, p3), total - w);
        }
    }

    /** Sets iovec {@code n} to {@code part} unless it is empty; returns the next free index. */
    private static int iovec(MemorySegment iov, int n, MemorySegment part) {
        long size = part.byteSize();
        if (size == 0) {
            return n;
        }
        iov.set(JAVA_LONG, n * IOVEC_SIZE, part.address());
        iov.set(JAVA_LONG, n * IOVEC_SIZE + 8, size);
        return n + 1;
    }

    /** What is left of the parts after the first {@code written} bytes (rare: a full socket buffer). */
    private static MemorySegment[] rest(long written, MemorySegment... parts) {
        java.util.List<MemorySegment> left = new java.util.ArrayList<>(parts.length);
        long skip = written;
        for (MemorySegment part : parts) {
            long size = part.byteSize();
            if (skip >= size) {
                skip -= size;
            } else {
                left.add(skip == 0 ? part : part.asSlice(skip));
                skip = 0;
            }
        }
        return left.toArray(MemorySegment[]::new);
    }

    /** True if a send has no bytes (then a no-op); fds need at least one byte to travel with. */
    private static boolean nothingToSend(long total, int nfds) {
        if (total == 0 && nfds > 0) {
            throw new IllegalArgumentException("fds need at least one byte of data to travel with");
        }
        return total == 0;
    }

    /** Validates {@code fds} (may be null) for one sendmsg; returns how many there are. */
    private static int checkFds(int[] fds) {
        int nfds = fds == null ? 0 : fds.length;
        if (nfds > MAX_FDS) {
            throw new IllegalArgumentException(nfds + " fds exceed the kernel limit of " + MAX_FDS + " per message");
        }
        for (int i = 0; i < nfds; i++) {
            if (fds[i] < 0) {
                throw new IllegalArgumentException("negative fd " + fds[i] + " at index " + i);
            }
        }
        return nfds;
    }

    /**
     * One sendmsg of the first {@code iovCount} iovecs of {@code scratch}, with {@code fds} (if any) as
     * {@code SCM_RIGHTS}; EINTR retried by {@link Native#sendmsg}.
     *
     * @return bytes written, at least 1
     */
    private static long sendmsg(IoScratch scratch, int fd, int[] fds, int nfds, int iovCount) throws LinuxException {
        MemorySegment msg = scratch.msg;
        MemorySegment control = MemorySegment.NULL;
        long controlLen = 0;
        if (nfds > 0) {
            control = scratch.control;
            controlLen = Native.cmsgSpace(4L * nfds);
            control.set(JAVA_LONG, 0, Native.cmsgLen(4L * nfds));
            control.set(JAVA_INT, Native.CMSG_LEVEL, Native.SOL_SOCKET);
            control.set(JAVA_INT, Native.CMSG_TYPE, Native.SCM_RIGHTS);
            for (int i = 0; i < nfds; i++) {
                control.set(JAVA_INT, Native.CMSGHDR.byteSize() + 4L * i, fds[i]);
            }
        }
        msg.set(ADDRESS, Native.MSG_IOV, scratch.iov);
        msg.set(JAVA_LONG, Native.MSG_IOVLEN, iovCount);
        msg.set(ADDRESS, Native.MSG_CONTROL, control);
        msg.set(JAVA_LONG, Native.MSG_CONTROLLEN, controlLen);
        long w = Native.sendmsg(scratch.err, fd, msg, Native.MSG_NOSIGNAL);
        if (w == 0) {
            throw new LinuxException("sendmsg", Errno.EIO.value(), "wrote 0 bytes");
        }
        return w;
    }

    private static void sendAll(IoScratch scratch, int fd, int[] fds, int nfds, MemorySegment[] parts, long total)
            throws LinuxException {
        int iovMax = scratch.iovMax;
        MemorySegment iov = scratch.iov;
        int part = 0;
        long offset = 0;
        long sent = 0;
        boolean first = true;
        while (sent < total) {
            while (offset == parts[part].byteSize()) { // finished or empty parts
                part++;
                offset = 0;
            }
            int n = 0;
            long off = offset;
            for (int p = part; p < parts.length && n < iovMax; p++, off = 0) {
                long len = parts[p].byteSize() - off;
                if (len > 0) {
                    iov.set(JAVA_LONG, n * IOVEC_SIZE, parts[p].address() + off);
                    iov.set(JAVA_LONG, n * IOVEC_SIZE + 8, len);
                    n++;
                }
            }
            long w = sendmsg(scratch, fd, fds, first ? nfds : 0, n);
            first = false;
            sent += w;
            while (w > 0) {
                long rest = parts[part].byteSize() - offset;
                if (w >= rest) {
                    w -= rest;
                    part++;
                    offset = 0;
                } else {
                    offset += w;
                    w = 0;
                }
            }
        }
    }

    /**
     * One recvmsg(2) into {@code dst} (EINTR retried), with {@code MSG_CMSG_CLOEXEC} and room for
     * {@link #maxFds()} fds. Fds that arrive are appended to {@code fds}, which then owns them; if more arrived
     * than fit, the kernel closes the rest and {@code fds.truncated()} becomes true (the ones that fit are still
     * collected).
     *
     * @param dst a writable native segment, not empty
     * @return bytes read (1..dst size), 0 at end-of-stream
     */
    public long receive(MemorySegment dst, FdList fds) throws IOException {
        requireWritableNative(dst);
        Objects.requireNonNull(fds, "fds");
        if (dst.byteSize() == 0) {
            throw new IllegalArgumentException("receive into an empty segment");
        }
        return receiveFrom(dst, 0, fds);
    }

    /**
     * As {@link #receive(MemorySegment, FdList)} into {@code dst} from byte {@code offset} on, without a slice
     * per call (for callers that stage bytes in one buffer).
     *
     * @param offset {@code 0 <= offset < dst.byteSize()}
     */
    public long receive(MemorySegment dst, long offset, FdList fds) throws IOException {
        requireWritableNative(dst);
        Objects.requireNonNull(fds, "fds");
        Objects.checkIndex(offset, dst.byteSize());
        return receiveFrom(dst, offset, fds);
    }

    /**
     * As {@link #receiveFully(MemorySegment, FdList)} for the bytes of {@code dst} from {@code offset} on.
     *
     * @param offset {@code 0 <= offset <= dst.byteSize()}
     */
    public void receiveFully(MemorySegment dst, long offset, FdList fds) throws IOException {
        requireWritableNative(dst);
        Objects.requireNonNull(fds, "fds");
        Objects.checkFromToIndex(offset, dst.byteSize(), dst.byteSize());
        long size = dst.byteSize();
        for (long done = offset; done < size; ) {
            long n = receiveFrom(dst, done, fds);
            if (n == 0) {
                throw new EOFException("end of stream after " + done + " of " + size + " bytes");
            }
            done += n;
        }
    }

    /**
     * One recvmsg(2) scattering into {@code first} from byte {@code firstOffset} on, then into all of
     * {@code second} (e.g. the rest of a message header into a staging buffer and its body straight into
     * place). Otherwise as {@link #receive(MemorySegment, FdList)}.
     *
     * @return bytes read in total (those beyond the first part's room are in {@code second}), 0 at end-of-stream
     */
    public long receive(MemorySegment first, long firstOffset, MemorySegment second, FdList fds) throws IOException {
        requireWritableNative(first);
        requireWritableNative(second);
        Objects.requireNonNull(fds, "fds");
        Objects.checkIndex(firstOffset, first.byteSize());
        return receiveFrom(first, firstOffset, second, fds, false);
    }

    /**
     * One recvmsg(2) that does not wait ({@code MSG_DONTWAIT}): into {@code first} from byte {@code firstOffset}
     * on, then into {@code second} if it is not null; otherwise as
     * {@link #receive(MemorySegment, long, MemorySegment, FdList)}. Where a caller would poll(2) to learn whether
     * data is there and then receive it, this is one system call instead of two when it is.
     *
     * @return bytes read, 0 at end-of-stream, or {@code -1} if nothing can be read now
     */
    public long receiveNow(MemorySegment first, long firstOffset, MemorySegment second, FdList fds)
            throws IOException {
        requireWritableNative(first);
        if (second != null) {
            requireWritableNative(second);
        }
        Objects.requireNonNull(fds, "fds");
        Objects.checkIndex(firstOffset, first.byteSize());
        return receiveFrom(first, firstOffset, second, fds, true);
    }

    /** Receives into {@code dst} from byte {@code from} on (no slice per call; dst checked by the caller). */
    private long receiveFrom(MemorySegment dst, long from, FdList fds) throws IOException {
        return receiveFrom(dst, from, null, fds, false);
    }

    /**
     * The same, then into {@code second} if not null (a scatter read); waiting for data unless {@code now} (then
     * -1 if there is none).
     */
    private long receiveFrom(MemorySegment dst, long from, MemorySegment second, FdList fds, boolean now)
            throws IOException {
        int fd = owner.acquire("recvmsg");
        try {
            // A receive that does not wait needs no watch (nothing to time out).
            ReceiveWatchdog.Watch w = now ? null : watch;
            // With a timeout, a second receiver waits its turn (a watch follows one receiving thread at a time,
            // and the current one's receive is bounded); without, it uses a scratch of its own.
            if (receiveLock.tryLock() || (w != null && lockWithin(w.timeoutNanos))) {
                try {
                    return receive(receiveScratch, fd, dst, from, second, fds, w, now);
                } finally {
                    receiveLock.unlock();
                }
            }
            try (Arena arena = Arena.ofConfined()) {
                return receive(new IoScratch(arena, 2, maxFds), fd, dst, from, second, fds, null, now);
            }
        } finally {
            owner.release();
        }
    }

    /** Takes the receive lock within {@code nanos}, else fails as a receive that waited too long (EAGAIN). */
    private boolean lockWithin(long nanos) throws IOException {
        try {
            if (receiveLock.tryLock(nanos, TimeUnit.NANOSECONDS)) {
                return true;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted waiting to receive");
        }
        throw new LinuxException("recvmsg", Native.EAGAIN);
    }

    private long receive(IoScratch scratch, int fd, MemorySegment dst, long from, MemorySegment second, FdList fds,
                         ReceiveWatchdog.Watch w, boolean now) throws LinuxException {
        int max = maxFds;
        MemorySegment msg = scratch.msg;
        MemorySegment iov = scratch.iov;
        iov.set(JAVA_LONG, 0, dst.address() + from);
        iov.set(JAVA_LONG, 8, dst.byteSize() - from);
        int iovCount = 1;
        if (second != null && second.byteSize() > 0) {
            iov.set(JAVA_LONG, IOVEC_SIZE, second.address());
            iov.set(JAVA_LONG, IOVEC_SIZE + 8, second.byteSize());
            iovCount = 2;
        }
        msg.set(ADDRESS, Native.MSG_IOV, iov);
        msg.set(JAVA_LONG, Native.MSG_IOVLEN, iovCount);
        MemorySegment control = MemorySegment.NULL;
        long room = 0;
        if (max > 0) {
            control = scratch.control;
            room = Native.cmsgSpace(4L * max); // the kernel truncates (MSG_CTRUNC) beyond maxFds, as documented
        }
        msg.set(ADDRESS, Native.MSG_CONTROL, control);
        msg.set(JAVA_LONG, Native.MSG_CONTROLLEN, room);
        long n = now ? Native.recvmsgNow(scratch.err, fd, msg, Native.MSG_CMSG_CLOEXEC)
                : w == null ? Native.recvmsg(scratch.err, fd, msg, Native.MSG_CMSG_CLOEXEC)
                : w.recvmsg(scratch.err, fd, msg, Native.MSG_CMSG_CLOEXEC);
        if (n < 0) {
            return n; // nothing to read now: no message, no control data
        }
        int flags = msg.get(JAVA_INT, Native.MSG_FLAGS);
        long controlLen = Math.min(msg.get(JAVA_LONG, Native.MSG_CONTROLLEN), room);
        long header = Native.CMSGHDR.byteSize();
        for (long off = 0; off + header <= controlLen; ) {
            long len = control.get(JAVA_LONG, off);
            if (len < header || len > controlLen - off) {
                break;
            }
            if (control.get(JAVA_INT, off + Native.CMSG_LEVEL) == Native.SOL_SOCKET
                    && control.get(JAVA_INT, off + Native.CMSG_TYPE) == Native.SCM_RIGHTS) {
                for (long p = off + header; p + 4 <= off + len; p += 4) {
                    fds.add(control.get(JAVA_INT, p));
                }
            }
            off += Native.cmsgAlign(len);
        }
        if ((flags & Native.MSG_CTRUNC) != 0) {
            fds.truncated(true);
        }
        return n;
    }

    /**
     * Receives until {@code dst} is full, collecting fds into {@code fds}.
     *
     * @throws EOFException the peer closed the stream first (the message says how many bytes arrived)
     */
    public void receiveFully(MemorySegment dst, FdList fds) throws IOException {
        receiveFully(dst, 0, fds);
    }

    /**
     * Reads and discards {@code n} bytes through a bounded scratch buffer; fds that arrive go to {@code fds}.
     *
     * @throws EOFException the stream ended first
     */
    public void skip(long n, FdList fds) throws IOException {
        if (n < 0) {
            throw new IllegalArgumentException("negative skip " + n);
        }
        if (n == 0) {
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment scratch = arena.allocate(Math.min(n, SKIP_CHUNK));
            long done = 0;
            while (done < n) {
                long r = receive(scratch.asSlice(0, Math.min(n - done, scratch.byteSize())), fds);
                if (r == 0) {
                    throw new EOFException("end of stream after skipping " + done + " of " + n + " bytes");
                }
                done += r;
            }
        }
    }

    /**
     * Waits until a {@link #receive} (or {@link #accept}) would not block: data, end-of-stream, an error or a
     * hang-up. EINTR is retried with the remaining time.
     *
     * @param timeoutMillis milliseconds; negative (e.g. -1) waits forever
     * @return {@code false} on timeout
     */
    public boolean awaitReadable(long timeoutMillis) throws IOException {
        int fd = owner.acquire("poll");
        try {
            if (timeoutMillis == 0 && receiveLock.tryLock()) {
                try {
                    return Poll.readyNow(receiveScratch.pollfd, receiveScratch.err, fd, Poll.POLLIN);
                } finally {
                    receiveLock.unlock();
                }
            }
            return Poll.pollOne(fd, Poll.POLLIN, timeoutMillis) != 0;
        } finally {
            owner.release();
        }
    }

    /** The peer's process id, user id and group id at connect time (SO_PEERCRED). */
    public PeerCredentials peerCredentials() throws IOException {
        int fd = owner.acquire("getsockopt");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cred = arena.allocate(Native.UCRED);
            MemorySegment len = arena.allocateFrom(JAVA_INT, (int) Native.UCRED.byteSize());
            Native.getsockopt(arena, fd, Native.SOL_SOCKET, Native.SO_PEERCRED, cred, len);
            return new PeerCredentials(cred.get(JAVA_INT, 0), cred.get(JAVA_INT, 4), cred.get(JAVA_INT, 8));
        } finally {
            owner.release();
        }
    }

    /**
     * Bounds each {@link #receive}: one that waits longer than {@code timeout} for data fails with
     * {@link LinuxException} {@code EAGAIN} (what came before stays consumed; the stream is intact).
     * {@link java.time.Duration#ZERO} waits forever (the default). A change applies to a receive already waiting.
     *
     * <p>{@link ReceiveWatchdog} enforces it (no kernel timer per wait, see there; the receive gives up within a
     * few scan periods after the timeout), or {@code SO_RCVTIMEO} where its signal cannot be used.
     */
    public void receiveTimeout(java.time.Duration timeout) throws IOException {
        if (timeout.isNegative()) {
            throw new IllegalArgumentException("negative receive timeout " + timeout);
        }
        int fd = owner.acquire("setsockopt");
        try {
            if (ReceiveWatchdog.usable()) {
                long nanos = Math.max(1, timeout.toNanos()); // a tiny timeout must not mean "forever"
                synchronized (watchLock) {
                    if (timeout.isZero()) {
                        dropWatch();
                    } else if (watch == null) {
                        watch = new ReceiveWatchdog.Watch(nanos);
                        ReceiveWatchdog.watch(watch);
                    } else {
                        watch.timeoutNanos = nanos;
                    }
                }
                return;
            }
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment tv = arena.allocate(16, 8);
                long micros = timeout.toNanos() / 1000;
                if (micros == 0 && !timeout.isZero()) {
                    micros = 1; // a tiny timeout must not mean "forever"
                }
                tv.set(JAVA_LONG, 0, micros / 1_000_000);
                tv.set(JAVA_LONG, 8, micros % 1_000_000);
                Native.setsockopt(arena, fd, Native.SOL_SOCKET, Native.SO_RCVTIMEO, tv);
            }
        } finally {
            owner.release();
        }
    }

    /** Ends the watchdog's bound on this socket's receives (caller holds watchLock). */
    private void dropWatch() {
        ReceiveWatchdog.Watch w = watch;
        if (w != null) {
            watch = null;
            ReceiveWatchdog.unwatch(w);
        }
    }

    /** The watchdog's view of this socket's receives, null without a timeout (for tests). */
    ReceiveWatchdog.Watch receiveWatch() {
        return watch;
    }

    /** The kernel send buffer size (SO_SNDBUF), in bytes. */
    public int sendBufferSize() throws IOException {
        return intOption(Native.SO_SNDBUF);
    }

    /** The kernel receive buffer size (SO_RCVBUF), in bytes. */
    public int receiveBufferSize() throws IOException {
        return intOption(Native.SO_RCVBUF);
    }

    private int intOption(int name) throws IOException {
        int fd = owner.acquire("getsockopt");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(JAVA_INT);
            MemorySegment len = arena.allocateFrom(JAVA_INT, 4);
            Native.getsockopt(arena, fd, Native.SOL_SOCKET, name, value, len);
            return value.get(JAVA_INT, 0);
        } finally {
            owner.release();
        }
    }

    /**
     * shutdown(2) of the reading and/or writing half; nothing when both are false. A peer that is already gone
     * (ENOTCONN) is not an error.
     *
     * @throws UncheckedIOException other failures, e.g. EBADF after close
     */
    public void shutdown(boolean read, boolean write) {
        if (!read && !write) {
            return;
        }
        int how = read && write ? Native.SHUT_RDWR : read ? Native.SHUT_RD : Native.SHUT_WR;
        try {
            int fd = owner.acquire("shutdown");
            try (Arena arena = Arena.ofConfined()) {
                int e = Native.shutdown(arena, fd, how);
                if (e != 0 && e != Errno.ENOTCONN.value()) {
                    throw new LinuxException("shutdown", e);
                }
            } finally {
                owner.release();
            }
        } catch (LinuxException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Closes the socket; idempotent and callable from any thread (see the class comment). A listening socket
     * also unlinks its socket file, if the file at {@link #path()} is still the one it created.
     */
    @Override
    public void close() {
        if (!owner.close(FdOwner::shutdownQuietly)) {
            return;
        }
        synchronized (watchLock) {
            dropWatch();
        }
        if (path != null) {
            try {
                Object key = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS)
                        .fileKey();
                if (fileKey == null || fileKey.equals(key)) {
                    Files.deleteIfExists(path);
                }
            } catch (NoSuchFileException e) {
                // already removed by someone else
            } catch (IOException e) {
                throw new UncheckedIOException("unlink " + path, e);
            }
        }
    }

    @Override
    public String toString() {
        return "UnixSocket[fd=" + owner.fd() + (path != null ? ", path=" + path : "")
                + (owner.isClosed() ? ", closed" : "") + "]";
    }

    // ---------------------------------------------------------------- helpers

    private static byte[] encode(String call, Path path) throws LinuxException {
        byte[] name = path.toString().getBytes(pathCharset());
        if (name.length == 0 || name.length >= Native.SUN_PATH_MAX) {
            throw new LinuxException(call, Errno.ENAMETOOLONG.value(), path + " is " + name.length
                    + " bytes; a socket path must be 1.." + (Native.SUN_PATH_MAX - 1));
        }
        for (byte b : name) {
            if (b == 0) {
                throw new IllegalArgumentException("socket path contains a NUL byte: " + path);
            }
        }
        return name;
    }

    private static Charset pathCharset() {
        String jnu = System.getProperty("sun.jnu.encoding");
        try {
            return jnu != null ? Charset.forName(jnu) : StandardCharsets.UTF_8;
        } catch (RuntimeException e) {
            return StandardCharsets.UTF_8;
        }
    }

    private static MemorySegment sockaddr(Arena arena, byte[] name) {
        MemorySegment addr = arena.allocate(Native.SOCKADDR_UN); // zeroed: sun_path is NUL-terminated
        addr.set(JAVA_SHORT, 0, (short) Native.AF_UNIX);
        MemorySegment.copy(name, 0, addr, JAVA_BYTE, Native.SUN_PATH, name.length);
        return addr;
    }

    private static int addrLen(byte[] name) {
        return (int) Native.SUN_PATH + name.length + 1;
    }

    private static Set<PosixFilePermission> permissions(int mode) {
        Set<PosixFilePermission> set = EnumSet.noneOf(PosixFilePermission.class);
        PosixFilePermission[] order = {
            PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_READ,
            PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
            PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_READ
        };
        for (int bit = 0; bit < order.length; bit++) {
            if ((mode & (1 << bit)) != 0) {
                set.add(order[bit]);
            }
        }
        return set;
    }

    static void requireNative(MemorySegment segment, String what) {
        Objects.requireNonNull(segment, what);
        if (!segment.isNative()) {
            throw new IllegalArgumentException(what + " is a heap segment; the kernel needs native memory "
                    + "(allocate it from an Arena, or copy it into one)");
        }
    }

    private static void requireWritableNative(MemorySegment dst) {
        requireNative(dst, "dst");
        if (dst.isReadOnly()) {
            throw new IllegalArgumentException("dst is read-only");
        }
    }
}
