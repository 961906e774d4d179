package io.vfu.core.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.EventFd;
import io.vfu.core.linux.Fds;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.Header;
import io.vfu.core.protocol.VfioUserException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The lone call ({@code Connection#callAlone}): a small {@link Connection#callInto} in caller-reads mode with no
 * other call in flight. The peer is scripted here ({@link RawWire}) so that it can answer what a real one would
 * not; the call runs on a pool thread while this thread plays the peer.
 */
class CallAloneTest {
    private static final TransportLimits LIMITS = TransportLimits.DEFAULT.withReplyTimeout(Duration.ofSeconds(10));

    private final List<AutoCloseable> toClose = new ArrayList<>();
    private final ExecutorService pool = Executors.newCachedThreadPool();
    private int fdsBefore;
    private Arena arena;
    private Connection client;
    private RawWire peer;
    /** The commands the client's handler served, in order. */
    private final List<String> served = java.util.Collections.synchronizedList(new ArrayList<>());

    @BeforeEach
    void setUp() throws IOException {
        fdsBefore = Fds.openFdCount();
        arena = Arena.ofConfined();
        start(LIMITS);
    }

    @AfterEach
    void closeAllAndCheckLeaks() throws Exception {
        pool.shutdownNow();
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
        arena.close();
        assertThat(Fds.openFdCount()).as("open fds after the test").isEqualTo(fdsBefore);
    }

    /** The peer's end of the socket pair ({@link #peer} writes to it). */
    private UnixSocket peerSocket;

    private void start(TransportLimits limits) throws IOException {
        UnixSocket[] s = UnixSocket.pair();
        peerSocket = s[1];
        toClose.add(s[1]);
        client = new Connection(s[0], limits, "client");
        toClose.add(client);
        peer = new RawWire(s[1], arena);
        client.startCallerReads(cmd -> {
            served.add(RawPayload.text(cmd.payload()));
            return Response.of(RawPayload.of(cmd.header().command(), "done"));
        });
    }

    /** Starts a callInto on a pool thread; its reply lands in a buffer of {@code room} bytes. */
    private Future<String> call(String text, int room) {
        return pool.submit(() -> {
            MemorySegment reply = Arena.ofAuto().allocate(room);
            long size = client.callInto(RawPayload.of(Command.REGION_READ, text), reply);
            return RawPayload.text(reply.asSlice(0, size));
        });
    }

    /** A call of {@code text} that the peer answers with {@code answer}; what the call returned. */
    private String answered(String text, int room, String answer) throws Exception {
        Future<String> f = call(text, room);
        peer.send(request(text), Command.REGION_READ.code(), Header.TYPE_REPLY, answer);
        return f.get();
    }

    /** Reads the next request (it must carry {@code text}) and returns its msg_id. */
    private int request(String text) throws IOException {
        Header h = peer.readHeader();
        assertThat(peer.readBody(h)).isEqualTo(text);
        return h.msgId();
    }

    private static Throwable failure(Future<?> f) throws InterruptedException {
        try {
            f.get();
            throw new AssertionError("the call did not fail");
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }

    /** The errno of the peer's (or the framing's) refusal the call failed with. */
    private static Errno errnoOf(Future<?> f) throws InterruptedException {
        Throwable e = failure(f);
        assertThat(e).isInstanceOf(VfioUserException.class);
        return ((VfioUserException) e).errno();
    }

    @Test
    void aSmallCallAloneIsAnsweredWithoutACallRecord() throws Exception {
        for (int i = 0; i < 3; i++) {
            Future<String> f = call("read " + i, 64);
            int id = request("read " + i);
            peer.send(id, Command.REGION_READ.code(), Header.TYPE_REPLY, "value " + i);
            assertThat(f.get()).isEqualTo("value " + i);
        }
        assertThat(client.aloneCalls()).isEqualTo(3);
    }

    @Test
    void aLargeReplyBufferGoesTheGeneralWay() throws Exception {
        Future<String> f = call("big", 64 * 1024);
        int id = request("big");
        peer.send(id, Command.REGION_READ.code(), Header.TYPE_REPLY, "x");
        assertThat(f.get()).isEqualTo("x");
        assertThat(client.aloneCalls()).isZero();
    }

    @Test
    void anErrorReplyFailsTheCallWithThePeersErrnoAndTheNextCallWorks() throws Exception {
        Future<String> f = call("bad", 64);
        peer.sendError(request("bad"), Command.REGION_READ.code(), Errno.ENOENT.value());
        assertThat(errnoOf(f)).isEqualTo(Errno.ENOENT);

        assertThat(answered("good", 64, "fine")).isEqualTo("fine");
        assertThat(client.aloneCalls()).isEqualTo(2);
    }

    @Test
    void aReplyLargerThanTheBufferFailsWithE2bigAndIsSkippedWhole() throws Exception {
        Future<String> f = call("small room", 8);
        peer.send(request("small room"), Command.REGION_READ.code(), Header.TYPE_REPLY, "more than eight bytes");
        assertThat(errnoOf(f)).isEqualTo(Errno.E2BIG);

        // The oversized body was skipped, not taken for the next message: framing holds.
        assertThat(answered("next", 8, "ok")).isEqualTo("ok");
        assertThat(client.isEnded()).isFalse();
    }

    @Test
    void aReplyToAnotherMsgIdOrCommandFailsTheCallWithEproto() throws Exception {
        Future<String> f = call("which", 64);
        int id = request("which");
        peer.send((id + 1) & 0xFFFF, Command.REGION_READ.code(), Header.TYPE_REPLY, "not yours");
        assertThat(errnoOf(f)).isEqualTo(Errno.EPROTO);

        Future<String> g = call("cmd", 64);
        peer.send(request("cmd"), Command.REGION_WRITE.code(), Header.TYPE_REPLY, "wrong command");
        assertThat(errnoOf(g)).isEqualTo(Errno.EPROTO);

        assertThat(answered("then", 64, "right")).isEqualTo("right");
    }

    @Test
    void aCommandOfThePeerBeforeTheReplyIsServedThenTheReplyReturned() throws Exception {
        Future<String> f = call("wait", 64);
        int id = request("wait");
        peer.send(7, Command.DMA_READ.code(), Header.TYPE_COMMAND, "peer asks");
        assertThat(peer.readReplyText(7)).isEqualTo("done"); // served by the caller's thread while it waits
        peer.send(id, Command.REGION_READ.code(), Header.TYPE_REPLY, "answer");
        assertThat(f.get()).isEqualTo("answer");
        assertThat(served).containsExactly("peer asks");
    }

    @Test
    void aCallFromAHandlerRunByTheLoneCallsReadsGoesTheGeneralWay() throws Exception {
        AtomicReference<String> nested = new AtomicReference<>();
        UnixSocket[] s = UnixSocket.pair();
        toClose.add(s[1]);
        Connection c = new Connection(s[0], LIMITS, "client2");
        toClose.add(c);
        RawWire p = new RawWire(s[1], arena);
        c.startCallerReads(cmd -> {
            MemorySegment reply = Arena.ofAuto().allocate(64);
            try {
                long n = c.callInto(RawPayload.of(Command.REGION_READ, "nested"), reply);
                nested.set(RawPayload.text(reply.asSlice(0, n)));
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            return Response.of(RawPayload.of(cmd.header().command(), "handled"));
        });
        Future<String> f = pool.submit(() -> {
            MemorySegment reply = Arena.ofAuto().allocate(64);
            long n = c.callInto(RawPayload.of(Command.REGION_READ, "outer"), reply);
            return RawPayload.text(reply.asSlice(0, n));
        });
        Header outer = p.readHeader();
        assertThat(p.readBody(outer)).isEqualTo("outer");
        p.send(9, Command.DMA_READ.code(), Header.TYPE_COMMAND, "callback");
        Header inner = p.readHeader(); // the handler's own call, made while the outer call is out
        assertThat(p.readBody(inner)).isEqualTo("nested");
        assertThat(inner.msgId()).isNotEqualTo(outer.msgId());
        // Replies in command order (§3.2): the outer one first, while the handler waits for its own.
        p.send(outer.msgId(), Command.REGION_READ.code(), Header.TYPE_REPLY, "outer reply");
        p.send(inner.msgId(), Command.REGION_READ.code(), Header.TYPE_REPLY, "inner reply");
        assertThat(p.readReplyText(9)).isEqualTo("handled");
        assertThat(f.get()).isEqualTo("outer reply");
        assertThat(nested.get()).isEqualTo("inner reply");
        assertThat(c.aloneCalls()).isEqualTo(1);
    }

    @Test
    void theHolderOfTheReadsCallsAloneAndAPausedHolderIsRefusedBeforeAnythingIsSent() throws Exception {
        Future<String> f = pool.submit(() -> {
            Connection.ReadHold hold = client.holdReads();
            try {
                MemorySegment reply = Arena.ofAuto().allocate(64);
                long n = client.callInto(RawPayload.of(Command.REGION_READ, "held"), reply);
                hold.pause();
                try {
                    assertThatThrownBy(() -> client.callInto(RawPayload.of(Command.REGION_READ, "paused"), reply))
                            .isInstanceOf(IllegalStateException.class);
                } finally {
                    hold.resume();
                }
                return RawPayload.text(reply.asSlice(0, n));
            } finally {
                hold.close();
            }
        });
        peer.send(request("held"), Command.REGION_READ.code(), Header.TYPE_REPLY, "while held");
        assertThat(f.get()).isEqualTo("while held");
        assertThat(client.aloneCalls()).isEqualTo(1);
        // Nothing was sent for the paused call: the next request on the wire is the next call's.
        assertThat(answered("after", 64, "fine")).isEqualTo("fine");
    }

    @Test
    void aCallWithNoReplyTimesOutAndItsLateReplyIsDroppedQuietly() throws Exception {
        start(LIMITS.withReplyTimeout(Duration.ofMillis(200)));
        Future<String> f = call("slow", 64);
        int id = request("slow");
        assertThat(failure(f)).isInstanceOf(ReplyTimeoutException.class);
        peer.send(id, Command.REGION_READ.code(), Header.TYPE_REPLY, "too late");

        // Not "too late", and no EPROTO for the late reply either.
        assertThat(answered("again", 64, "in time")).isEqualTo("in time");
        assertThat(client.isEnded()).isFalse();
    }

    @Test
    void fdsThatComeWithTheReplyAreClosed() throws Exception {
        Future<String> f = call("fd", 64);
        int id = request("fd");
        MemorySegment reply = arena.allocate(Header.SIZE + 4);
        Header.encode(reply, id, Command.REGION_READ.code(), Header.SIZE + 4, Header.TYPE_REPLY, 0);
        reply.asSlice(Header.SIZE).copyFrom(MemorySegment.ofArray("data".getBytes(StandardCharsets.UTF_8)));
        try (EventFd e = EventFd.create()) {
            peerSocket.send(new int[] {e.fd()}, reply);
        }
        assertThat(f.get()).isEqualTo("data");
        // The fd count after the test (closeAllAndCheckLeaks) shows the received copy was closed.
    }

    @Test
    void aReplyThatStallsHalfwayEndsTheConnection() throws Exception {
        start(LIMITS.withReplyTimeout(Duration.ofMillis(200)));
        Future<String> f = call("stall", 64);
        int id = request("stall");
        peer.sendHeaderOnly(id, Command.REGION_READ.code(), Header.TYPE_REPLY, Header.SIZE + 40);
        peerSocket.send(null, arena.allocate(10)); // ten of the forty body bytes, then nothing
        // Framing is lost mid-message: the call fails and the connection ends (not a timeout that keeps it).
        assertThat(failure(f)).isInstanceOf(ConnectionClosedException.class);
        assertThat(client.isEnded()).isTrue();
        assertThat(peer.atEof()).as("the peer sees the connection end").isTrue();
    }

    @Test
    void aPeerThatLeavesEndsTheCallWithConnectionClosed() throws Exception {
        Future<String> f = call("anyone", 64);
        request("anyone");
        peerSocket.close();
        assertThat(failure(f)).isInstanceOf(ConnectionClosedException.class);
        assertThat(client.isEnded()).isTrue();
        assertThatThrownBy(() -> client.callInto(RawPayload.of(Command.REGION_READ, "x"), Arena.ofAuto().allocate(8)))
                .isInstanceOf(ConnectionClosedException.class);
    }

    @Test
    void loneAndPipelinedCallsOfSeveralThreadsEachGetTheirReply() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        Connection c = new Connection(s[0], LIMITS, "client3");
        Connection server = new Connection(s[1], LIMITS, "server3");
        toClose.add(c);
        toClose.add(server);
        server.start(cmd -> Response.of(RawPayload.of(cmd.header().command(),
                RawPayload.text(cmd.payload()).toUpperCase())));
        c.startCallerReads(cmd -> {
            throw VfioUserException.einval("serves nothing");
        });
        List<Future<Long>> futures = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            int thread = t;
            futures.add(pool.submit(() -> {
                MemorySegment small = Arena.ofAuto().allocate(64);
                MemorySegment[] batch = {Arena.ofAuto().allocate(64), Arena.ofAuto().allocate(64)};
                Connection.Call[] calls = new Connection.Call[2];
                long alone = 0;
                for (int i = 0; i < 300; i++) {
                    String text = "t" + thread + " " + i;
                    if (thread % 2 == 0) { // one call at a time: alone whenever no other thread's call is out
                        long before = c.aloneCalls();
                        long n = c.callInto(RawPayload.of(Command.REGION_READ, text), small);
                        assertThat(RawPayload.text(small.asSlice(0, n))).isEqualTo(text.toUpperCase());
                        alone += c.aloneCalls() - before > 0 ? 1 : 0;
                    } else { // two in flight: never alone
                        for (int k = 0; k < 2; k++) {
                            calls[k] = c.startInto(RawPayload.of(Command.REGION_READ, text + "/" + k), batch[k]);
                        }
                        for (int k = 0; k < 2; k++) {
                            long n = c.finishInto(calls[k]);
                            assertThat(RawPayload.text(batch[k].asSlice(0, n))).isEqualTo((text + "/" + k).toUpperCase());
                        }
                    }
                }
                return alone;
            }));
        }
        for (Future<Long> f : futures) {
            f.get();
        }
        // Whether a one-at-a-time call finds another thread's call out is up to the scheduler; pipelined calls never
        // go alone.
        assertThat(c.aloneCalls()).isLessThanOrEqualTo(2 * 300);
    }

    @Test
    void anotherThreadsCallMadeMeanwhileGoesTheGeneralWayAndItsReplyIsDeliveredByTheLoneReader() throws Exception {
        Future<String> lone = call("lone", 64);
        int loneId = request("lone"); // sent: the lone call holds the reads now
        Future<String> other = call("other", 64);
        int otherId = request("other");
        // The other reply first: the lone call's reads hand it to its caller, then take their own.
        peer.send(otherId, Command.REGION_READ.code(), Header.TYPE_REPLY, "for other");
        peer.send(loneId, Command.REGION_READ.code(), Header.TYPE_REPLY, "for lone");
        assertThat(other.get()).isEqualTo("for other");
        assertThat(lone.get()).isEqualTo("for lone");
        assertThat(client.aloneCalls()).isEqualTo(1);
    }
}
