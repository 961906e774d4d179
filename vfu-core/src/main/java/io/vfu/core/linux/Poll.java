package io.vfu.core.linux;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * poll(2). Interrupted polls (EINTR) are repeated with the time that remains; a negative timeout waits forever.
 */
public final class Poll {
    /** There is data to read (or, for a listening socket, a connection to accept). */
    public static final short POLLIN = 0x001;
    /** There is urgent data to read. */
    public static final short POLLPRI = 0x002;
    /** Writing will not block. */
    public static final short POLLOUT = 0x004;
    /** Error condition (output only). */
    public static final short POLLERR = 0x008;
    /** Hang up (output only). */
    public static final short POLLHUP = 0x010;
    /** The fd is not open (output only). */
    public static final short POLLNVAL = 0x020;
    /** The stream peer closed its writing half. */
    public static final short POLLRDHUP = 0x2000;

    private static final long POLLFD_SIZE = Native.POLLFD.byteSize();
    private static final long EVENTS = 4;
    private static final long REVENTS = 6;

    private Poll() {}

    /**
     * Polls one descriptor.
     *
     * @param events        e.g. {@link #POLLIN}
     * @param timeoutMillis milliseconds to wait; 0 returns at once, negative waits forever
     * @return the {@code revents} bits (may include {@link #POLLERR}, {@link #POLLHUP}, {@link #POLLNVAL}), 0 on
     *         timeout
     */
    public static int poll(int fd, short events, int timeoutMillis) throws LinuxException {
        return pollOne(fd, events, timeoutMillis);
    }

    /**
     * Polls several descriptors.
     *
     * @param fds     the descriptors (negative entries are ignored by the kernel)
     * @param events  the events of interest, one per fd
     * @param revents receives the returned events, one per fd
     * @return the number of descriptors with non-zero {@code revents}, 0 on timeout
     */
    public static int poll(int[] fds, short[] events, short[] revents, int timeoutMillis) throws LinuxException {
        Objects.requireNonNull(fds, "fds");
        Objects.requireNonNull(events, "events");
        Objects.requireNonNull(revents, "revents");
        if (events.length != fds.length || revents.length != fds.length) {
            throw new IllegalArgumentException("fds, events and revents must have the same length: "
                    + fds.length + ", " + events.length + ", " + revents.length);
        }
        Native.ensureAvailable();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment set = arena.allocate(Native.POLLFD, Math.max(1, fds.length));
            for (int i = 0; i < fds.length; i++) {
                set.set(JAVA_INT, i * POLLFD_SIZE, fds[i]);
                set.set(JAVA_SHORT, i * POLLFD_SIZE + EVENTS, events[i]);
            }
            int n = poll(arena, set, fds.length, timeoutMillis);
            for (int i = 0; i < fds.length; i++) {
                revents[i] = set.get(JAVA_SHORT, i * POLLFD_SIZE + REVENTS);
            }
            return n;
        }
    }

    /** One fd with a {@code long} timeout (negative: forever). Returns revents, 0 on timeout. */
    static int pollOne(int fd, short events, long timeoutMillis) throws LinuxException {
        Native.ensureAvailable();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment set = arena.allocate(Native.POLLFD);
            set.set(JAVA_INT, 0, fd);
            set.set(JAVA_SHORT, EVENTS, events);
            int n = poll(arena, set, 1, timeoutMillis);
            return n == 0 ? 0 : Short.toUnsignedInt(set.get(JAVA_SHORT, REVENTS));
        }
    }

    /**
     * Whether {@code fd} has any of {@code events} right now (timeout 0), with a caller-provided pollfd
     * ({@link Native#POLLFD}) and errno segment: nothing allocated (a connection asks this once per message
     * while replies are held back).
     */
    static boolean readyNow(MemorySegment pollfd, MemorySegment err, int fd, short events) throws LinuxException {
        pollfd.set(JAVA_INT, 0, fd);
        pollfd.set(JAVA_SHORT, EVENTS, events);
        pollfd.set(JAVA_SHORT, REVENTS, (short) 0);
        int r;
        do {
            r = Native.pollOnce(err, pollfd, 1, 0);
        } while (r < 0); // EINTR
        return r > 0 && pollfd.get(JAVA_SHORT, REVENTS) != 0;
    }

    /** poll(2) over a prepared pollfd array, EINTR repeated with the remaining time. */
    static int poll(Arena arena, MemorySegment set, long nfds, long timeoutMillis) throws LinuxException {
        // Timeouts beyond ~292 years overflow nanoTime arithmetic: treat them as forever.
        boolean forever = timeoutMillis < 0 || timeoutMillis > TimeUnit.DAYS.toMillis(365L * 100);
        long deadline = forever ? 0 : System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (true) {
            int t;
            if (forever) {
                t = -1;
            } else {
                long remaining = deadline - System.nanoTime();
                long ms = remaining <= 0 ? 0 : (remaining + 999_999) / 1_000_000;
                t = (int) Math.min(ms, Integer.MAX_VALUE);
            }
            int r = Native.pollOnce(arena, set, nfds, t);
            if (r > 0) {
                return r;
            }
            if (r == 0 && t != Integer.MAX_VALUE && !forever) {
                return 0;
            }
            // EINTR (r < 0), or a capped timeout that expired early: poll again for what remains.
        }
    }
}
