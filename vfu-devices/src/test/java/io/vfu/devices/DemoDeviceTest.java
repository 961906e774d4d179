package io.vfu.devices;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.client.GuestMemory;
import io.vfu.client.VfioUserClient;
import io.vfu.core.linux.Errno;
import io.vfu.core.linux.EventFd;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.VfioUserServer;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DemoDeviceTest {
    @TempDir
    Path dir;

    private static byte[] u64(long v) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
    }

    private static long u64(byte[] b) {
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    @Test
    void registers_doorbell_dma_and_msix() throws Exception {
        try (VfioUserServer server = VfioUserServer.start(new DemoDevice().build(), dir.resolve("d.sock"));
             VfioUserClient client = VfioUserClient.connect(server.socketPath());
             EventFd vector3 = EventFd.create()) {
            assertThat(u64(client.read(0, DemoDevice.REG_ID, 8))).isEqualTo(0x5646_0001L);
            client.write(0, DemoDevice.REG_SCRATCH0 + 8, u64(0x1122_3344_5566_7788L));
            client.write(0, DemoDevice.REG_SCRATCH0 + 12, new byte[] {(byte) 0xaa, 0, 0, 0});
            assertThat(u64(client.read(0, DemoDevice.REG_SCRATCH0 + 8, 8))).isEqualTo(0x0000_00aa_5566_7788L);
            assertThatThrownBy(() -> client.read(0, 2, 4)).isInstanceOf(VfioUserException.class)
                    .extracting(e -> ((VfioUserException) e).errno()).isEqualTo(Errno.EINVAL);

            GuestMemory.Region ram = client.memory().allocate(0x10_0000, 0x1000, true, true);
            client.dmaMap(ram);
            // MSI-X: enable in config space (control at 0x48 + 2), unmask table entry 3 (vector control at 3*16+12).
            client.write(RegionIndex.CONFIG, 0x4a, new byte[] {0, (byte) 0x80});
            client.write(4, 3 * 16 + 12, new byte[] {0, 0, 0, 0});
            client.setIrqEventFds(IrqIndex.MSIX, 3, List.of(vector3));

            client.write(0, DemoDevice.REG_DMA_ADDR, u64(0x10_0040));
            client.write(0, DemoDevice.REG_VECTOR, new byte[] {3, 0, 0, 0});
            client.write(0, DemoDevice.REG_DOORBELL, new byte[] {1, 0, 0, 0});
            assertThat(vector3.await(5000)).isTrue();
            assertThat(ram.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x40)).isEqualTo(1L);
            assertThat(u64(client.read(0, DemoDevice.REG_COUNTER, 8))).isEqualTo(1);
            assertThat(u64(client.read(0, DemoDevice.REG_STATUS, 8))).isZero();

            // DMA to an unmapped address fails in the device: STATUS holds EFAULT, the counter still moves.
            client.write(0, DemoDevice.REG_DMA_ADDR, u64(0x90_0000));
            client.write(0, DemoDevice.REG_DOORBELL, new byte[] {1, 0, 0, 0});
            assertThat(u64(client.read(0, DemoDevice.REG_COUNTER, 8))).isEqualTo(2);
            assertThat(u64(client.read(0, DemoDevice.REG_STATUS, 8))).isEqualTo(Errno.EFAULT.value());
        }
    }

    @Test
    void migration_with_pre_copy_restores_registers_and_bar2() throws Exception {
        DemoDevice source = new DemoDevice();
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        try (VfioUserServer server = VfioUserServer.start(source.build(), dir.resolve("src.sock"));
             VfioUserClient client = VfioUserClient.connect(server.socketPath())) {
            client.write(0, DemoDevice.REG_SCRATCH0, u64(42));
            client.write(2, 0xff000, u64(0xfeed_face_cafe_beefL));
            client.setMigrationState(MigrationState.PRE_COPY);
            // Read only part of the pre-copy image: the final image must still arrive after the rest of it.
            MemorySegment part = MemorySegment.ofArray(new byte[4096]);
            long n = client.readMigrationChunk(part);
            stream.write(part.toArray(ValueLayout.JAVA_BYTE), 0, (int) n);
            client.write(0, DemoDevice.REG_SCRATCH0 + 24, u64(7)); // changes while pre-copying
            client.setMigrationState(MigrationState.STOP_COPY);
            client.readMigrationData(stream, 1 << 16);
        }
        assertThat(stream.size()).isEqualTo(2 * DemoDevice.IMAGE_SIZE);

        try (VfioUserServer server = VfioUserServer.start(new DemoDevice().build(), dir.resolve("dst.sock"));
             VfioUserClient client = VfioUserClient.connect(server.socketPath())) {
            client.setMigrationState(MigrationState.RESUMING);
            client.writeMigrationData(MemorySegment.ofArray(stream.toByteArray()));
            client.setMigrationState(MigrationState.RUNNING);
            assertThat(u64(client.read(0, DemoDevice.REG_SCRATCH0, 8))).isEqualTo(42);
            assertThat(u64(client.read(0, DemoDevice.REG_SCRATCH0 + 24, 8))).isEqualTo(7);
            assertThat(u64(client.read(2, 0xff000, 8))).isEqualTo(0xfeed_face_cafe_beefL);
        }
    }

    @Test
    void bad_stream_is_refused() throws Exception {
        try (VfioUserServer server = VfioUserServer.start(new DemoDevice().build(), dir.resolve("bad.sock"));
             VfioUserClient client = VfioUserClient.connect(server.socketPath())) {
            client.setMigrationState(MigrationState.RESUMING);
            byte[] image = new byte[(int) DemoDevice.IMAGE_SIZE];
            client.writeMigrationData(MemorySegment.ofArray(image)); // right length, no magic
            assertThatThrownBy(() -> client.setMigrationState(MigrationState.STOP))
                    .isInstanceOf(VfioUserException.class);
            assertThat(client.migrationState()).isEqualTo(MigrationState.RESUMING);
        }
    }

    @Test
    void registers_outlive_a_client_and_device_reset_clears_them() throws Exception {
        try (VfioUserServer server = VfioUserServer.start(new DemoDevice().build(), dir.resolve("keep.sock"))) {
            try (VfioUserClient client = VfioUserClient.connect(server.socketPath())) {
                client.write(0, DemoDevice.REG_SCRATCH0 + 16, u64(99));
            }
            try (VfioUserClient client = VfioUserClient.connect(server.socketPath())) {
                assertThat(u64(client.read(0, DemoDevice.REG_SCRATCH0 + 16, 8))).isEqualTo(99);
                client.reset();
                assertThat(u64(client.read(0, DemoDevice.REG_SCRATCH0 + 16, 8))).isZero();
            }
        }
    }

    @Test
    void registry_has_demo() {
        assertThat(Devices.find("demo")).isPresent();
        assertThat(Devices.list()).extracting(DeviceFactory::name).contains("demo");
        assertThatThrownBy(() -> Devices.register(DeviceFactory.of("demo", "again", () -> new DemoDevice().build())))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Devices.register(DeviceFactory.of("Bad Name", "x", () -> new DemoDevice().build())))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
