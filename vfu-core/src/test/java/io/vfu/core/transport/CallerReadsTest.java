package io.vfu.core.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Fds;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.VfioUserException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** {@link Connection#startCallerReads}: the calling thread reads its own reply; no reader thread. */
class CallerReadsTest {
    private static final TransportLimits LIMITS = TransportLimits.DEFAULT.withReplyTimeout(Duration.ofSeconds(10));
    private static final CommandHandler ECHO = cmd -> Response.of(
            RawPayload.of(cmd.header().command(), RawPayload.text(cmd.payload()).toUpperCase()));
    private static final CommandHandler NONE = cmd -> {
        throw VfioUserException.einval("serves nothing");
    };

    private final List<AutoCloseable> toClose = new ArrayList<>();
    private int fdsBefore;

    @BeforeEach
    void countFds() {
        fdsBefore = Fds.openFdCount();
    }

    @AfterEach
    void closeAllAndCheckLeaks() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
        assertThat(Fds.openFdCount()).as("open fds after the test").isEqualTo(fdsBefore);
    }

    private Connection[] pair(TransportLimits clientLimits) throws IOException {
        UnixSocket[] s = UnixSocket.pair();
        Connection client = new Connection(s[0], clientLimits, "client");
        Connection server = new Connection(s[1], LIMITS, "server");
        toClose.add(client);
        toClose.add(server);
        return new Connection[] {client, server};
    }

    @Test
    void callsAreAnsweredWithoutAReaderThread() throws Exception {
        Connection[] c = pair(LIMITS);
        c[1].start(ECHO);
        c[0].startCallerReads(NONE);
        for (int i = 0; i < 100; i++) {
            try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_READ, "hello " + i))) {
                assertThat(RawPayload.text(r.payload())).isEqualTo("HELLO " + i);
            }
        }
        assertThat(Thread.getAllStackTraces().keySet()).noneMatch(t -> t.getName().equals("vfu-client-reader"));
    }

    @Test
    void aLargeReplyIsReceivedStraightIntoTheCallersBufferASmallOneThroughTheStage() throws Exception {
        Connection[] c = pair(LIMITS);
        c[1].start(ECHO);
        c[0].startCallerReads(NONE);
        String big = "x".repeat(64 * 1024);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment small = arena.allocate(64);
            MemorySegment whole = arena.allocate(big.length());
            MemorySegment fixed = arena.allocate(16);
            MemorySegment data = arena.allocate(big.length() - 16);
            for (int i = 0; i < 3; i++) {
                long before = c[0].scatteredBytes();
                assertThat(c[0].callInto(RawPayload.of(Command.REGION_READ, "small " + i), small)).isEqualTo(7);
                assertThat(RawPayload.text(small.asSlice(0, 7))).isEqualTo("SMALL " + i);
                assertThat(c[0].scatteredBytes()).as("a small reply: staged").isEqualTo(before);

                whole.fill((byte) 0);
                assertThat(c[0].callInto(RawPayload.of(Command.REGION_READ, big), whole)).isEqualTo(big.length());
                assertThat(RawPayload.text(whole)).isEqualTo(big.toUpperCase());
                long inPlace = c[0].scatteredBytes() - before;
                assertThat(inPlace).as("a large reply: received in place").isGreaterThan(big.length() / 2);

                data.fill((byte) 0);
                assertThat(c[0].callInto(RawPayload.of(Command.DMA_READ, big), fixed, data)).isEqualTo(big.length());
                assertThat(RawPayload.text(fixed) + RawPayload.text(data)).isEqualTo(big.toUpperCase());
                assertThat(c[0].scatteredBytes() - before - inPlace).as("a split reply's data: in place")
                        .isGreaterThan(big.length() / 2);
            }
        }
    }

    @Test
    void concurrentCallersEachGetTheirReply() throws Exception {
        Connection[] c = pair(LIMITS);
        c[1].start(ECHO);
        c[0].startCallerReads(NONE);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int id = t;
                futures.add(pool.submit(() -> {
                    for (int i = 0; i < 200; i++) {
                        String text = "t" + id + " call " + i;
                        try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_READ, text))) {
                            assertThat(RawPayload.text(r.payload())).isEqualTo(text.toUpperCase());
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aPeerThatNeverAnswersTimesOut() throws Exception {
        // A raw peer that reads and never replies: use a plain socket pair instead of the server connection.
        UnixSocket[] s = UnixSocket.pair();
        toClose.add(s[1]);
        Connection client = new Connection(s[0], LIMITS.withReplyTimeout(Duration.ofMillis(200)), "client");
        toClose.add(client);
        client.startCallerReads(NONE);
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> client.call(RawPayload.of(Command.REGION_READ, "anyone?")))
                .isInstanceOf(ReplyTimeoutException.class);
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
        assertThat(client.isEnded()).isFalse(); // a timeout leaves the connection usable
    }

    @Test
    void isEndedNoticesAPeerThatLeftBetweenCalls() throws Exception {
        Connection[] c = pair(LIMITS);
        c[1].start(ECHO);
        c[0].startCallerReads(NONE);
        try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_READ, "x"))) {
            assertThat(r.payload().byteSize()).isEqualTo(1);
        }
        assertThat(c[0].isEnded()).isFalse();
        c[1].close();
        assertThat(c[0].isEnded()).isTrue();
        assertThatThrownBy(() -> c[0].call(RawPayload.of(Command.REGION_READ, "y")))
                .isInstanceOf(ConnectionClosedException.class);
    }

    @Test
    void switchesToAReaderThreadWhenNoCallIsInFlight() throws Exception {
        Connection[] c = pair(LIMITS);
        c[1].start(ECHO);
        c[0].startCallerReads(NONE);
        try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_READ, "before"))) {
            assertThat(RawPayload.text(r.payload())).isEqualTo("BEFORE");
        }
        c[0].start(NONE);
        try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_READ, "after"))) {
            assertThat(RawPayload.text(r.payload())).isEqualTo("AFTER");
        }
        assertThatThrownBy(() -> c[0].startCallerReads(NONE)).isInstanceOf(IllegalStateException.class);
    }

    /**
     * A held read lets pipelined calls share one reply buffer: each reply lands only when its call is finished,
     * even with another thread waiting for a reply behind them (it would otherwise read them all, into the
     * shared buffer); that thread completes once the hold is closed. A call made while the hold is paused is
     * refused before anything is sent.
     */
    @Test
    void aHeldReadDeliversEachReplyOnlyWhenItsCallIsFinished() throws Exception {
        Connection[] c = pair(LIMITS);
        List<String> served = java.util.Collections.synchronizedList(new ArrayList<>());
        java.util.concurrent.CountDownLatch otherServed = new java.util.concurrent.CountDownLatch(1);
        c[1].start(cmd -> {
            String text = RawPayload.text(cmd.payload());
            served.add(text);
            if (text.equals("other")) {
                otherServed.countDown(); // the three replies before it are on their way already
            }
            return Response.of(RawPayload.of(cmd.header().command(), text.toUpperCase()));
        });
        c[0].startCallerReads(NONE);
        java.lang.foreign.MemorySegment shared = java.lang.foreign.Arena.ofAuto().allocate(16);
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Connection.ReadHold hold = c[0].holdReads();
            assertThat(hold).isNotNull();
            Connection.Call[] calls = new Connection.Call[3];
            for (int i = 0; i < 3; i++) {
                calls[i] = c[0].startInto(RawPayload.of(Command.REGION_READ, "call " + i), shared);
            }
            Future<String> other = pool.submit(() -> {
                try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_READ, "other"))) {
                    return RawPayload.text(r.payload());
                }
            });
            otherServed.await();
            for (int i = 0; i < 3; i++) {
                long n = c[0].finishInto(calls[i]);
                assertThat(RawPayload.text(shared.asSlice(0, n))).isEqualTo("CALL " + i);
                hold.pause();
                assertThatThrownBy(() -> c[0].callInto(RawPayload.of(Command.REGION_READ, "paused"), shared))
                        .isInstanceOf(IllegalStateException.class);
                assertThat(c[0].isEnded()).isFalse(); // looks without reading
                hold.resume();
            }
            assertThat(other).as("its reply comes after the holder's, and only the holder reads").isNotDone();
            hold.close();
            assertThat(other.get(10, java.util.concurrent.TimeUnit.SECONDS)).isEqualTo("OTHER");
            try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_READ, "last"))) {
                assertThat(RawPayload.text(r.payload())).isEqualTo("LAST");
            }
            assertThat(served).as("nothing was sent while paused").containsExactly("call 0", "call 1", "call 2", "other", "last");
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void readsCanBeHeldOnlyInCallerReadsModeAndOnlyOnce() throws Exception {
        Connection[] c = pair(LIMITS);
        c[1].start(ECHO);
        c[0].startCallerReads(NONE);
        try (Connection.ReadHold hold = c[0].holdReads()) {
            assertThatThrownBy(() -> c[0].holdReads()).isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(() -> c[0].start(NONE)).as("no reader thread while held").isInstanceOf(IllegalStateException.class);
            try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_READ, "held"))) {
                assertThat(RawPayload.text(r.payload())).isEqualTo("HELD");
            }
        }
        c[0].start(NONE);
        assertThat(c[0].holdReads()).as("a reader thread takes replies as they come").isNull();
        assertThat(c[1].holdReads()).isNull();
    }
}
