package io.vfu.devices;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.client.RegionInfo;
import io.vfu.client.VfioUserClient;
import io.vfu.core.protocol.DeviceFeature;
import io.vfu.core.protocol.DeviceInfoReply;
import io.vfu.core.protocol.IrqInfoReply;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.server.VfioUserServer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link NullDevice} against the facts of libvfio-user's samples/null.c (7e7a0a6). */
class NullDeviceTest {
    @TempDir
    Path dir;

    @Test
    void config_space_only_no_pin_no_migration() throws Exception {
        try (VfioUserServer server = VfioUserServer.start(new NullDevice().build(), dir.resolve("null.sock"));
             VfioUserClient c = VfioUserClient.connect(server.socketPath())) {
            DeviceInfoReply info = c.deviceInfo();
            assertThat(info.numRegions()).isEqualTo(9);
            assertThat(info.numIrqs()).isEqualTo(5);
            for (int i = 0; i < 9; i++) {
                try (RegionInfo r = c.regionInfo(i)) {
                    assertThat(r.size()).as("region %d", i).isEqualTo(i == RegionIndex.CONFIG ? 256 : 0);
                }
            }
            // the whole 256-byte header reads 0: ids, class, BARs, no capabilities, no interrupt pin
            assertThat(c.read(RegionIndex.CONFIG, 0, 256)).containsOnly(0);
            long[] counts = {0, 0, 0, 1, 1};
            for (int i = 0; i < 5; i++) {
                IrqInfoReply irq = c.irqInfo(i);
                assertThat(irq.count()).as("irq %d", i).isEqualTo(counts[i]);
            }
            assertThat(c.featureProbe(DeviceFeature.MIGRATION, DeviceFeature.GET)).isFalse();
            assertThat(c.featureProbe(DeviceFeature.MIG_DEVICE_STATE, DeviceFeature.GET)).isFalse();
        }
    }

    @Test
    void registry_builds_it() {
        assertThat(Devices.find("null")).get()
                .satisfies(f -> assertThat(f.create().identity()).isEqualTo(NullDevice.IDENTITY));
    }
}
