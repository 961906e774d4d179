package io.vfu.core.linux;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Bounds the blocking receives of {@link UnixSocket#receiveTimeout} without a kernel timer per wait.
 *
 * <p>Why not {@code SO_RCVTIMEO}: then every recvmsg that has to sleep arms and cancels a kernel timer
 * ({@code schedule_timeout}). On a request/reply path (a vfio-user client waiting for each reply) that was 2–4 % of a
 * ~15 µs round trip here (paired REGION_READ/REGION_WRITE probes, client and server on one CPU). Instead the
 * receiving thread only publishes "waiting in receive number n" (two stores); one daemon thread looks at the
 * sockets with a timeout a few times per timeout and interrupts a receive that has waited longer than its timeout
 * with a signal. recvmsg then fails with EINTR and the socket reports EAGAIN, as it would with SO_RCVTIMEO. A
 * receive gives up between its timeout and that plus two scan periods ({@link #periodNanos}).
 *
 * <p>The signal is the one the JDK uses to interrupt blocking I/O ({@code __SIGRTMAX - 2}, see
 * {@code sun.nio.ch.NativeThread}): a handler that does nothing, installed without {@code SA_RESTART}, so that a
 * blocked system call returns EINTR. If nothing is installed yet, this class installs an equivalent one: libc's
 * {@code getpid} (async-signal-safe, leaves errno alone; plain C, because a Java upcall must not run as a signal
 * handler). If the signal has another disposition (ignored, or a handler that restarts calls), the watchdog is not
 * used and {@link UnixSocket} falls back to SO_RCVTIMEO. A signal that reaches a thread just after its receive
 * returned interrupts at most another slow system call, which every wrapper in this package retries.
 */
final class ReceiveWatchdog {
    private ReceiveWatchdog() {}

    /** The JDK's I/O-interrupt signal. */
    static final int SIGNAL = Native.SIGRTMAX - 2;
    private static final long MIN_PERIOD = TimeUnit.MILLISECONDS.toNanos(1);
    private static final long MAX_PERIOD = TimeUnit.MILLISECONDS.toNanos(250);
    private static final Watch[] NONE = new Watch[0];

    /** Why the watchdog cannot be used, or null. */
    private static final String UNUSABLE = installHandler();

    private static final Object LOCK = new Object();
    private static final List<Watch> WATCHES = new ArrayList<>();
    private static Thread thread;

    /** Whether receives can be bounded this way (else SO_RCVTIMEO). */
    static boolean usable() {
        return UNUSABLE == null;
    }

    /** Why not {@link #usable()}, or null. */
    static String unusableBecause() {
        return UNUSABLE;
    }

    private static String installHandler() {
        if (Native.UNAVAILABLE != null) {
            return Native.UNAVAILABLE;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment old = arena.allocate(Native.SIGACTION_LAYOUT);
            Native.sigaction(arena, SIGNAL, MemorySegment.NULL, old);
            Disposition d = judge(old.get(ADDRESS, Native.SA_HANDLER).address(), old.get(JAVA_INT, Native.SA_FLAGS));
            if (d == Disposition.INSTALL) {
                MemorySegment act = arena.allocate(Native.SIGACTION_LAYOUT); // zeroed: empty mask, no flags
                act.set(ADDRESS, Native.SA_HANDLER, Native.libcFunction("getpid"));
                Native.sigaction(arena, SIGNAL, act, MemorySegment.NULL);
            }
            return d.unusableBecause;
        } catch (LinuxException | RuntimeException | LinkageError e) {
            return "signal " + SIGNAL + ": " + e;
        }
    }

    /** What the signal's current disposition means here. */
    enum Disposition {
        /** SIG_DFL (the signal would end the process): install the do-nothing handler. */
        INSTALL(null),
        /** A handler that lets calls fail with EINTR, e.g. the JDK's own. */
        USE(null),
        IGNORED("signal " + SIGNAL + " is ignored"),
        RESTARTS("the handler of signal " + SIGNAL + " restarts interrupted calls");

        /** Why the watchdog cannot be used, or null. */
        final String unusableBecause;

        Disposition(String unusableBecause) {
            this.unusableBecause = unusableBecause;
        }
    }

    /** Judges {@code sa_handler} (0 = SIG_DFL, 1 = SIG_IGN, else a function) and {@code sa_flags}. */
    static Disposition judge(long handler, int flags) {
        if (handler == 0) {
            return Disposition.INSTALL;
        }
        if (handler == 1) {
            return Disposition.IGNORED;
        }
        return (flags & Native.SA_RESTART) != 0 ? Disposition.RESTARTS : Disposition.USE;
    }

    /** Starts watching {@code w} (its receives time out from now on). */
    static void watch(Watch w) {
        synchronized (LOCK) {
            WATCHES.add(w);
            if (thread == null) {
                thread = Thread.ofPlatform().name("vfu-receive-timeouts").daemon(true).start(ReceiveWatchdog::run);
            }
            LOCK.notifyAll(); // a shorter timeout may need a shorter period
        }
    }

    /** Stops watching {@code w}; the thread ends when nothing is watched. */
    static void unwatch(Watch w) {
        synchronized (LOCK) {
            WATCHES.remove(w);
            LOCK.notifyAll();
        }
    }

    /** The watchdog thread, null when nothing is watched (for tests: it must end when the sockets close). */
    static Thread thread() {
        synchronized (LOCK) {
            return thread;
        }
    }

    /** How often the watched sockets are looked at: an eighth of the shortest timeout, 1 to 250 ms. */
    static long periodNanos(long shortestTimeout) {
        return Math.clamp(shortestTimeout / 8, MIN_PERIOD, MAX_PERIOD);
    }

    private static void run() {
        int pid;
        try (Arena arena = Arena.ofConfined()) {
            pid = Native.getpid(arena);
        }
        MemorySegment err = Native.errnoSegment(Arena.ofAuto());
        while (true) {
            Watch[] watches;
            long period;
            synchronized (LOCK) {
                if (WATCHES.isEmpty()) {
                    thread = null;
                    return;
                }
                watches = WATCHES.toArray(NONE);
                long shortest = Long.MAX_VALUE;
                for (Watch w : watches) {
                    shortest = Math.min(shortest, w.timeoutNanos);
                }
                period = periodNanos(shortest);
            }
            long now = System.nanoTime();
            for (Watch w : watches) {
                w.check(now, pid, err);
            }
            synchronized (LOCK) {
                if (!WATCHES.isEmpty()) {
                    try {
                        TimeUnit.NANOSECONDS.timedWait(LOCK, period); // the scan period (or an earlier change)
                    } catch (InterruptedException e) {
                        // this class's own thread: nothing asks it to stop but an empty watch list
                    }
                }
            }
        }
    }

    /**
     * The timeout of one socket's receives. Only the thread that holds the socket's receive lock calls
     * {@link #recvmsg}; the watchdog thread calls {@link #check}.
     */
    static final class Watch {
        private static final VarHandle STATE;

        static {
            try {
                STATE = MethodHandles.lookup().findVarHandle(Watch.class, "state", long.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        volatile long timeoutNanos;
        /** Odd while the receiving thread waits in recvmsg; bumped on entry and on exit, so each wait has its own. */
        @SuppressWarnings("unused") // through STATE
        private long state;
        /** The wait ({@link #state}) the watchdog interrupted; 0 (even) for none. */
        private volatile long firedState;
        /** The receiving thread and its kernel id: written before {@link #state} is published (release). */
        private Thread owner;
        private int tid;
        /** The watchdog's view: the last state seen and since when (watchdog thread only). */
        private long seenState;
        private long seenSince;

        Watch(long timeoutNanos) {
            this.timeoutNanos = timeoutNanos;
        }

        /**
         * recvmsg(2) that fails with EAGAIN once it has waited longer than the timeout; other interruptions (EINTR)
         * are retried.
         */
        long recvmsg(MemorySegment err, int fd, MemorySegment msg, int flags) throws LinuxException {
            Thread t = Thread.currentThread();
            if (t != owner || t.isVirtual()) { // a virtual thread may be on another carrier each time
                try (Arena arena = Arena.ofConfined()) {
                    tid = Native.gettid(arena);
                }
                owner = t;
            }
            while (true) {
                long s = (long) STATE.get(this) + 1;
                STATE.setRelease(this, s);
                long r = Native.recvmsgOnce(err, fd, msg, flags);
                STATE.setRelease(this, s + 1);
                if (r >= 0) {
                    return r;
                }
                int e = Native.errno(err);
                if (e != Native.EINTR) {
                    throw new LinuxException("recvmsg", e);
                }
                if (firedState == s) {
                    throw new LinuxException("recvmsg", Native.EAGAIN); // as SO_RCVTIMEO reports it
                }
            }
        }

        /** Receive waits begun and ended, times two (odd while one waits): for tests. */
        long state() {
            return (long) STATE.getAcquire(this);
        }

        /** Interrupts the wait if it has lasted the timeout since it was first seen (repeated until it ends). */
        void check(long now, int pid, MemorySegment err) {
            long s = (long) STATE.getAcquire(this);
            if ((s & 1) == 0 || s != seenState) {
                seenState = s;
                seenSince = now;
                return;
            }
            if (now - seenSince >= timeoutNanos) {
                firedState = s;
                // Again at each scan until the wait ends: a signal that came just before recvmsg blocked is lost.
                Native.tgkill(err, pid, tid, SIGNAL);
            }
        }
    }
}
