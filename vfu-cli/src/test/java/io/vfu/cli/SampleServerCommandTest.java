package io.vfu.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.client.VfioUserClient;
import io.vfu.core.protocol.RegionIndex;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SampleServerCommandTest {
    @TempDir
    Path dir;

    /** Waits (with a file-system watch, no polling) until {@code path} exists. */
    private static boolean awaitCreated(WatchService watch, Path path, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (!Files.exists(path)) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            WatchKey key = watch.poll(left, TimeUnit.NANOSECONDS);
            if (key != null) {
                key.pollEvents();
                key.reset();
            }
        }
        return true;
    }

    @Test
    void serves_one_client_then_exits_0_and_removes_the_socket() throws Exception {
        Path sock = dir.resolve("sample.sock");
        try (WatchService watch = FileSystems.getDefault().newWatchService()) {
            dir.register(watch, StandardWatchEventKinds.ENTRY_CREATE);
            CompletableFuture<VfuCommandTest.Run> run = CompletableFuture.supplyAsync(
                    () -> VfuCommandTest.vfu("sample-server", "--bar1-size", "0x4000", sock.toString()));
            assertThat(awaitCreated(watch, sock, 30_000)).as("socket appears").isTrue();
            try (VfioUserClient client = VfioUserClient.connect(sock)) {
                ByteBuffer cfg = ByteBuffer.wrap(client.read(RegionIndex.CONFIG, 0, 4)).order(ByteOrder.LITTLE_ENDIAN);
                assertThat(cfg.getInt(0)).isEqualTo(0xbeefdead);
                assertThat(client.serverCapabilities().maxMsgFdsOrDefault()).isEqualTo(8);
                try (var bar1 = client.regionInfo(1)) {
                    assertThat(bar1.size()).isEqualTo(0x4000);
                }
            }
            VfuCommandTest.Run r = run.get(30, TimeUnit.SECONDS);
            assertThat(r.exit()).as(r.err()).isZero();
            assertThat(Files.exists(sock)).isFalse();
        }
    }

    @Test
    void bad_bar1_size_is_a_usage_error() {
        VfuCommandTest.Run r = VfuCommandTest.vfu("sample-server", "--bar1-size", "0x2800", dir.resolve("x").toString());
        assertThat(r.exit()).isEqualTo(VfuCommand.EXIT_USAGE);
        assertThat(r.err()).contains("--bar1-size");
        assertThat(VfuCommandTest.vfu("sample-server").exit()).isEqualTo(VfuCommand.EXIT_USAGE);
    }
}
