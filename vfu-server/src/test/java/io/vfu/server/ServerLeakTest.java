package io.vfu.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.core.linux.EventFd;
import io.vfu.core.linux.MemFd;
import io.vfu.core.protocol.DmaMapRequest;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.SetIrqsRequest;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** No fd, mapping or thread leak after 1 000 connect/map/disconnect cycles. */
class ServerLeakTest {
    @TempDir
    Path dir;

    @Test
    void thousandClientsLeaveNothingBehind() throws Exception {
        try (ServerTestSupport support = new ServerTestSupport(dir);
             MemFd memfd = MemFd.create("guest", 0x10000);
             EventFd irq = EventFd.create()) {
            ServerTestSupport.Served served = support.serve("dev", MigrationFeatures.STOP_COPY);
            cycle(served, memfd, irq, 0);   // warm up lazily created state (loggers, buffers)
            int fds = ServerTestSupport.openFds();
            int threads = ServerTestSupport.liveThreads();
            long mappings = mappingCount();
            for (int i = 1; i <= 1000; i++) {
                cycle(served, memfd, irq, i);
            }
            assertThat(ServerTestSupport.openFds()).as("open fds").isEqualTo(fds);
            assertThat(ServerTestSupport.liveThreads()).as("live threads").isLessThanOrEqualTo(threads);
            assertThat(mappingCount()).as("mappings").isLessThanOrEqualTo(mappings);
            assertThat(served.server().sessionsServed()).isEqualTo(1001);
        }
    }

    private static void cycle(ServerTestSupport.Served served, MemFd memfd, EventFd irq, int i) throws Exception {
        try (TestClient c = TestClient.connect(served.server().socketPath(), i % 2 == 0)) {
            c.call(new DmaMapRequest(DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE, 0, 0x100000, 0x10000), memfd.fd());
            c.call(new SetIrqsRequest(SetIrqsRequest.DATA_EVENTFD | SetIrqsRequest.ACTION_TRIGGER, IrqIndex.MSIX, 0, 1), irq.fd());
            c.writeU64(0, 0x200, 0x100000 + (i % 16) * 0x1000); // a device DMA write through the mapping
        }
        // The server notices the disconnect asynchronously: wait until it is ready for the next client.
        awaitIdle(served.server());
    }

    private static void awaitIdle(VfioUserServer server) throws InterruptedException {
        assertThat(server.awaitIdle(java.time.Duration.ofSeconds(10))).as("server idle").isTrue();
    }

    private static long mappingCount() throws java.io.IOException {
        try (var lines = java.nio.file.Files.lines(Path.of("/proc/self/maps"))) {
            return lines.filter(l -> l.contains("memfd:")).count();
        }
    }
}
