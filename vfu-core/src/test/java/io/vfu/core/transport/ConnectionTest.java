package io.vfu.core.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.EventFd;
import io.vfu.core.linux.FdList;
import io.vfu.core.linux.Fds;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.Header;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.protocol.Wire;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class ConnectionTest {
    private static final TransportLimits LIMITS = TransportLimits.DEFAULT.withReplyTimeout(Duration.ofSeconds(10));

    private final List<AutoCloseable> toClose = new ArrayList<>();
    private int fdsBefore;
    private Arena arena;

    @BeforeEach
    void countFds() {
        fdsBefore = Fds.openFdCount();
        arena = Arena.ofConfined();
    }

    @AfterEach
    void closeAllAndCheckLeaks() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
        arena.close();
        assertThat(Fds.openFdCount()).as("open fds after the test").isEqualTo(fdsBefore);
    }

    private <T extends AutoCloseable> T closeLater(T c) {
        toClose.add(c);
        return c;
    }

    private Connection[] pair(TransportLimits limits) throws IOException {
        UnixSocket[] s = UnixSocket.pair();
        return new Connection[] {
                closeLater(new Connection(s[0], limits, "client")),
                closeLater(new Connection(s[1], limits, "server"))};
    }

    /** Echo server: replies to every command with its own payload, upper-cased. */
    private static final CommandHandler ECHO = cmd -> Response.of(
            RawPayload.of(cmd.header().command(), RawPayload.text(cmd.payload()).toUpperCase()));

    @Test
    void callGetsTheMatchingReply() throws IOException {
        Connection[] c = pair(LIMITS);
        c[1].start(ECHO);
        c[0].start(cmd -> { throw VfioUserException.einval("client serves nothing"); });
        try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_READ, "hello"))) {
            assertThat(r.header().isReply()).isTrue();
            assertThat(r.header().cmd()).isEqualTo(Command.REGION_READ.code());
            assertThat(RawPayload.text(r.payload())).isEqualTo("HELLO");
        }
    }

    @Test
    void concurrentCallsAreMatchedByMsgId() throws Exception {
        Connection[] c = pair(LIMITS);
        c[1].start(ECHO);
        c[0].start(cmd -> Response.of(RawPayload.empty(cmd.header().command())));
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<String>> results = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                String text = "msg-" + i;
                results.add(pool.submit(() -> {
                    try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_WRITE, text))) {
                        return RawPayload.text(r.payload());
                    }
                }));
            }
            for (int i = 0; i < results.size(); i++) {
                assertThat(results.get(i).get(20, TimeUnit.SECONDS)).isEqualTo("MSG-" + i);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void errorReplyBecomesVfioUserExceptionWithThePeersErrno() throws IOException {
        Connection[] c = pair(LIMITS);
        c[1].start(cmd -> { throw new VfioUserException(Errno.ENOENT, "no such mapping"); });
        c[0].start(ECHO);
        assertThatThrownBy(() -> c[0].call(RawPayload.empty(Command.DMA_UNMAP)))
                .isInstanceOfSatisfying(VfioUserException.class, e -> {
                    assertThat(e.errno()).isEqualTo(Errno.ENOENT);
                    assertThat(e.getMessage()).contains("DMA_UNMAP");
                });
        // The connection stays usable after an error reply.
        c[1].close();
    }

    @Test
    void postedCommandsGetNoReplyAndKeepOrder() throws Exception {
        Connection[] c = pair(LIMITS);
        LinkedBlockingQueue<String> seen = new LinkedBlockingQueue<>();
        c[1].start(cmd -> {
            seen.add(RawPayload.text(cmd.payload()) + (cmd.header().noReply() ? "/posted" : ""));
            if (RawPayload.text(cmd.payload()).equals("fail")) {
                throw VfioUserException.einval("posted failure is swallowed");
            }
            return Response.of(RawPayload.of(cmd.header().command(), "ok"));
        });
        c[0].start(ECHO);
        c[0].post(RawPayload.of(Command.REGION_WRITE, "a"));
        c[0].post(RawPayload.of(Command.REGION_WRITE, "fail"));
        c[0].post(RawPayload.of(Command.REGION_WRITE, "b"));
        try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_READ, "c"))) {
            // Had any posted command been answered, this reply would not match (§3.2).
            assertThat(RawPayload.text(r.payload())).isEqualTo("ok");
        }
        assertThat(List.of(seen.take(), seen.take(), seen.take(), seen.take()))
                .containsExactly("a/posted", "fail/posted", "b/posted", "c");
    }

    @Test
    void replyIsReadIntoTheCallersBuffer() throws IOException {
        Connection[] c = pair(LIMITS);
        c[1].start(ECHO);
        c[0].start(ECHO);
        MemorySegment buffer = arena.allocate(64);
        try (ReceivedReply r = c[0].call(RawPayload.of(Command.MIG_DATA_READ, "zero copy"), null, buffer)) {
            assertThat(r.payload().address()).isEqualTo(buffer.address());
            assertThat(RawPayload.text(buffer.asSlice(0, 9))).isEqualTo("ZERO COPY");
        }
    }

    /**
     * A batch with another request in front: the first goes out first (its reply comes first), each call's
     * reply lands in its own buffer.
     */
    @Test
    void aBatchWithAnotherRequestInFrontIsSentInOrderAndAnsweredInOrder() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        Connection client = closeLater(new Connection(s[0], LIMITS, "client"));
        UnixSocket peer = closeLater(s[1]);
        client.startCallerReads(cmd -> { throw VfioUserException.einval("client serves nothing"); });
        RawWire wire = new RawWire(peer, arena);
        MemorySegment firstBuffer = Arena.ofAuto().allocate(32);
        MemorySegment[] buffers = {Arena.ofAuto().allocate(32), Arena.ofAuto().allocate(32)};
        Connection.Call[] calls = new Connection.Call[2];
        Connection.Call first = client.startInto(new FixedText(Command.DEVICE_FEATURE, "size?"), firstBuffer,
                new FixedText(Command.MIG_DATA_READ, "read"), buffers, calls, 2);
        int[] ids = new int[3];
        int[] cmds = new int[3];
        for (int i = 0; i < 3; i++) {
            Header h = wire.readHeader();
            assertThat(wire.readBody(h)).isEqualTo(i == 0 ? "size?" : "read");
            ids[i] = h.msgId();
            cmds[i] = h.cmd();
        }
        assertThat(ids).doesNotHaveDuplicates();
        assertThat(cmds).containsExactly(Command.DEVICE_FEATURE.code(), Command.MIG_DATA_READ.code(),
                Command.MIG_DATA_READ.code());
        for (int i = 0; i < 3; i++) {
            wire.send(ids[i], cmds[i], Header.TYPE_REPLY, "reply" + i);
        }
        assertThat(client.finishInto(first)).isEqualTo(6);
        assertThat(RawPayload.text(firstBuffer.asSlice(0, 6))).isEqualTo("reply0");
        for (int i = 0; i < 2; i++) {
            assertThat(client.finishInto(calls[i])).isEqualTo(6);
            assertThat(RawPayload.text(buffers[i].asSlice(0, 6))).isEqualTo("reply" + (i + 1));
        }
        assertThatThrownBy(() -> client.startInto(RawPayload.of(Command.DEVICE_FEATURE, "a data tail"), firstBuffer,
                new FixedText(Command.MIG_DATA_READ, "read"), buffers, calls, 1))
                .as("a batch is made of fixed parts").isInstanceOf(IllegalArgumentException.class);
    }

    /**
     * A reply read into two buffers (a fixed part and data, as DMA_READ's): its first bytes fill the first, the
     * rest the second; a shorter one fills what it has; a larger one is refused with E2BIG and the connection
     * stays in step.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void aReplyIsSplitBetweenItsFixedPartAndItsDataBuffer(boolean callerReads) throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        Connection client = startedClient(s[0], callerReads);
        RawWire wire = new RawWire(closeLater(s[1]), arena);
        String data = "d".repeat(5000) + "end";
        MemorySegment fixed = Arena.ofAuto().allocate(8);
        MemorySegment dataBuffer = Arena.ofAuto().allocate(data.length());
        for (String reply : List.of("fixed-8:" + data, "short", "fixed-8:" + data + "!")) {
            fixed.fill((byte) 0);
            dataBuffer.fill((byte) 0);
            CompletableFuture<Long> call = CompletableFuture.supplyAsync(() -> {
                try {
                    return client.callInto(RawPayload.of(Command.DMA_READ, "read"), fixed, dataBuffer);
                } catch (IOException e) {
                    throw new java.util.concurrent.CompletionException(e);
                }
            });
            Header h = wire.readHeader();
            assertThat(wire.readBody(h)).isEqualTo("read");
            wire.send(h.msgId(), h.cmd(), Header.TYPE_REPLY, reply);
            if (reply.endsWith("!")) {
                assertThatThrownBy(() -> call.get(10, TimeUnit.SECONDS)).hasCauseInstanceOf(VfioUserException.class)
                        .cause().satisfies(e -> assertThat(((VfioUserException) e).errno()).isEqualTo(Errno.E2BIG));
            } else if (reply.equals("short")) {
                assertThat(call.get(10, TimeUnit.SECONDS)).isEqualTo(5);
                assertThat(RawPayload.text(fixed.asSlice(0, 5))).isEqualTo("short");
                assertThat(dataBuffer.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0)).as("no data came").isZero();
            } else {
                assertThat(call.get(10, TimeUnit.SECONDS)).isEqualTo(8 + data.length());
                assertThat(RawPayload.text(fixed)).isEqualTo("fixed-8:");
                assertThat(RawPayload.text(dataBuffer)).isEqualTo(data);
            }
        }
        assertThatThrownBy(() -> client.callInto(RawPayload.of(Command.DMA_READ, "read"), fixed,
                MemorySegment.ofArray(new byte[8]))).as("data goes where the kernel can write it: native memory")
                .isInstanceOf(IllegalArgumentException.class);
        // Still in step after the refused reply: an ordinary call gets its own reply.
        CompletableFuture<String> next = CompletableFuture.supplyAsync(() -> {
            try (ReceivedReply r = client.call(RawPayload.of(Command.REGION_READ, "after"))) {
                return RawPayload.text(r.payload());
            } catch (IOException e) {
                throw new java.util.concurrent.CompletionException(e);
            }
        });
        Header h = wire.readHeader();
        assertThat(wire.readBody(h)).isEqualTo("after");
        wire.send(h.msgId(), h.cmd(), Header.TYPE_REPLY, "ok");
        assertThat(next.get(10, TimeUnit.SECONDS)).isEqualTo("ok");
    }

    /** A client connection that serves nothing, started with a reader thread or in caller-reads mode. */
    /**
     * A reply that stops halfway while the reader thread receives it into the caller's buffer: the caller's
     * timeout must not hand the buffer back while the reader may still write into it. The connection is shut
     * down first (framing is lost anyway), so the call fails only once the reader let go of the buffer.
     */
    @Test
    void aReplyThatStallsHalfwayEndsTheConnectionBeforeItsCallerGivesUp() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        Connection client = closeLater(new Connection(s[0], LIMITS.withReplyTimeout(Duration.ofMillis(200)),
                "client"));
        client.start(cmd -> { throw VfioUserException.einval("client serves nothing"); });
        UnixSocket peerSocket = closeLater(s[1]);
        peerSocket.receiveTimeout(Duration.ofSeconds(10)); // a wrong build fails below instead of hanging
        RawWire wire = new RawWire(peerSocket, arena);
        MemorySegment buffer = Arena.ofAuto().allocate(64 * 1024);
        CompletableFuture<Long> call = CompletableFuture.supplyAsync(() -> {
            try {
                return client.callInto(RawPayload.of(Command.REGION_READ, "stall"), buffer);
            } catch (IOException e) {
                throw new java.util.concurrent.CompletionException(e);
            }
        });
        Header h = wire.readHeader();
        assertThat(wire.readBody(h)).isEqualTo("stall");
        wire.sendHeaderOnly(h.msgId(), h.cmd(), Header.TYPE_REPLY, Header.SIZE + buffer.byteSize());
        peerSocket.send(null, arena.allocate(100)); // a hundred bytes of the body, then nothing

        assertThatThrownBy(() -> call.get(10, TimeUnit.SECONDS)).hasCauseInstanceOf(IOException.class);
        assertThat(wire.atEof()).as("the connection was shut down before the call failed").isTrue();
    }

    private Connection startedClient(UnixSocket socket, boolean callerReads) throws IOException {
        Connection client = closeLater(new Connection(socket, LIMITS, "client"));
        CommandHandler none = cmd -> { throw VfioUserException.einval("client serves nothing"); };
        if (callerReads) {
            client.startCallerReads(none);
        } else {
            client.start(none);
        }
        return client;
    }

    /** A request whose text is its fixed part (batches take no data tails). */
    private record FixedText(Command command, String text) implements io.vfu.core.protocol.Request {
        @Override
        public int fixedSize() {
            return text.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
        }

        @Override
        public void encodeFixed(MemorySegment dst) {
            dst.copyFrom(MemorySegment.ofArray(text.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        }
    }

    /**
     * startInto/finishInto: several calls in flight at once (the peer sees them all before answering), each reply
     * lands in its own buffer, an error fails only its call, and the connection stays in step afterwards. Run
     * with a reader thread and in caller-reads mode.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void pipelinedCallsGetTheirOwnRepliesInTheirOwnBuffers(boolean callerReads) throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        Connection client = startedClient(s[0], callerReads);
        UnixSocket peer = closeLater(s[1]);
        RawWire wire = new RawWire(peer, arena);
        MemorySegment[] buffers = new MemorySegment[4];
        Connection.Call[] calls = new Connection.Call[4];
        for (int i = 0; i < 4; i++) {
            buffers[i] = Arena.ofAuto().allocate(32);
            calls[i] = client.startInto(RawPayload.of(Command.MIG_DATA_READ, "req" + i), buffers[i]);
        }
        int[] ids = new int[4];
        for (int i = 0; i < 4; i++) {
            Header h = wire.readHeader();
            assertThat(wire.readBody(h)).isEqualTo("req" + i);
            ids[i] = h.msgId();
        }
        assertThat(ids).doesNotHaveDuplicates();
        // All four answered in one send, the third with an error: the receiving side must split them.
        MemorySegment replies = arena.allocate(4L * Header.SIZE + 3 * 6);
        long at = 0;
        for (int i = 0; i < 4; i++) {
            boolean error = i == 2;
            long size = Header.SIZE + (error ? 0 : 6);
            Header.encode(replies.asSlice(at), ids[i], Command.MIG_DATA_READ.code(), size,
                    Header.TYPE_REPLY | (error ? Header.FLAG_ERROR : 0), error ? Errno.EIO.value() : 0);
            if (!error) {
                replies.asSlice(at + Header.SIZE, 6).copyFrom(MemorySegment.ofArray(("reply" + i).getBytes()));
            }
            at += size;
        }
        peer.send(null, replies);
        for (int i = 0; i < 4; i++) {
            if (i == 2) {
                Connection.Call failing = calls[i];
                assertThatThrownBy(() -> client.finishInto(failing))
                        .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EIO));
            } else {
                assertThat(client.finishInto(calls[i])).isEqualTo(6);
                assertThat(RawPayload.text(buffers[i].asSlice(0, 6))).isEqualTo("reply" + i);
            }
        }
        // Still in step: an ordinary call after the pipeline gets its own reply.
        CompletableFuture<String> next = CompletableFuture.supplyAsync(() -> {
            try (ReceivedReply r = client.call(RawPayload.of(Command.REGION_READ, "after"))) {
                return RawPayload.text(r.payload());
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        Header h = wire.readHeader();
        assertThat(wire.readBody(h)).isEqualTo("after");
        wire.send(h.msgId(), Command.REGION_READ.code(), Header.TYPE_REPLY, "fine");
        assertThat(next.get(10, TimeUnit.SECONDS)).isEqualTo("fine");
    }

    @Test
    void replyLargerThanTheCallersBufferFailsWithE2bigAndTheStreamStaysInSync() throws IOException {
        Connection[] c = pair(LIMITS);
        c[1].start(ECHO);
        c[0].start(ECHO);
        MemorySegment small = arena.allocate(4);
        assertThatThrownBy(() -> c[0].call(RawPayload.of(Command.MIG_DATA_READ, "too long"), null, small))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.E2BIG));
        assertThat(small.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)).containsOnly(0);
        try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_READ, "next"))) {
            assertThat(RawPayload.text(r.payload())).isEqualTo("NEXT");
        }
    }

    @Test
    void fdsThatTheHandlerDoesNotTakeAreClosedAndTakenOnesAreHandedOn() throws Exception {
        Connection[] c = pair(LIMITS);
        CompletableFuture<Integer> taken = new CompletableFuture<>();
        c[1].start(cmd -> {
            FdList fds = cmd.fds();
            if (cmd.header().cmd() == Command.DEVICE_SET_IRQS.code()) {
                taken.complete(fds.take(0));
            }
            return Response.of(RawPayload.empty(cmd.header().command()));
        });
        c[0].start(ECHO);
        try (EventFd a = EventFd.create(); EventFd b = EventFd.create()) {
            int base = Fds.openFdCount();
            c[0].call(RawPayload.empty(Command.DMA_MAP), a.fd(), b.fd()).close();
            assertThat(Fds.openFdCount()).as("fds of an untaken message closed").isEqualTo(base);
            c[0].call(RawPayload.empty(Command.DEVICE_SET_IRQS), a.fd()).close();
            int received = taken.get(5, TimeUnit.SECONDS);
            assertThat(Fds.openFdCount()).isEqualTo(base + 1);
            try (EventFd kept = EventFd.adopt(received)) {
                kept.signal(3);
                assertThat(a.read()).isEqualTo(3);
            }
        }
    }

    /**
     * Large commands are received in place when the next one has the size of the last (runs of equal writes);
     * runs that change size, small commands in between and commands with fds must all arrive intact, each with
     * its own fds.
     */
    @Test
    void commandsOfChangingSizesArriveIntactWithTheirOwnFds() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        Connection server = closeLater(new Connection(s[1], LIMITS, "server"));
        UnixSocket peer = closeLater(s[0]);
        List<String> seen = java.util.Collections.synchronizedList(new ArrayList<>());
        server.start(cmd -> {
            MemorySegment p = cmd.payload();
            long sum = 0;
            for (long i = 0; i < p.byteSize(); i++) {
                sum = sum * 31 + p.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i);
            }
            seen.add(p.byteSize() + "/" + sum + "/" + cmd.fds().size());
            return Response.of(RawPayload.empty(cmd.header().command()));
        });
        int[] sizes = {8000, 8000, 8000, 100, 8000, 20_000, 20_000, 5000, 5000, 16, 0, 6000, 6000};
        List<String> expected = new ArrayList<>();
        try (EventFd e = EventFd.create()) {
            for (int i = 0; i < sizes.length; i++) {
                MemorySegment msg = arena.allocate(Header.SIZE + sizes[i]);
                Header.encode(msg, i + 1, Command.MIG_DATA_WRITE.code(), Header.SIZE + sizes[i], Header.TYPE_COMMAND, 0);
                long sum = 0;
                for (int k = 0; k < sizes[i]; k++) {
                    byte b = (byte) (k * 7 + i);
                    msg.set(java.lang.foreign.ValueLayout.JAVA_BYTE, Header.SIZE + k, b);
                    sum = sum * 31 + b;
                }
                boolean withFd = i % 4 == 2;
                peer.send(withFd ? new int[] {e.fd()} : null, msg); // all sent before any reply is read
                expected.add(sizes[i] + "/" + sum + "/" + (withFd ? 1 : 0));
            }
            RawWire wire = new RawWire(peer, arena);
            for (int i = 0; i < sizes.length; i++) {
                Header h = wire.readHeader();
                assertThat(h.msgId()).isEqualTo(i + 1);
                assertThat(h.isError()).isFalse();
            }
        }
        assertThat(seen).isEqualTo(expected);
    }

    private record ServerAndPeer(Connection server, UnixSocket peer) {
    }

    /** A server connection (not started) and the raw socket of its peer, which waits at most 10 s for a reply. */
    private ServerAndPeer serverWithRawPeer() throws IOException {
        UnixSocket[] s = UnixSocket.pair();
        Connection server = closeLater(new Connection(s[1], LIMITS, "server"));
        UnixSocket peer = closeLater(s[0]);
        peer.receiveTimeout(Duration.ofSeconds(10)); // a reply held back for good fails the test, never hangs it
        return new ServerAndPeer(server, peer);
    }

    /**
     * Commands whose data the handler places ({@link CommandHandler#place}): the fixed part is read first, the
     * data lands in the handler's segment and {@code received} answers; a refused placement answers with its
     * errno and drops the data; no placement serves the command whole as usual; a peer that goes away in the
     * middle of the data leads to {@code abandoned}. The connection stays in step throughout.
     */
    @Test
    void aHandlerPlacesCommandDataWhereItBelongs() throws Exception {
        ServerAndPeer sp = serverWithRawPeer();
        Connection server = sp.server();
        RawWire wire = new RawWire(sp.peer(), arena);
        MemorySegment home = Arena.ofAuto().allocate(6000);
        List<String> events = new java.util.concurrent.CopyOnWriteArrayList<>();
        CountDownLatch abandoned = new CountDownLatch(1);
        server.start(new CommandHandler() {
            @Override
            public Response handle(IncomingCommand cmd) {
                events.add("handle " + RawPayload.text(cmd.payload()).length());
                return Response.of(RawPayload.of(cmd.header().command(), "whole"));
            }

            @Override
            public int placedDataOffset(int cmd) {
                return cmd == Command.DMA_WRITE.code() ? 8 : 0;
            }

            @Override
            public Placement place(int cmd, MemorySegment fixed, long dataSize) {
                String how = RawPayload.text(fixed);
                events.add("place " + how + " " + dataSize);
                if (how.equals("refuse::")) {
                    throw new VfioUserException(Errno.EFAULT, "no home for it");
                }
                if (how.equals("usual:::")) {
                    return null;
                }
                MemorySegment dst = home.asSlice(0, dataSize);
                return new TestPlacement(dst, () -> {
                    events.add("received " + RawPayload.text(dst.asSlice(dataSize - 3)));
                    return Response.of(RawPayload.of(Command.DMA_WRITE, "placed"));
                }, () -> {
                    events.add("abandoned");
                    abandoned.countDown();
                });
            }
        });
        String data = "x".repeat(5000) + "end";
        wire.send(1, Command.DMA_WRITE.code(), Header.TYPE_COMMAND, "place:::" + data);
        assertThat(wire.readReplyText(1)).isEqualTo("placed");
        assertThat(RawPayload.text(home.asSlice(0, data.length()))).isEqualTo(data);
        wire.send(2, Command.DMA_WRITE.code(), Header.TYPE_COMMAND, "refuse::" + data);
        Header refused = wire.readHeader();
        assertThat(refused.msgId()).isEqualTo(2);
        assertThat(refused.isError()).isTrue();
        assertThat(refused.error()).isEqualTo(Errno.EFAULT.value());
        wire.send(3, Command.DMA_WRITE.code(), Header.TYPE_COMMAND, "usual:::" + data);
        assertThat(wire.readReplyText(3)).isEqualTo("whole");
        wire.send(4, Command.REGION_READ.code(), Header.TYPE_COMMAND, "other");
        assertThat(wire.readReplyText(4)).isEqualTo("whole");
        // The peer sends a header, the fixed part and some of the data, then goes away.
        MemorySegment partial = arena.allocate(Header.SIZE + 8 + 100);
        Header.encode(partial, 5, Command.DMA_WRITE.code(), Header.SIZE + 8 + 5000, Header.TYPE_COMMAND, 0);
        partial.asSlice(Header.SIZE, 8).copyFrom(MemorySegment.ofArray("place:::".getBytes()));
        sp.peer().send(null, partial);
        sp.peer().close();
        assertThat(abandoned.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(events).containsExactly("place place::: 5003", "received end", "place refuse:: 5003",
                "place usual::: 5003", "handle 5011", "handle 5", "place place::: 5000", "abandoned");
    }

    /**
     * Coalescible replies ({@link Response#coalescible}): held back while the next command, already received,
     * is handled, then sent with its reply. Whatever follows (more of them, an error, a posted command and then
     * nothing, a reply with fds), every reply arrives, in order, with its own data and fds.
     */
    @Test
    void heldBackRepliesArriveInOrderWithTheirDataWhateverFollows() throws Exception {
        ServerAndPeer sp = serverWithRawPeer();
        Connection server = sp.server();
        UnixSocket peer = sp.peer();
        // Two reply buffers used in turn, as the contract allows: valid until the next command was handled.
        MemorySegment[] buffers = {Arena.ofAuto().allocate(64), Arena.ofAuto().allocate(64)};
        AtomicInteger turn = new AtomicInteger();
        try (EventFd e = EventFd.create()) {
            server.start(cmd -> {
                String text = RawPayload.text(cmd.payload());
                if (text.startsWith("fail")) {
                    throw new VfioUserException(Errno.EIO, "failing on purpose");
                }
                if (text.startsWith("fd")) {
                    return Response.of(RawPayload.of(cmd.header().command(), "with-fd"), e.fd());
                }
                MemorySegment b = buffers[turn.getAndIncrement() & 1];
                byte[] bytes = ("data-" + text).getBytes(java.nio.charset.StandardCharsets.UTF_8);
                MemorySegment.copy(MemorySegment.ofArray(bytes), 0, b, 0, bytes.length);
                return Response.coalescible(new RawPayload(cmd.header().command(), b.asSlice(0, bytes.length)));
            });
            String[] bodies = {"a", "b", "c", "fail1", "d", "fd1", "e", "f", "posted", "g"};
            MemorySegment all = arena.allocate(1024);
            long at = 0;
            for (int i = 0; i < bodies.length; i++) {
                byte[] b = bodies[i].getBytes(java.nio.charset.StandardCharsets.UTF_8);
                int flags = Header.TYPE_COMMAND | (bodies[i].equals("posted") ? Header.FLAG_NO_REPLY : 0);
                Header.encode(all.asSlice(at), i + 1, Command.MIG_DATA_READ.code(), Header.SIZE + b.length, flags, 0);
                MemorySegment.copy(MemorySegment.ofArray(b), 0, all, at + Header.SIZE, b.length);
                at += Header.SIZE + b.length;
            }
            peer.send(null, all.asSlice(0, at)); // everything at once: the server finds each next command staged
            List<String> got = new ArrayList<>();
            int fdsWithReplies = 0;
            try (FdList fds = new FdList()) {
                for (int i = 0; i < bodies.length - 1; i++) { // the posted command gets no reply
                    MemorySegment h = arena.allocate(Header.SIZE);
                    peer.receiveFully(h, fds);
                    Header header = Header.decode(h);
                    if (header.payloadSize() > 0) {
                        MemorySegment body = arena.allocate(header.payloadSize());
                        peer.receiveFully(body, fds);
                        got.add(header.msgId() + ":" + RawPayload.text(body));
                    } else {
                        got.add(header.msgId() + ":" + (header.isError() ? "error " + header.error() : "empty"));
                    }
                    if (header.msgId() == 6) {
                        fdsWithReplies = fds.size();
                    }
                }
                assertThat(fds.size()).as("the one fd came with reply 6").isEqualTo(1).isEqualTo(fdsWithReplies);
            }
            assertThat(got).containsExactly("1:data-a", "2:data-b", "3:data-c", "4:error " + Errno.EIO.value(),
                    "5:data-d", "6:with-fd", "7:data-e", "8:data-f", "10:data-g");
            assertThat(server.heldCount()).as("replies were held back and sent with the next").isPositive();
            // A single command with nothing after it is answered at once (nothing is held while waiting).
            RawWire wire = new RawWire(peer, arena);
            wire.send(11, Command.MIG_DATA_READ.code(), Header.TYPE_COMMAND, "h");
            assertThat(wire.readReplyText(11)).isEqualTo("data-h");
            // Held back for a posted command that comes with it, then nothing: sent before the server waits.
            MemorySegment two = arena.allocate(2 * Header.SIZE + 2);
            Header.encode(two, 12, Command.MIG_DATA_READ.code(), Header.SIZE + 1, Header.TYPE_COMMAND, 0);
            two.set(java.lang.foreign.ValueLayout.JAVA_BYTE, Header.SIZE, (byte) 'i');
            Header.encode(two.asSlice(Header.SIZE + 1), 13, Command.MIG_DATA_READ.code(), Header.SIZE + 1,
                    Header.TYPE_COMMAND | Header.FLAG_NO_REPLY, 0);
            two.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 2 * Header.SIZE + 1, (byte) 'j');
            long heldBefore = server.heldCount();
            peer.send(null, two);
            assertThat(wire.readReplyText(12)).isEqualTo("data-i");
            assertThat(server.heldCount()).isEqualTo(heldBefore + 1);
        }
    }

    /**
     * Data-less coalescible replies (MIG_DATA_WRITE's) pile up while more commands are at hand and go out with
     * one sendmsg, in order, before the server waits; a reply with data may come last.
     */
    @Test
    void dataLessHeldRepliesGoOutTogetherBeforeTheServerWaits() throws Exception {
        ServerAndPeer sp = serverWithRawPeer();
        Connection server = sp.server();
        UnixSocket peer = sp.peer();
        MemorySegment data = Arena.ofAuto().allocate(8);
        data.setString(0, "tail-20");
        server.start(cmd -> RawPayload.text(cmd.payload()).equals("20")
                ? Response.coalescible(new RawPayload(cmd.header().command(), data.asSlice(0, 7)))
                : Response.coalescible(RawPayload.of(cmd.header().command(), "")));
        int n = 20;
        MemorySegment all = arena.allocate(n * (Header.SIZE + 2));
        long at = 0;
        for (int i = 1; i <= n; i++) {
            byte[] b = Integer.toString(i).getBytes(java.nio.charset.StandardCharsets.UTF_8);
            Header.encode(all.asSlice(at), i, Command.MIG_DATA_WRITE.code(), Header.SIZE + b.length, Header.TYPE_COMMAND, 0);
            MemorySegment.copy(MemorySegment.ofArray(b), 0, all, at + Header.SIZE, b.length);
            at += Header.SIZE + b.length;
        }
        peer.send(null, all.asSlice(0, at)); // everything at once: the server finds each next command staged
        MemorySegment replies = arena.allocate(4096);
        long expected = (n - 1) * Header.SIZE + Header.SIZE + 7;
        long got;
        try (FdList fds = new FdList()) {
            got = peer.receive(replies, fds);
        }
        assertThat(got).as("every reply is there").isEqualTo(expected);
        for (int i = 0; i < n; i++) {
            Header h = Header.decode(replies.asSlice(i * Header.SIZE, Header.SIZE));
            assertThat(h.msgId()).isEqualTo(i + 1);
            assertThat(h.isError()).isFalse();
            assertThat(h.payloadSize()).isEqualTo(i == n - 1 ? 7 : 0);
        }
        assertThat(RawPayload.text(replies.asSlice(n * Header.SIZE, 7))).isEqualTo("tail-20");
        assertThat(server.heldCount()).as("the last one, with nothing after it, carried the others").isEqualTo(n - 1);
    }

    /** A reply whose data alone fills the socket buffer is sent at once, next command staged or not. */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"65536, 1", "262144, 1", "262145, 0", "1048576, 0"})
    void onlyRepliesWithModestDataAreHeld(int dataBytes, long expectedHeld) throws Exception {
        ServerAndPeer sp = serverWithRawPeer();
        MemorySegment data = Arena.ofAuto().allocate(dataBytes);
        sp.server().start(cmd -> Response.coalescible(new RawPayload(cmd.header().command(), data)));
        MemorySegment two = arena.allocate(2 * Header.SIZE);
        Header.encode(two, 1, Command.MIG_DATA_READ.code(), Header.SIZE, Header.TYPE_COMMAND, 0);
        Header.encode(two.asSlice(Header.SIZE), 2, Command.MIG_DATA_READ.code(), Header.SIZE, Header.TYPE_COMMAND, 0);
        sp.peer().send(null, two); // both at once: the second is staged while the first is answered
        RawWire wire = new RawWire(sp.peer(), arena);
        for (int id = 1; id <= 2; id++) {
            Header h = wire.readHeader();
            assertThat(h.msgId()).isEqualTo(id);
            assertThat(h.payloadSize()).isEqualTo(dataBytes);
            wire.readBody(h);
        }
        assertThat(sp.server().heldCount()).isEqualTo(expectedHeld);
    }

    @Test
    void handlerMayCallThePeerAndServeItsCommandsMeanwhile() throws IOException {
        // A server handler asks the client for data (DMA_READ in single-socket mode) before it replies.
        Connection[] c = pair(LIMITS);
        AtomicInteger clientServed = new AtomicInteger();
        c[0].start(cmd -> {
            clientServed.incrementAndGet();
            return Response.of(RawPayload.of(Command.DMA_READ, "guest-bytes"));
        });
        c[1].start(cmd -> {
            try (ReceivedReply dma = c[1].call(RawPayload.of(Command.DMA_READ, "addr"))) {
                return Response.of(RawPayload.of(cmd.header().command(), "device saw " + RawPayload.text(dma.payload())));
            }
        });
        try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_WRITE, "doorbell"))) {
            assertThat(RawPayload.text(r.payload())).isEqualTo("device saw guest-bytes");
        }
        assertThat(clientServed).hasValue(1);
    }

    @Test
    void commandsArrivingWhileAHandlerWaitsInlineAreServedAfterItInOrder() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        UnixSocket peer = closeLater(s[0]);
        Connection server = closeLater(new Connection(s[1], LIMITS, "server"));
        LinkedBlockingQueue<String> order = new LinkedBlockingQueue<>();
        server.start(cmd -> {
            String text = RawPayload.text(cmd.payload());
            order.add(text);
            if (text.equals("first")) {
                try (ReceivedReply r = server.call(RawPayload.of(Command.DMA_READ, "?"))) {
                    order.add("dma:" + RawPayload.text(r.payload()));
                }
            }
            return Response.of(RawPayload.of(cmd.header().command(), "done-" + text));
        });
        RawWire wire = new RawWire(peer, arena);
        wire.send(1, Command.REGION_WRITE.code(), Header.TYPE_COMMAND, "first");
        Header dmaRead = wire.readHeader();
        assertThat(dmaRead.cmd()).isEqualTo(Command.DMA_READ.code());
        wire.readBody(dmaRead);
        // Pipelined commands before the DMA reply: queued, not interleaved.
        wire.send(2, Command.REGION_WRITE.code(), Header.TYPE_COMMAND, "second");
        wire.send(3, Command.REGION_WRITE.code(), Header.TYPE_COMMAND, "third");
        wire.send(dmaRead.msgId(), Command.DMA_READ.code(), Header.TYPE_REPLY, "data");
        assertThat(wire.readReplyText(1)).isEqualTo("done-first");
        assertThat(wire.readReplyText(2)).isEqualTo("done-second");
        assertThat(wire.readReplyText(3)).isEqualTo("done-third");
        assertThat(List.of(order.take(), order.take(), order.take(), order.take()))
                .containsExactly("first", "dma:data", "second", "third");
    }

    @Test
    void oversizedCommandIsAnsweredWithE2bigAndTheStreamResynchronises() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        UnixSocket peer = closeLater(s[0]);
        Connection server = closeLater(new Connection(s[1], LIMITS.withMaxMessageSize(4096), "server"));
        AtomicInteger handled = new AtomicInteger();
        server.start(cmd -> {
            handled.incrementAndGet();
            return Response.of(RawPayload.of(cmd.header().command(), "ok"));
        });
        RawWire wire = new RawWire(peer, arena);
        wire.send(7, Command.REGION_WRITE.code(), Header.TYPE_COMMAND, "x".repeat(5000));
        Header err = wire.readHeader();
        assertThat(err.msgId()).isEqualTo(7);
        assertThat(err.isError()).isTrue();
        assertThat(err.error()).isEqualTo(Errno.E2BIG.value());
        assertThat(err.msgSize()).isEqualTo(16);
        wire.send(8, Command.REGION_READ.code(), Header.TYPE_COMMAND, "small");
        assertThat(wire.readReplyText(8)).isEqualTo("ok");
        assertThat(handled).hasValue(1);
    }

    @Test
    void messageBeyondTheDrainLimitClosesTheConnectionWithoutAllocating() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        UnixSocket peer = closeLater(s[0]);
        Connection server = closeLater(new Connection(s[1], LIMITS.withMaxMessageSize(4096).withDrainLimit(8192), "server"));
        CompletableFuture<Throwable> closed = new CompletableFuture<>();
        server.start(new CommandHandler() {
            @Override
            public Response handle(IncomingCommand command) {
                throw new AssertionError("must not be dispatched");
            }

            @Override
            public void closed(Throwable cause) {
                closed.complete(cause);
            }
        });
        RawWire wire = new RawWire(peer, arena);
        wire.sendHeaderOnly(9, Command.REGION_WRITE.code(), 0, 0x7FFF_0000L);
        assertThat(closed.get(5, TimeUnit.SECONDS)).hasMessageContaining("drain limit");
        assertThat(wire.atEof()).isTrue();
    }

    @Test
    void headerWithInvalidTypeIsAnsweredWithEinval() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        UnixSocket peer = closeLater(s[0]);
        Connection server = closeLater(new Connection(s[1], LIMITS, "server"));
        server.start(ECHO);
        RawWire wire = new RawWire(peer, arena);
        wire.send(4, Command.REGION_READ.code(), 0x3, "junk");
        Header err = wire.readHeader();
        assertThat(err.isError()).isTrue();
        assertThat(err.error()).isEqualTo(Errno.EINVAL.value());
        wire.send(5, Command.REGION_READ.code(), Header.TYPE_COMMAND, "again");
        assertThat(wire.readReplyText(5)).isEqualTo("AGAIN");
    }

    @Test
    void msgSizeBelowHeaderSizeLosesFramingAndCloses() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        UnixSocket peer = closeLater(s[0]);
        Connection server = closeLater(new Connection(s[1], LIMITS, "server"));
        CompletableFuture<Throwable> closed = new CompletableFuture<>();
        server.start(new CommandHandler() {
            @Override
            public Response handle(IncomingCommand command) {
                throw new AssertionError("must not be dispatched");
            }

            @Override
            public void closed(Throwable cause) {
                closed.complete(cause);
            }
        });
        new RawWire(peer, arena).sendHeaderOnly(1, Command.REGION_READ.code(), 0, 8);
        assertThat(closed.get(5, TimeUnit.SECONDS)).hasMessageContaining("framing lost");
    }

    @Test
    void replyWithAWrongMsgIdFailsTheOldestCallWithEproto() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        UnixSocket peer = closeLater(s[0]);
        Connection client = closeLater(new Connection(s[1], LIMITS.withReplyTimeout(Duration.ofSeconds(30)), "client"));
        client.start(ECHO);
        RawWire wire = new RawWire(peer, arena);
        CompletableFuture<Throwable> failure = CompletableFuture.supplyAsync(() -> {
            try {
                client.call(RawPayload.of(Command.REGION_READ, "q")).close();
                return null;
            } catch (Throwable t) {
                return t;
            }
        });
        Header request = wire.readHeader();
        wire.readBody(request);
        wire.send((request.msgId() + 1) & 0xFFFF, request.cmd(), Header.TYPE_REPLY, "wrong id");
        assertThat(failure.get(5, TimeUnit.SECONDS))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EPROTO))
                .hasMessageContaining("REGION_READ");
        // Still usable: a correct reply to the next call is accepted.
        CompletableFuture<String> ok = CompletableFuture.supplyAsync(() -> {
            try (ReceivedReply r = client.call(RawPayload.of(Command.REGION_READ, "q2"))) {
                return RawPayload.text(r.payload());
            } catch (IOException e) {
                return e.toString();
            }
        });
        Header second = wire.readHeader();
        wire.readBody(second);
        wire.send(second.msgId(), second.cmd(), Header.TYPE_REPLY, "right");
        assertThat(ok.get(5, TimeUnit.SECONDS)).isEqualTo("right");
    }

    @Test
    void peerThatDisappearsFailsPendingCallsPromptly() throws Exception {
        Connection[] c = pair(LIMITS.withReplyTimeout(Duration.ofSeconds(30)));
        CountDownLatch inHandler = new CountDownLatch(1);
        c[1].start(cmd -> {
            inHandler.countDown();
            c[1].socket().shutdown(true, true);
            throw VfioUserException.einval("gone");
        });
        c[0].start(ECHO);
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> c[0].call(RawPayload.empty(Command.DEVICE_RESET)))
                .isInstanceOf(ConnectionClosedException.class)
                .hasMessageContaining("closed");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(30));
        assertThatThrownBy(() -> c[0].call(RawPayload.empty(Command.DEVICE_RESET)))
                .isInstanceOf(ConnectionClosedException.class);
    }

    @Test
    void callTimesOutWhenNoReplyComes() throws Exception {
        Connection[] c = pair(LIMITS.withReplyTimeout(Duration.ofMillis(200)));
        CountDownLatch release = new CountDownLatch(1);
        c[1].start(cmd -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return Response.of(RawPayload.of(cmd.header().command(), "late"));
        });
        c[0].start(ECHO);
        assertThatThrownBy(() -> c[0].call(RawPayload.empty(Command.DEVICE_RESET)))
                .isInstanceOf(ReplyTimeoutException.class)
                .hasMessageContaining("DEVICE_RESET");
        release.countDown();
        // The late reply is discarded; the next call gets its own reply.
        try (ReceivedReply r = c[0].call(RawPayload.of(Command.REGION_READ, "x"))) {
            assertThat(RawPayload.text(r.payload())).isEqualTo("late");
        }
    }
}
