package io.vfu.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.DmaMapRequest;
import io.vfu.core.protocol.DmaUnmapRequest;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The DMA table at 100 000 mappings, through the socket. */
class ServerScaleTest {
    static final int MAPPINGS = 100_000;

    @TempDir
    Path dir;

    @Test
    void hundredThousandMappings() throws Exception {
        try (ServerTestSupport support = new ServerTestSupport(dir)) {
            TestDevice device = support.add(new TestDevice(null));
            VfioUserServer server = support.add(VfioUserServer.builder(device.build(), dir.resolve("scale.sock"))
                    .maxDmaMappings(MAPPINGS).replyTimeout(Duration.ofSeconds(30)).start());
            TestClient client = support.add(TestClient.connect(server.socketPath(), true));
            assertThat(client.version.capabilitiesOrNone().maxDmaMapsOrDefault()).isEqualTo(MAPPINGS);
            // 4 KiB fd-less pages, every other page, posted (No_reply): a reply to a later command implies
            // all earlier ones were processed (spec §2).
            for (int i = 0; i < MAPPINGS; i++) {
                client.connection.post(new DmaMapRequest(DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE, 0,
                        0x1_0000_0000L + 0x2000L * i, 0x1000));
            }
            assertThat(client.commandWorks()).isTrue();
            // one more is refused; the table is full
            client.expectErrno(Errno.ENOSPC, new DmaMapRequest(DmaMapRequest.FLAG_READ, 0, 0x10_0000, 0x1000));
            // the device reaches the last mapping (by message: no fd)
            long last = 0x1_0000_0000L + 0x2000L * (MAPPINGS - 1);
            MemorySegment page = Arena.ofAuto().allocate(0x1000);
            client.guest.put(last, page);
            client.writeU64(0, 0x200, last + 0x10);
            assertThat(page.get(ValueLayout.JAVA_BYTE, 0x10)).isEqualTo((byte) 0xA5);
            // a gap between mappings is not mapped
            client.guest.put(last - 0x1000, Arena.ofAuto().allocate(0x1000));
            client.expectErrno(Errno.EFAULT, new io.vfu.core.protocol.RegionWriteRequest(0x200, 0,
                    MemorySegment.ofArray(new long[] {last - 0x1000})));
            client.call(DmaUnmapRequest.all());
        }
    }
}
