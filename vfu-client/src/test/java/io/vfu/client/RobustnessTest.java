package io.vfu.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.DeviceInfoReply;
import io.vfu.core.protocol.Header;
import io.vfu.core.protocol.RegionReadReply;
import io.vfu.core.protocol.RegionReadRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.testing.ChildJvm;
import io.vfu.core.testing.NoFdLeaks;
import io.vfu.core.transport.ConnectionClosedException;
import io.vfu.core.transport.ReplyTimeoutException;
import io.vfu.core.transport.Response;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

@ExtendWith(NoFdLeaks.class)
class RobustnessTest {
    @TempDir
    Path dir;

    private static ClientOptions quick() {
        return ClientOptions.builder().replyTimeout(Duration.ofMillis(300)).build();
    }

    @Test
    void aServerThatNeverAnswersTimesOutAndTheClientStaysUsable() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.DEVICE_RESET, (s, c) -> {
                return s.hang();
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, quick())) {
                long start = System.nanoTime();
                assertThatThrownBy(client::reset).isInstanceOf(ReplyTimeoutException.class)
                        .hasMessageContaining("no reply to DEVICE_RESET").hasMessageContaining("300 ms");
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
                assertThat(client.isConnected()).isTrue();
            }
        }
    }

    @Test
    void aReplyWithTheWrongMsgIdFailsTheCallWithEproto() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.DEVICE_GET_INFO, (s, c) -> {
                s.conn.sendReply((c.header().msgId() + 1) & 0xFFFF, c.header().cmd(), new DeviceInfoReply(0, 1, 1));
                return s.hang();
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, quick())) {
                assertThatThrownBy(client::deviceInfo)
                        .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EPROTO))
                        .hasMessageContaining("DEVICE_GET_INFO");
            }
        }
    }

    @Test
    void anOversizedReplyFailsWithE2bigAndTheConnectionStaysInSync() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.REGION_READ, (s, c) -> {
                RegionReadRequest r = RegionReadRequest.decode(c.payload());
                // Twice the data asked for: does not fit the client's reply buffer.
                return Response.of(new RegionReadReply(r.offset(), r.region(), MemorySegment.ofArray(new byte[(int) r.count() * 2])));
            });
            server.on(Command.DEVICE_GET_INFO, (s, c) -> Response.of(new DeviceInfoReply(0, 9, 5)));
            try (VfioUserClient client = ClientTestSupport.connect(dir, quick())) {
                assertThatThrownBy(() -> client.read(0, 0, 64))
                        .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.E2BIG))
                        .hasMessageContaining("exceeds");
                assertThat(client.deviceInfo().numRegions()).isEqualTo(9);
            }
        }
    }

    @Test
    void garbageFromTheServerFailsThePendingCall() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.DEVICE_GET_INFO, (s, c) -> {
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment bad = a.allocate(Header.SIZE);
                    Header.encode(bad, c.header().msgId(), c.header().cmd(), 8, Header.TYPE_REPLY, 0); // msg_size 8 < 16
                    s.conn.socket().send(new int[0], bad);
                }
                return s.hang();
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                assertThatThrownBy(client::deviceInfo).isInstanceOf(ConnectionClosedException.class)
                        .hasMessageContaining("framing lost");
                assertThat(client.isConnected()).isFalse();
                assertThatThrownBy(client::deviceInfo).isInstanceOf(ConnectionClosedException.class);
            }
        }
    }

    @Test
    void aHugeReplyBeyondTheDrainLimitClosesTheConnection() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.DEVICE_GET_INFO, (s, c) -> {
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment bad = a.allocate(Header.SIZE);
                    Header.encode(bad, c.header().msgId(), c.header().cmd(), 0xFFFF_FFF0L, Header.TYPE_REPLY, 0);
                    s.conn.socket().send(new int[0], bad);
                }
                return s.hang();
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                assertThatThrownBy(client::deviceInfo).isInstanceOfAny(ConnectionClosedException.class, VfioUserException.class)
                        .hasMessageContaining("drain limit");
            }
        }
    }

    @Test
    void aServerKilledMidRequestFailsTheCallPromptly() throws Exception {
        Path socket = ClientTestSupport.socket(dir);
        try (ChildJvm child = ChildJvm.start(HangingServerMain.class, socket.toString())) {
            child.awaitLine("READY"::equals, Duration.ofSeconds(60));
            // A long timeout: the failure must come from the disconnect, not from the timer.
            try (VfioUserClient client = VfioUserClient.connect(socket,
                    ClientOptions.builder().replyTimeout(Duration.ofSeconds(60)).build())) {
                CompletableFuture<byte[]> read = CompletableFuture.supplyAsync(() -> {
                    try {
                        return client.read(0, 0, 8);
                    } catch (Exception e) {
                        throw new java.util.concurrent.CompletionException(e);
                    }
                });
                child.awaitLine("GOT REGION_READ"::equals, Duration.ofSeconds(30));
                long start = System.nanoTime();
                child.process().destroyForcibly();
                assertThatThrownBy(() -> read.get(20, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                        .cause().isInstanceOf(ConnectionClosedException.class)
                        .hasMessageContaining("closed the connection");
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(20));
                assertThat(client.isConnected()).isFalse();
            }
        }
    }
}
