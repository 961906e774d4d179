package io.vfu.core.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * {@link UnixSocket#receiveTimeout}: a receive that waits too long fails with EAGAIN, the stream intact. Enforced
 * by {@link ReceiveWatchdog} (a signal interrupts the waiting recvmsg), so the tests also look at what a signal
 * must not do.
 */
class UnixSocketReceiveTimeoutTest {
    /** recvmsg's system call number (x86-64 / aarch64), as /proc/self/task/TID/syscall shows it. */
    private static final String RECVMSG = System.getProperty("os.arch").equals("aarch64") ? "212" : "47";

    @Test
    void theWatchdogBoundsReceivesHere() {
        assertThat(ReceiveWatchdog.unusableBecause()).as("the signal is usable in this JVM").isNull();
        assertThat(ReceiveWatchdog.usable()).isTrue();
    }

    @Test
    void onlyAHandlerThatLetsCallsFailWithEintrIsUsed() {
        assertThat(ReceiveWatchdog.judge(0, 0)).isEqualTo(ReceiveWatchdog.Disposition.INSTALL);
        assertThat(ReceiveWatchdog.judge(1, 0)).isEqualTo(ReceiveWatchdog.Disposition.IGNORED);
        assertThat(ReceiveWatchdog.judge(0x7f00_1234L, Native.SA_RESTART))
                .isEqualTo(ReceiveWatchdog.Disposition.RESTARTS);
        assertThat(ReceiveWatchdog.judge(0x7f00_1234L, 0)).isEqualTo(ReceiveWatchdog.Disposition.USE);
        assertThat(ReceiveWatchdog.Disposition.IGNORED.unusableBecause).contains("ignored");
        assertThat(ReceiveWatchdog.Disposition.RESTARTS.unusableBecause).contains("restarts");
        assertThat(ReceiveWatchdog.Disposition.USE.unusableBecause).isNull();
        assertThat(ReceiveWatchdog.Disposition.INSTALL.unusableBecause).isNull();
    }

    @Test
    void aReceiveThatWaitsTooLongFailsWithEagainAndZeroWaitsAgain() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        try (UnixSocket a = s[0]; UnixSocket b = s[1]; Arena arena = Arena.ofConfined(); FdList fds = new FdList()) {
            MemorySegment buf = arena.allocate(8);
            a.receiveTimeout(Duration.ofMillis(50));
            long t0 = System.nanoTime();
            CompletableFuture<String> timedOut = receiveInAnotherThread(a, new AtomicInteger()); // fails, never hangs
            assertTimesOut(timedOut);
            assertThat(System.nanoTime() - t0).as("never before the timeout").isGreaterThanOrEqualTo(50_000_000L);
            b.send(null, arena.allocateFrom("hi"));
            assertThat(a.receive(buf, fds)).isEqualTo(3);
            assertThat(buf.getString(0)).isEqualTo("hi");
            a.receiveTimeout(Duration.ZERO);
            b.send(null, arena.allocateFrom("x"));
            assertThat(a.receive(buf, fds)).isEqualTo(2);
            assertThatThrownBy(() -> a.receiveTimeout(Duration.ofMillis(-1))).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void aSignalThatIsNotATimeoutLeavesTheReceiveWaiting() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        try (UnixSocket a = s[0]; UnixSocket b = s[1]; Arena arena = Arena.ofConfined()) {
            AtomicInteger tid = new AtomicInteger();
            CompletableFuture<String> received = blockedReceive(a, Duration.ofMinutes(10), tid);
            assertThat(Native.tgkill(Native.errnoSegment(arena), Native.getpid(arena), tid.get(),
                    ReceiveWatchdog.SIGNAL)).isZero();
            ReceiveWatchdog.Watch watch = a.receiveWatch();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (watch.state() != 3 && !received.isDone() && System.nanoTime() < deadline) {
                Thread.onSpinWait(); // until the interrupted wait (state 1) has ended and a second one begun
            }
            assertThat(received).as("the interruption was retried, not reported").isNotDone();
            assertThat(watch.state()).isEqualTo(3);
            b.send(null, arena.allocateFrom("ok"));
            assertThat(received.get(30, TimeUnit.SECONDS)).isEqualTo("3:ok");
        }
    }

    @Test
    void aShorterTimeoutAppliesToAReceiveAlreadyWaiting() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        try (UnixSocket a = s[0]; UnixSocket b = s[1]; Arena arena = Arena.ofConfined()) {
            CompletableFuture<String> received = blockedReceive(a, Duration.ofHours(1), new AtomicInteger());
            a.receiveTimeout(Duration.ofMillis(20));
            assertTimesOut(received);
            b.send(null, arena.allocateFrom("later"));
            try (FdList fds = new FdList()) {
                assertThat(a.receive(arena.allocate(16), fds)).as("the stream is intact").isEqualTo(6);
            }
        }
    }

    @Test
    void aSecondReceiverWaitingForTheFirstAlsoTimesOut() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        try (UnixSocket a = s[0]; UnixSocket b = s[1]) {
            a.receiveTimeout(Duration.ofMillis(100));
            AtomicInteger tid1 = new AtomicInteger();
            AtomicInteger tid2 = new AtomicInteger();
            CompletableFuture<String> first = receiveInAnotherThread(a, tid1);
            CompletableFuture<String> second = receiveInAnotherThread(a, tid2);
            assertTimesOut(first);
            assertTimesOut(second);
        }
    }

    @Test
    void theWatchdogThreadEndsWhenNoSocketHasATimeout() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        Thread watchdog;
        try (UnixSocket a = s[0]; UnixSocket b = s[1]) {
            a.receiveTimeout(Duration.ofSeconds(5));
            b.receiveTimeout(Duration.ofSeconds(5));
            watchdog = ReceiveWatchdog.thread();
            assertThat(watchdog).isNotNull();
            assertThat(watchdog.isAlive()).isTrue();
            b.receiveTimeout(Duration.ZERO);
            assertThat(ReceiveWatchdog.thread()).as("one socket is still watched").isSameAs(watchdog);
        } // a closes with its timeout set
        watchdog.join(TimeUnit.SECONDS.toMillis(30));
        assertThat(watchdog.isAlive()).isFalse();
        assertThat(ReceiveWatchdog.thread()).isNull();
    }

    @Test
    void theScanPeriodIsAnEighthOfTheShortestTimeoutWithinBounds() {
        assertThat(ReceiveWatchdog.periodNanos(TimeUnit.MILLISECONDS.toNanos(80))).isEqualTo(10_000_000L);
        assertThat(ReceiveWatchdog.periodNanos(1)).isEqualTo(1_000_000L);
        assertThat(ReceiveWatchdog.periodNanos(TimeUnit.SECONDS.toNanos(5))).isEqualTo(250_000_000L);
    }

    /** A receive of up to 15 bytes on a new thread that publishes its kernel id: "count:text". */
    private static CompletableFuture<String> receiveInAnotherThread(UnixSocket socket, AtomicInteger tid) {
        return CompletableFuture.supplyAsync(() -> {
            try (Arena own = Arena.ofConfined(); FdList fds = new FdList()) {
                tid.set(Native.gettid(own));
                MemorySegment buf = own.allocate(16);
                long n = socket.receive(buf.asSlice(0, 15), fds);
                return n + ":" + buf.getString(0);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }, runnable -> Thread.ofPlatform().daemon(true).start(runnable));
    }

    /** A receive with {@code timeout} on another thread, once it waits in recvmsg. */
    private static CompletableFuture<String> blockedReceive(UnixSocket socket, Duration timeout, AtomicInteger tid)
            throws Exception {
        socket.receiveTimeout(timeout);
        CompletableFuture<String> received = receiveInAnotherThread(socket, tid);
        awaitInRecvmsg(tid);
        return received;
    }

    private static void assertTimesOut(CompletableFuture<String> receive) {
        assertThat(receive).failsWithin(30, TimeUnit.SECONDS).withThrowableThat()
                .havingRootCause().isInstanceOfSatisfying(LinuxException.class,
                        e -> assertThat(e.errnoValue()).isEqualTo(Errno.EAGAIN.value()));
    }

    /** Waits until the thread is blocked in recvmsg, as the kernel reports it (not a sleep: a condition). */
    private static void awaitInRecvmsg(AtomicInteger tid) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            int t = tid.get();
            if (t != 0) {
                Path p = Path.of("/proc/self/task/" + t + "/syscall");
                String call = Files.exists(p) ? Files.readString(p).split(" ")[0] : "";
                if (call.equals(RECVMSG)) {
                    return;
                }
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("thread " + t + " never blocked in recvmsg");
            }
            Thread.onSpinWait();
            Thread.yield();
        }
    }
}
