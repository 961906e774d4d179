package io.vfu.core.linux;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** Plain file-descriptor operations: close, dup, page size, and a count of open fds for leak checks. */
public final class Fds {
    private static final Path PROC_SELF_FD = Path.of("/proc/self/fd");
    private static volatile long pageSize;

    private Fds() {}

    /**
     * close(2). EINTR is not retried and counts as success (Linux releases the descriptor anyway, and a repeat
     * could close an fd another thread just opened).
     *
     * @throws LinuxException any other error, e.g. EBADF
     */
    public static void close(int fd) throws LinuxException {
        Native.ensureAvailable();
        try (Arena arena = Arena.ofConfined()) {
            int e = Native.close(arena, fd);
            if (e != 0) {
                throw new LinuxException("close", e, "fd " + fd);
            }
        }
    }

    /** close(2), ignoring every error; negative fds are ignored. */
    public static void closeQuietly(int fd) {
        if (fd < 0) {
            return;
        }
        Native.ensureAvailable();
        try (Arena arena = Arena.ofConfined()) {
            Native.close(arena, fd);
        }
    }

    /** A new descriptor for the same open file, with {@code FD_CLOEXEC} set ({@code F_DUPFD_CLOEXEC}). */
    public static int dup(int fd) throws LinuxException {
        Native.ensureAvailable();
        try (Arena arena = Arena.ofConfined()) {
            return Native.fcntl(arena, fd, Native.F_DUPFD_CLOEXEC, 0);
        }
    }

    /**
     * The number of descriptors this process has open: the entries of {@code /proc/self/fd}, not counting the
     * one used to list the directory. For leak checks in tests.
     */
    public static int openFdCount() {
        try (Stream<Path> entries = Files.list(PROC_SELF_FD)) {
            return (int) entries.count() - 1;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@code sysconf(_SC_PAGESIZE)}, cached. */
    public static long pageSize() {
        long p = pageSize;
        if (p == 0) {
            Native.ensureAvailable();
            try (Arena arena = Arena.ofConfined()) {
                p = Native.sysconf(arena, Native.SC_PAGESIZE);
            } catch (LinuxException e) {
                throw new UncheckedIOException(e);
            }
            pageSize = p;
        }
        return p;
    }

    /** close(2) for owners' {@code close()} methods: EBADF and other errors surface as unchecked. */
    static void closeOwned(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            int e = Native.close(arena, fd);
            if (e != 0) {
                throw new UncheckedIOException(new LinuxException("close", e, "fd " + fd));
            }
        }
    }
}
