package io.vfu.core.transport;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.FdList;
import io.vfu.core.linux.Fds;
import io.vfu.core.linux.MemFd;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.Header;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * A server-side {@link Connection} fed any mix of well-formed commands, posted commands, bad message types,
 * stray replies, oversized messages, messages with too many fds and commands whose data the handler places
 * ({@link CommandHandler#place}), in sends that join and split messages at random: every command reaches the
 * handler whole with its own fds, every message gets the answer the protocol gives it (reply, EINVAL, E2BIG,
 * a refused placement's errno or nothing), in order, and no fd is left open.
 */
class ConnectionFramingProperties {
    private static final int MAX_MESSAGE = 8192;
    private static final TransportLimits LIMITS = TransportLimits.DEFAULT.withMaxMessageSize(MAX_MESSAGE)
            .withDrainLimit(64 * 1024).withMaxFds(2).withReplyTimeout(Duration.ofSeconds(10));

    /** PLACED: a command whose data the handler receives in place, leaves to the buffer, or refuses (by its id). */
    enum Kind { COMMAND, POSTED, BAD_TYPE, STRAY_REPLY, OVERSIZED, TOO_MANY_FDS, PLACED }

    /** PLACED commands: the fixed part before the data (its first 4 bytes carry the msg_id). */
    private static final int FIXED = 8;

    record Msg(Kind kind, int bodySize, int fds, boolean joinNext, int splitAt) {
    }

    @Provide
    Arbitrary<List<Msg>> messages() {
        Arbitrary<Msg> msg = Combinators.combine(
                Arbitraries.of(Kind.class),
                Arbitraries.integers().between(0, 6000),
                Arbitraries.integers().between(0, 2),
                Arbitraries.of(true, false),
                Arbitraries.integers().between(0, 7000)).as(Msg::new);
        return msg.list().ofMinSize(1).ofMaxSize(30);
    }

    @Property(tries = 60)
    void everyMessageGetsTheProtocolsAnswerInOrder(@ForAll("messages") List<Msg> messages) throws Exception {
        int fdsBefore = Fds.openFdCount();
        UnixSocket[] s = UnixSocket.pair();
        List<String> handled = Collections.synchronizedList(new ArrayList<>());
        try (Arena arena = Arena.ofShared(); MemFd memfd = MemFd.create("frame", 4096);
             Connection server = new Connection(s[1], LIMITS, "server")) {
            s[0].receiveTimeout(Duration.ofSeconds(10));
            server.start(new CommandHandler() {
                @Override
                public Response handle(IncomingCommand command) {
                    throw new AssertionError("the raw handle serves everything");
                }

                @Override
                public Response handle(int msgId, int cmd, long msgSize, int flags, MemorySegment payload, FdList fds) {
                    String seen = msgId + ":" + payload.byteSize() + "/" + sum(payload) + "/" + fds.size();
                    handled.add(seen);
                    return Response.of(RawPayload.of(Command.REGION_READ, seen));
                }

                @Override
                public int placedDataOffset(int cmd) {
                    return cmd == Command.DMA_WRITE.code() ? FIXED : 0;
                }

                @Override
                public Placement place(int cmd, MemorySegment fixed, long dataSize) {
                    int id = fixed.get(ValueLayout.JAVA_INT_UNALIGNED, 0);
                    long fixedSum = sum(fixed); // fixed is valid during this call only
                    if (id % 3 == 2) {
                        throw new io.vfu.core.protocol.VfioUserException(Errno.EFAULT, "refused");
                    }
                    if (id % 3 == 1) {
                        return null;
                    }
                    MemorySegment dst = Arena.ofAuto().allocate(dataSize);
                    return new TestPlacement(dst, () -> {
                        String seen = id + ":" + (FIXED + dataSize) + "/" + (fixedSum + sum(dst)) + "/0";
                        handled.add(seen);
                        return Response.of(RawPayload.of(Command.REGION_READ, seen));
                    }, () -> handled.add(id + ": abandoned"));
                }
            });
            List<String> expectedHandled = new ArrayList<>();
            List<String> expectedAnswers = new ArrayList<>();
            List<MemorySegment> encoded = new ArrayList<>();
            for (int i = 0; i < messages.size(); i++) {
                Msg m = messages.get(i);
                int id = i + 1;
                int body = m.kind() == Kind.OVERSIZED ? MAX_MESSAGE + m.bodySize() : m.bodySize();
                int flags = switch (m.kind()) {
                    case POSTED -> Header.TYPE_COMMAND | Header.FLAG_NO_REPLY;
                    case BAD_TYPE -> 5;
                    case STRAY_REPLY -> Header.TYPE_REPLY;
                    default -> Header.TYPE_COMMAND;
                };
                MemorySegment msg = arena.allocate(Header.SIZE + body);
                boolean placed = m.kind() == Kind.PLACED;
                Header.encode(msg, id, (placed ? Command.DMA_WRITE : Command.REGION_READ).code(), Header.SIZE + body,
                        flags, 0);
                for (int k = 0; k < body; k++) {
                    msg.set(ValueLayout.JAVA_BYTE, Header.SIZE + k, (byte) (k * 13 + id));
                }
                if (placed && body >= 4) {
                    msg.set(ValueLayout.JAVA_INT_UNALIGNED, Header.SIZE, id);
                }
                long sum = sum(msg.asSlice(Header.SIZE));
                encoded.add(msg);
                int fds = fdsOf(m);
                String seen = id + ":" + body + "/" + sum + "/" + fds;
                Kind kind = placed && fds == 0 && body > FIXED && id % 3 == 2 ? Kind.OVERSIZED : m.kind();
                if (kind == Kind.OVERSIZED && placed) {
                    expectedAnswers.add(id + ":errno " + Errno.EFAULT.value()); // refused placement
                    continue;
                }
                switch (kind) {
                    case COMMAND, PLACED -> {
                        expectedHandled.add(seen);
                        expectedAnswers.add(id + ":" + seen);
                    }
                    case POSTED -> expectedHandled.add(seen);
                    case BAD_TYPE, TOO_MANY_FDS -> expectedAnswers.add(id + ":errno " + Errno.EINVAL.value());
                    case OVERSIZED -> expectedAnswers.add(id + ":errno " + Errno.E2BIG.value());
                    case STRAY_REPLY -> { } // no call is waiting for it: dropped
                }
            }
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    send(s[0], messages, encoded, memfd.fd());
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            List<String> answers = new ArrayList<>();
            try (FdList fds = new FdList()) {
                MemorySegment h = arena.allocate(Header.SIZE);
                while (answers.size() < expectedAnswers.size()) {
                    s[0].receiveFully(h, fds);
                    Header header = Header.decode(h);
                    if (header.isError()) {
                        answers.add(header.msgId() + ":errno " + header.error());
                    } else {
                        MemorySegment b = arena.allocate(Math.max(1, header.payloadSize())).asSlice(0, header.payloadSize());
                        s[0].receiveFully(b, fds);
                        answers.add(header.msgId() + ":" + RawPayload.text(b));
                    }
                }
                assertThat(fds.isEmpty()).isTrue();
            }
            writer.get(10, TimeUnit.SECONDS);
            // A last command: its answer means every command before it was handled (posted ones give no sign).
            int last = messages.size() + 1;
            RawWire wire = new RawWire(s[0], arena);
            wire.send(last, Command.REGION_READ.code(), Header.TYPE_COMMAND, "");
            assertThat(wire.readReplyText(last)).isEqualTo(last + ":0/0/0");
            assertThat(answers).isEqualTo(expectedAnswers);
            assertThat(handled.subList(0, handled.size() - 1)).isEqualTo(expectedHandled);
        } finally {
            s[0].close();
        }
        assertThat(Fds.openFdCount()).as("open fds").isEqualTo(fdsBefore);
    }

    private static long sum(MemorySegment bytes) {
        long sum = 0;
        for (long i = 0; i < bytes.byteSize(); i++) {
            sum += bytes.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
        }
        return sum;
    }

    private static int fdsOf(Msg m) {
        return switch (m.kind()) {
            case COMMAND, POSTED, PLACED -> m.fds();
            case TOO_MANY_FDS -> 3;
            default -> 0;
        };
    }

    /**
     * Sends the messages: a message with fds starts its own sendmsg, which carries them; others may be joined
     * to the previous send or split in two at a random point.
     */
    private static void send(UnixSocket socket, List<Msg> messages, List<MemorySegment> encoded, int fd)
            throws IOException {
        List<MemorySegment> pending = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            Msg m = messages.get(i);
            MemorySegment msg = encoded.get(i);
            int fds = fdsOf(m);
            if (fds > 0 || !m.joinNext()) {
                flush(socket, pending, null);
            }
            long split = m.splitAt() % msg.byteSize();
            int[] fdArray = fds == 0 ? null : java.util.stream.IntStream.generate(() -> fd).limit(fds).toArray();
            if (split > 0 && m.splitAt() % 3 == 0) {
                pending.add(msg.asSlice(0, split));
                flush(socket, pending, fdArray);
                pending.add(msg.asSlice(split));
            } else if (fds > 0) {
                pending.add(msg);
                flush(socket, pending, fdArray);
            } else {
                pending.add(msg);
            }
        }
        flush(socket, pending, null);
    }

    private static void flush(UnixSocket socket, List<MemorySegment> pending, int[] fds) throws IOException {
        if (!pending.isEmpty()) {
            socket.send(fds, pending.toArray(MemorySegment[]::new));
            pending.clear();
        }
    }
}
