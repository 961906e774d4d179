package io.vfu.devices;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.client.RegionInfo;
import io.vfu.client.VfioUserClient;
import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.DeviceFeature;
import io.vfu.core.protocol.DeviceInfoReply;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.IrqInfoReply;
import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.VfioUserServer;
import java.io.ByteArrayInputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link GpioPciIdio16Device} against the facts of libvfio-user's samples/gpio-pci-idio-16.c (7e7a0a6). */
class GpioPciIdio16DeviceTest {
    @TempDir
    Path dir;

    private static Errno errno(Throwable e) {
        return ((VfioUserException) e).errno();
    }

    private static int in(VfioUserClient c, int offset) throws Exception {
        return c.read(2, offset, 1)[0] & 0xff;
    }

    private static void out(VfioUserClient c, int offset, int bits) throws Exception {
        c.write(2, offset, new byte[] {(byte) bits});
    }

    @Test
    void identity_regions_and_irqs_are_those_of_the_c_sample() throws Exception {
        try (VfioUserServer server = VfioUserServer.start(new GpioPciIdio16Device().build(), dir.resolve("g.sock"));
             VfioUserClient c = VfioUserClient.connect(server.socketPath())) {
            DeviceInfoReply info = c.deviceInfo();
            assertThat(info.numRegions()).isEqualTo(9);
            assertThat(info.numIrqs()).isEqualTo(5);

            // Type-0 header: 494f:0dc8, class 000000 rev 00, subsystem 0000:0000, I/O BAR2, pin INTA, 256 bytes.
            byte[] cfg = c.read(RegionIndex.CONFIG, 0, 64);
            assertThat(Arrays.copyOfRange(cfg, 0, 4)).containsExactly(0x4f, 0x49, 0xc8, 0x0d);
            assertThat(Arrays.copyOfRange(cfg, 8, 12)).containsExactly(0, 0, 0, 0); // revision, class
            assertThat(Arrays.copyOfRange(cfg, 0x2c, 0x30)).containsExactly(0, 0, 0, 0); // subsystem
            assertThat(cfg[0x0e]).isZero(); // header type 0
            assertThat(cfg[0x18] & 0x1).isEqualTo(1); // BAR2: I/O space
            assertThat(cfg[0x3d]).isEqualTo((byte) 1); // interrupt pin A
            assertThat(cfg[0x06] & 0x10).isZero(); // no capability list

            for (int i = 0; i < 9; i++) {
                try (RegionInfo r = c.regionInfo(i)) {
                    long expected = switch (i) {
                        case 2 -> 0x100;
                        case RegionIndex.CONFIG -> 0x100;
                        default -> 0;
                    };
                    assertThat(r.size()).as("region %d", i).isEqualTo(expected);
                    if (expected != 0) {
                        assertThat(r.readable()).isTrue();
                        assertThat(r.writable()).isTrue();
                        assertThat(r.mappable()).isFalse();
                    }
                }
            }
            long[] counts = {1, 0, 0, 1, 1};
            for (int i = 0; i < 5; i++) {
                IrqInfoReply irq = c.irqInfo(i);
                assertThat(irq.count()).as("irq %d", i).isEqualTo(counts[i]);
                assertThat(irq.flags() & IrqInfoReply.FLAG_EVENTFD).isNotZero();
            }
            assertThat(c.migrationFeatures()).isEqualTo(MigrationFeatures.STOP_COPY_PRE_COPY);
        }
    }

    @Test
    void pins_count_pulses_and_inputs_show_multiples_of_three() throws Exception {
        GpioPciIdio16Device device = new GpioPciIdio16Device();
        try (VfioUserServer server = VfioUserServer.start(device.build(), dir.resolve("p.sock"));
             VfioUserClient c = VfioUserClient.connect(server.socketPath())) {
            // every counter is 0, a multiple of 3
            assertThat(in(c, GpioPciIdio16Device.REG_IN_0_7)).isEqualTo(0xff);
            assertThat(in(c, GpioPciIdio16Device.REG_IN_8_15)).isEqualTo(0xff);

            out(c, GpioPciIdio16Device.REG_OUT_0_7, 0x01);   // pin 0: 1
            out(c, GpioPciIdio16Device.REG_OUT_8_15, 0x80);  // pin 15: 1
            assertThat(in(c, GpioPciIdio16Device.REG_IN_0_7)).isEqualTo(0xfe);
            assertThat(in(c, GpioPciIdio16Device.REG_IN_8_15)).isEqualTo(0x7f);

            // only the first byte of a write counts: 0x55 at byte 1 is ignored
            c.write(2, 0, new byte[] {0x03, 0x55});          // pins 0: 2, 1: 1
            out(c, GpioPciIdio16Device.REG_OUT_0_7, 0x03);   // pins 0: 3, 1: 2
            assertThat(in(c, GpioPciIdio16Device.REG_IN_0_7)).isEqualTo(0xfd);
            assertThat(device.pinCount(0)).isEqualTo(3);
            assertThat(device.pinCount(1)).isEqualTo(2);
            assertThat(device.pinCount(2)).isZero();
            assertThat(device.pinCount(15)).isEqualTo(1);

            // writes elsewhere change nothing (also not at 1 and 5, the input registers)
            out(c, 2, 0xff);
            out(c, GpioPciIdio16Device.REG_IN_0_7, 0xff);
            out(c, GpioPciIdio16Device.REG_IN_8_15, 0xff);
            c.write(2, 0xfc, new byte[] {-1, -1, -1, -1});
            assertThat(in(c, GpioPciIdio16Device.REG_IN_0_7)).isEqualTo(0xfd);
            assertThat(in(c, GpioPciIdio16Device.REG_IN_8_15)).isEqualTo(0x7f);

            // only the start offset of a read matters; bytes after the first are 0; other offsets read 0
            assertThat(c.read(2, 1, 4)).containsExactly(0xfd, 0, 0, 0);
            assertThat(c.read(2, 0, 8)).containsOnly(0);
            assertThat(c.read(2, 0x80, 16)).containsOnly(0);

            // outside the 256-byte BAR: refused by the library
            assertThatThrownBy(() -> c.read(2, 0xff, 2)).isInstanceOf(VfioUserException.class);
        }
    }

    @Test
    void counters_survive_reconnect_and_device_reset() throws Exception {
        GpioPciIdio16Device device = new GpioPciIdio16Device();
        try (VfioUserServer server = VfioUserServer.start(device.build(), dir.resolve("r.sock"))) {
            try (VfioUserClient c = VfioUserClient.connect(server.socketPath())) {
                out(c, GpioPciIdio16Device.REG_OUT_8_15, 0x02);
            }
            try (VfioUserClient c = VfioUserClient.connect(server.socketPath())) {
                c.reset();
                assertThat(in(c, GpioPciIdio16Device.REG_IN_8_15)).isEqualTo(0xfd);
            }
        }
        assertThat(device.pinCount(9)).isEqualTo(1);
    }

    private static byte[] counters(int... values) {
        ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : values) {
            b.putInt(v);
        }
        return b.array();
    }

    private static long read64(VfioUserClient c, byte[] into) throws Exception {
        MemorySegment dst = MemorySegment.ofArray(into);
        return c.readMigrationChunk(dst);
    }

    @Test
    void migration_stream_is_the_16_counters_once_while_dirty() throws Exception {
        byte[] snapshot = new byte[64];
        try (VfioUserServer server = VfioUserServer.start(new GpioPciIdio16Device().build(), dir.resolve("m.sock"));
             VfioUserClient c = VfioUserClient.connect(server.socketPath())) {
            out(c, GpioPciIdio16Device.REG_OUT_0_7, 0x03);
            out(c, GpioPciIdio16Device.REG_OUT_0_7, 0x01);
            out(c, GpioPciIdio16Device.REG_OUT_8_15, 0x80);
            c.setMigrationState(MigrationState.PRE_COPY);
            assertThat(read64(c, snapshot)).isEqualTo(64);
            // hand-written: pin0 = 2, pin1 = 1, pin15 = 1, as i32 little-endian
            byte[] expected = new byte[64];
            expected[0] = 2;
            expected[4] = 1;
            expected[60] = 1;
            assertThat(snapshot).containsExactly(expected);
            assertThat(read64(c, new byte[64])).isZero(); // clean now

            out(c, GpioPciIdio16Device.REG_OUT_0_7, 0x04);  // re-dirties
            assertThat(read64(c, snapshot)).isEqualTo(64);
            assertThat(snapshot[8]).isEqualTo((byte) 1);
            c.setMigrationState(MigrationState.STOP_COPY);
            assertThat(read64(c, new byte[64])).isZero(); // nothing changed since: the stream ends
        }
    }

    @Test
    void stop_copy_round_trip_restores_the_counters_in_another_device() throws Exception {
        byte[] stream = new byte[64];
        int[] values = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        try (VfioUserServer server = VfioUserServer.start(new GpioPciIdio16Device().build(), dir.resolve("s.sock"));
             VfioUserClient c = VfioUserClient.connect(server.socketPath())) {
            for (int pin = 0; pin < 16; pin++) {
                for (int k = 0; k <= pin; k++) {
                    out(c, pin < 8 ? 0 : 4, 1 << (pin % 8));
                }
            }
            c.setMigrationState(MigrationState.STOP_COPY);
            assertThat(read64(c, stream)).isEqualTo(64);
            assertThat(read64(c, new byte[64])).isZero();
        }
        assertThat(stream).containsExactly(counters(values));

        GpioPciIdio16Device destination = new GpioPciIdio16Device();
        try (VfioUserServer server = VfioUserServer.start(destination.build(), dir.resolve("d.sock"));
             VfioUserClient c = VfioUserClient.connect(server.socketPath())) {
            c.setMigrationState(MigrationState.RESUMING);
            assertThat(c.writeMigrationData(new ByteArrayInputStream(stream), 64)).isEqualTo(64);
            c.setMigrationState(MigrationState.RUNNING);
            // counters 1..16: multiples of 3 are pins 2, 5, 8, 11, 14
            assertThat(in(c, GpioPciIdio16Device.REG_IN_0_7)).isEqualTo(0b0010_0100);
            assertThat(in(c, GpioPciIdio16Device.REG_IN_8_15)).isEqualTo(0b0100_1001);
        }
        for (int pin = 0; pin < 16; pin++) {
            assertThat(destination.pinCount(pin)).isEqualTo(values[pin]);
        }
    }

    @Test
    void a_chunk_that_is_not_64_bytes_is_einval_and_the_device_goes_on() throws Exception {
        try (VfioUserServer server = VfioUserServer.start(new GpioPciIdio16Device().build(), dir.resolve("e.sock"));
             VfioUserClient c = VfioUserClient.connect(server.socketPath())) {
            c.setMigrationState(MigrationState.STOP_COPY);
            assertThatThrownBy(() -> c.readMigrationChunk(MemorySegment.ofArray(new byte[32])))
                    .isInstanceOf(VfioUserException.class).extracting(GpioPciIdio16DeviceTest::errno)
                    .isEqualTo(Errno.EINVAL);
            assertThatThrownBy(() -> c.readMigrationChunk(MemorySegment.ofArray(new byte[128])))
                    .isInstanceOf(VfioUserException.class).extracting(GpioPciIdio16DeviceTest::errno)
                    .isEqualTo(Errno.EINVAL);
            assertThat(read64(c, new byte[64])).isEqualTo(64); // still dirty: the failed reads took nothing

            c.setMigrationState(MigrationState.STOP);
            c.setMigrationState(MigrationState.RESUMING);
            assertThatThrownBy(() -> c.writeMigrationData(MemorySegment.ofArray(new byte[65])))
                    .isInstanceOf(VfioUserException.class).extracting(GpioPciIdio16DeviceTest::errno)
                    .isEqualTo(Errno.EINVAL);
            assertThatThrownBy(() -> c.writeMigrationData(MemorySegment.ofArray(new byte[128])))
                    .isInstanceOf(VfioUserException.class).extracting(GpioPciIdio16DeviceTest::errno)
                    .isEqualTo(Errno.EINVAL);
            c.writeMigrationData(MemorySegment.ofArray(counters(3, 1)));
            c.setMigrationState(MigrationState.RUNNING);
            assertThat(in(c, GpioPciIdio16Device.REG_IN_0_7)).isEqualTo(0xfd);
        }
    }

    @Test
    void each_new_save_starts_with_a_snapshot() throws Exception {
        try (VfioUserServer server = VfioUserServer.start(new GpioPciIdio16Device().build(), dir.resolve("a.sock"));
             VfioUserClient c = VfioUserClient.connect(server.socketPath())) {
            c.setMigrationState(MigrationState.PRE_COPY);
            assertThat(read64(c, new byte[64])).isEqualTo(64);
            c.setMigrationState(MigrationState.RUNNING); // aborted
            c.setMigrationState(MigrationState.STOP_COPY);
            assertThat(read64(c, new byte[64])).isEqualTo(64);
        }
    }

    @Test
    void without_migration_the_feature_is_absent() throws Exception {
        try (VfioUserServer server = VfioUserServer.start(new GpioPciIdio16Device(false).build(), dir.resolve("n.sock"));
             VfioUserClient c = VfioUserClient.connect(server.socketPath())) {
            assertThat(c.featureProbe(DeviceFeature.MIGRATION, DeviceFeature.GET)).isFalse();
            assertThat(c.regionInfo(2).size()).isEqualTo(0x100);
        }
    }

    @Test
    void registry_builds_it() {
        assertThat(Devices.find("gpio-pci-idio-16")).get()
                .satisfies(f -> assertThat(f.create().identity()).isEqualTo(GpioPciIdio16Device.IDENTITY));
        assertThat(GpioPciIdio16Device.IDENTITY.vendorId()).isEqualTo(0x494f);
        assertThat(GpioPciIdio16Device.IDENTITY.deviceId()).isEqualTo(0x0dc8);
        assertThat(ValueLayout.JAVA_INT.byteSize() * 16).isEqualTo(GpioPciIdio16Device.STATE_SIZE);
    }
}
