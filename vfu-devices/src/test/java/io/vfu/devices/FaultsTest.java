package io.vfu.devices;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.client.VfioUserClient;
import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.PciDevice;
import io.vfu.server.VfioUserServer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FaultsTest {
    @TempDir
    Path dir;

    @Test
    void no_fault_serves_the_device_unchanged() {
        PciDevice device = new DemoDevice().build();
        assertThat(Faults.apply(device, null)).isSameAs(device);
        assertThat(Faults.apply(device, " ")).isSameAs(device);
    }

    @Test
    void unknown_fault_is_rejected() {
        assertThatThrownBy(() -> Faults.apply(new DemoDevice().build(), "bar-wrte"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bar-read");
    }

    @Test
    void bar_read_fails_trapped_reads_with_eio_and_keeps_writes_config_and_memory() throws Exception {
        PciDevice faulty = Faults.apply(new DemoDevice().build(), "bar-read");
        try (VfioUserServer server = VfioUserServer.start(faulty, dir.resolve("f.sock"));
             VfioUserClient client = VfioUserClient.connect(server.socketPath())) {
            assertThatThrownBy(() -> client.read(0, DemoDevice.REG_ID, 4)).isInstanceOf(VfioUserException.class)
                    .extracting(e -> ((VfioUserException) e).errno()).isEqualTo(Errno.EIO);
            client.write(0, DemoDevice.REG_SCRATCH0, new byte[] {1, 2, 3, 4}); // writes still reach the device
            byte[] ids = client.read(RegionIndex.CONFIG, 0, 4);
            assertThat(ByteBuffer.wrap(ids).order(ByteOrder.LITTLE_ENDIAN).getInt())
                    .isEqualTo(DemoDevice.DEVICE_ID << 16 | DemoDevice.VENDOR_ID);
            client.write(2, 0x10, new byte[] {7, 7, 7, 7});                   // memory BAR: not trapped
            assertThat(client.read(2, 0x10, 4)).containsExactly(7, 7, 7, 7);
        }
    }
}
