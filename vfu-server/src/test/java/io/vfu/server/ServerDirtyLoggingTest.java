package io.vfu.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.MemFd;
import io.vfu.core.protocol.DeviceFeature;
import io.vfu.core.protocol.DeviceFeatureReply;
import io.vfu.core.protocol.DeviceFeatureRequest;
import io.vfu.core.protocol.DirtyBitmap;
import io.vfu.core.protocol.DmaMapRequest;
import io.vfu.core.protocol.FeaturePayload;
import io.vfu.core.protocol.MigrationFeatures;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Device writes into fd-backed and fd-less client memory are reported exactly, once. */
class ServerDirtyLoggingTest {
    static final long FD_BASE = 0x1000_0000L;
    static final long MSG_BASE = 0x2000_0000L;
    static final long SIZE = 0x10_0000L; // 1 MiB each

    @TempDir
    Path dir;

    @Test
    void reportsExactlyTheWrittenPagesAndClearsThem() throws Exception {
        try (ServerTestSupport support = new ServerTestSupport(dir);
             MemFd memfd = MemFd.create("guest", SIZE)) {
            ServerTestSupport.Served served = support.serve("dev", MigrationFeatures.STOP_COPY);
            TestClient client = support.connect(served, true);
            client.guest.put(MSG_BASE, Arena.ofAuto().allocate(SIZE));
            int rw = DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE;
            client.call(new DmaMapRequest(rw, 0, FD_BASE, SIZE), memfd.fd());
            client.call(new DmaMapRequest(rw, 0, MSG_BASE, SIZE));

            client.call(DeviceFeatureRequest.set(DeviceFeature.DMA_LOGGING_START, new FeaturePayload.DmaLoggingControl(
                    4096, 0, List.of(new FeaturePayload.DmaLoggingControl.Range(FD_BASE, SIZE),
                            new FeaturePayload.DmaLoggingControl.Range(MSG_BASE, SIZE)))));

            // Round 1, 4 KiB report pages. The doorbell writes 16 bytes; 0x1ff8 spans pages 1 and 2.
            doorbell(client, FD_BASE + 0x0000, FD_BASE + 0x1ff8, FD_BASE + 0x5000);
            doorbell(client, MSG_BASE + 0x3000, MSG_BASE + 0xfff8);
            assertThat(dirtyPages(client, FD_BASE, 0x8000, 4096)).containsExactly(0L, 1L, 2L, 5L);
            assertThat(dirtyPages(client, MSG_BASE, 0x20000, 4096)).containsExactly(3L, 15L, 16L);
            // read-and-clear: nothing is left
            assertThat(dirtyPages(client, FD_BASE, 0x8000, 4096)).isEmpty();
            assertThat(dirtyPages(client, MSG_BASE, 0x20000, 4096)).isEmpty();

            // Round 2, 64 KiB report pages over a sub-range that starts inside the region.
            doorbell(client, FD_BASE + 0x21000, FD_BASE + 0x4fff8);
            doorbell(client, MSG_BASE + 0x90000);
            assertThat(dirtyPages(client, FD_BASE + 0x20000, 0x40000, 0x10000)).containsExactly(0L, 2L, 3L);
            assertThat(dirtyPages(client, MSG_BASE, SIZE, 0x10000)).containsExactly(9L);
            assertThat(dirtyPages(client, FD_BASE, SIZE, 0x10000)).isEmpty();

            // A write outside the reported sub-range stays for a later report.
            doorbell(client, FD_BASE + 0x80000);
            assertThat(dirtyPages(client, FD_BASE, 0x10000, 4096)).isEmpty();
            assertThat(dirtyPages(client, FD_BASE + 0x80000, 0x1000, 4096)).containsExactly(0L);

            client.call(DeviceFeatureRequest.set(DeviceFeature.DMA_LOGGING_STOP, new FeaturePayload.Empty()));
            client.expectErrno(Errno.EINVAL, DeviceFeatureRequest.report(
                    new FeaturePayload.DmaLoggingReportQuery(FD_BASE, 0x1000, 4096)));
        }
    }

    private static void doorbell(TestClient client, long... iovas) throws Exception {
        for (long iova : iovas) {
            client.writeU64(0, 0x200, iova);
        }
    }

    private static List<Long> dirtyPages(TestClient client, long iova, long length, long pageSize) throws Exception {
        DeviceFeatureReply reply = client.call(DeviceFeatureRequest.report(
                new FeaturePayload.DmaLoggingReportQuery(iova, length, pageSize)));
        MemorySegment bitmap = ((FeaturePayload.DmaLoggingReport) reply.featureData()).bitmap();
        assertThat(bitmap.byteSize()).isEqualTo(DirtyBitmap.byteSize(length, pageSize));
        List<Long> pages = new ArrayList<>();
        for (long p = 0; p < bitmap.byteSize() * 8; p++) {
            if (DirtyBitmap.test(bitmap, p)) {
                pages.add(p);
            }
        }
        return pages;
    }
}
