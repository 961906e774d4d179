package io.vfu.devices;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.client.ClientOptions;
import io.vfu.client.GuestMemory;
import io.vfu.client.MappedRegion;
import io.vfu.client.RegionInfo;
import io.vfu.client.VfioUserClient;
import io.vfu.core.linux.Errno;
import io.vfu.core.linux.EventFd;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.RegionCapability;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.VfioUserServer;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.assertj.core.api.ThrowableAssert;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SampleServerDeviceTest {
    private static final int INTX = IrqIndex.INTX;

    @TempDir
    Path dir;

    private final List<AutoCloseable> toClose = new ArrayList<>();
    private final List<String> console = Collections.synchronizedList(new ArrayList<>());

    @AfterEach
    void closeAll() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    private SampleServerDevice device(long bar1) {
        SampleServerDevice d = new SampleServerDevice(bar1, console::add);
        toClose.add(d);
        return d;
    }

    private VfioUserServer serve(SampleServerDevice d, String name) throws Exception {
        VfioUserServer s = VfioUserServer.builder(d.build(), dir.resolve(name)).maxMsgFds(8).start();
        toClose.add(s);
        return s;
    }

    /** A client close to the C sample's (which says 1024; our client accepts no less than 4096), no twin socket. */
    private VfioUserClient connect(VfioUserServer s) throws Exception {
        VfioUserClient c = VfioUserClient.connect(s.socketPath(),
                ClientOptions.builder().maxDataXferSize(4096).offerTwinSocket(false).build());
        toClose.add(c);
        return c;
    }

    private static byte[] le64(long v) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
    }

    private static long le64(byte[] b) {
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    private static long now() {
        return Instant.now().getEpochSecond();
    }

    private static void einval(ThrowableAssert.ThrowingCallable call) {
        assertThatThrownBy(call).isInstanceOf(VfioUserException.class)
                .extracting(e -> ((VfioUserException) e).errno()).isEqualTo(Errno.EINVAL);
    }

    private static byte[] pattern() {
        byte[] b = new byte[4096];
        for (int i = 0; i < 4096; i++) {
            b[i] = (byte) ('A' + i / 1024);
        }
        return b;
    }

    @Test
    void identity_regions_and_irqs() throws Exception {
        VfioUserClient c = connect(serve(device(0x3000), "id.sock"));
        ByteBuffer cfg = ByteBuffer.wrap(c.read(RegionIndex.CONFIG, 0, 64)).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(cfg.getShort(0) & 0xffff).isEqualTo(0xdead);
        assertThat(cfg.getShort(2) & 0xffff).isEqualTo(0xbeef);
        assertThat(cfg.getShort(0x2c) & 0xffff).isEqualTo(0xcafe);
        assertThat(cfg.getShort(0x2e) & 0xffff).isEqualTo(0xbabe);
        assertThat(cfg.getShort(6) & 0x10).as("no capability list").isZero();
        assertThat(cfg.get(0x3d)).as("interrupt pin INTA#").isEqualTo((byte) 1);
        assertThat(c.deviceInfo().numRegions()).isEqualTo(9);

        try (RegionInfo bar0 = c.regionInfo(0)) {
            assertThat(bar0.size()).isEqualTo(8);
            assertThat(bar0.readable() && bar0.writable()).isTrue();
            assertThat(bar0.mappable()).isFalse();
            assertThat(bar0.fd()).isEmpty();
        }
        try (RegionInfo bar1 = c.regionInfo(1)) {
            assertThat(bar1.size()).isEqualTo(0x3000);
            assertThat(bar1.reply().flags()).isEqualTo(0xf); // R/W/MMAP/CAPS
            assertThat(bar1.offset()).isZero();
            assertThat(bar1.sparseMmapAreas()).containsExactly(new RegionCapability.Area(0, 0x1000),
                    new RegionCapability.Area(0x2000, 0x1000));
            assertThat(bar1.fd()).isPresent();
        }
        for (int i : new int[] {2, 3, 4, 5, 6, 8}) {
            try (RegionInfo r = c.regionInfo(i)) {
                assertThat(r.size()).as("region %d", i).isZero();
                assertThat(r.reply().flags()).isZero();
            }
        }
        try (RegionInfo config = c.regionInfo(RegionIndex.CONFIG)) {
            assertThat(config.size()).isEqualTo(256);
        }
        assertThat(c.irqInfo(IrqIndex.INTX).count()).isEqualTo(1);
        assertThat(c.irqInfo(IrqIndex.MSI).count()).isZero();
        assertThat(c.irqInfo(IrqIndex.MSIX).count()).isZero();
        assertThat(c.irqInfo(IrqIndex.ERR).count()).isEqualTo(1);
        assertThat(c.irqInfo(IrqIndex.REQ).count()).isEqualTo(1);
        assertThat(c.migrationFeatures()).isEqualTo(MigrationFeatures.STOP_COPY_PRE_COPY);
        einval(() -> c.read(0xdeadbeef, 0, 4));
    }

    @Test
    void bar1_of_0x4000_maps_first_and_last_page_and_shares_memory() throws Exception {
        VfioUserClient c = connect(serve(device(0x4000), "b1.sock"));
        try (RegionInfo bar1 = c.regionInfo(1)) {
            assertThat(bar1.size()).isEqualTo(0x4000);
            assertThat(bar1.sparseMmapAreas()).containsExactly(new RegionCapability.Area(0, 0x1000),
                    new RegionCapability.Area(0x3000, 0x1000));
        }
        // message accesses honour the offset (the C sample reads from offset 0 whatever is asked)
        c.write(1, 0x100, "ABCD".getBytes(StandardCharsets.US_ASCII));
        assertThat(c.read(1, 0x100, 4)).isEqualTo("ABCD".getBytes(StandardCharsets.US_ASCII));
        assertThat(c.read(1, 0, 4)).isEqualTo(new byte[4]);
        einval(() -> c.read(1, 0x3ffe, 4));
        try (MappedRegion m = c.mmap(1)) {
            MemorySegment last = m.areas().get(1).segment();
            last.set(ValueLayout.JAVA_BYTE, 0x10, (byte) 0x5a);
            assertThat(c.read(1, 0x3010, 1)).containsExactly(0x5a);
            assertThat(m.areas().get(0).segment().get(ValueLayout.JAVA_BYTE, 0x100)).isEqualTo((byte) 'A');
        }
        assertThatThrownBy(() -> new SampleServerDevice(0x2800, l -> { })).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new SampleServerDevice(0x1000, l -> { })).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void bar0_takes_only_8_bytes_at_0_and_reads_now_minus_bar0() throws Exception {
        SampleServerDevice d = device(0x3000);
        VfioUserClient c = connect(serve(d, "bar0.sock"));
        einval(() -> c.read(0, 0, 4));
        einval(() -> c.write(0, 4, new byte[4]));
        einval(() -> c.write(0, 0, new byte[4]));
        long before = now();
        long initial = le64(c.read(0, 0, 8));
        assertThat(initial).as("bar0 starts at 0").isBetween(before, now());

        einval(() -> c.write(0, 0, le64(now() - 5))); // RUNNING: a past deadline fails and stores nothing
        assertThat(le64(c.read(0, 0, 8))).isGreaterThanOrEqualTo(before);
        assertThat(d.alarmArmed()).isFalse();

        long t = now() + 100;
        c.write(0, 0, le64(t));
        assertThat(d.alarmArmed()).isTrue();
        assertThat(le64(c.read(0, 0, 8))).isBetween(-100L, -98L);

        for (int attempt = 0; ; attempt++) { // 0 seconds disarms; retry if a second boundary made it -1 (EINVAL)
            try {
                c.write(0, 0, le64(now()));
                break;
            } catch (VfioUserException e) {
                assertThat(attempt).isLessThan(3);
            }
        }
        assertThat(d.alarmArmed()).isFalse();
        assertThat(d.errors()).isZero();
    }

    @Test
    void alarm_triggers_intx_then_direct_dma_on_slot_1_and_message_dma_on_slot_0() throws Exception {
        SampleServerDevice d = device(0x3000);
        VfioUserClient c = connect(serve(d, "alarm.sock"));
        GuestMemory.Region slot0 = c.memory().allocate(0x0, 0x1000, true, true);
        GuestMemory.Region slot1 = c.memory().allocate(0x1000, 0x1000, true, true);
        GuestMemory.Region slot2 = c.memory().allocate(0x2000, 0x1000, true, true);
        c.dmaMap(slot0);
        c.dmaMap(slot1);
        c.dmaMap(slot2);
        EventFd intx = EventFd.create();
        toClose.add(intx);
        c.setIrqEventFds(INTX, 0, List.of(intx));
        c.dmaLoggingStart(4096, List.of());

        c.write(0, 0, le64(now() + 2)); // 1 or 2 s, never 0
        assertThat(intx.await(10_000)).as("INTx within 10 s").isTrue();
        assertThat(d.awaitAlarmsHandled(1, Duration.ofSeconds(10))).isTrue();
        assertThat(d.errors()).isZero();
        assertThat(console).containsExactly("doing dma io");

        byte[] expected = pattern();
        assertThat(slot1.segment().toArray(ValueLayout.JAVA_BYTE)).as("direct writes on slot 1").isEqualTo(expected);
        assertThat(slot0.segment().toArray(ValueLayout.JAVA_BYTE)).as("message writes on slot 0").isEqualTo(expected);
        assertThat(slot2.segment().toArray(ValueLayout.JAVA_BYTE)).isEqualTo(new byte[4096]);

        MemorySegment bitmap = c.dmaLoggingReport(0x1000, 0x1000, 4096);
        assertThat(bitmap.byteSize()).isEqualTo(8);
        assertThat(bitmap.get(ValueLayout.JAVA_BYTE, 0)).as("slot 1 page dirty").isEqualTo((byte) 1);
        assertThat(c.dmaLoggingReport(0x1000, 0x1000, 4096).get(ValueLayout.JAVA_BYTE, 0))
                .as("read-and-clear").isZero();
        assertThat(c.dmaLoggingReport(0x2000, 0x1000, 4096).get(ValueLayout.JAVA_BYTE, 0)).isZero();
        c.dmaLoggingStop();
        assertThat(d.alarmArmed()).isFalse();
    }

    @Test
    void slot_1_without_fd_is_an_error_not_an_exit() throws Exception {
        SampleServerDevice d = device(0x3000);
        VfioUserClient c = connect(serve(d, "nofd.sock"));
        GuestMemory.Region slot0 = c.memory().allocate(0x0, 0x1000, true, true);
        GuestMemory.Region slot1 = c.memory().allocateWithoutFd(0x1000, 0x1000, true, true);
        c.dmaMap(slot0);
        c.dmaMap(slot1);
        EventFd intx = EventFd.create();
        toClose.add(intx);
        c.setIrqEventFds(INTX, 0, List.of(intx));
        c.write(0, 0, le64(now() + 2));
        assertThat(intx.await(10_000)).isTrue();
        assertThat(d.awaitAlarmsHandled(1, Duration.ofSeconds(10))).isTrue();
        assertThat(d.errors()).isEqualTo(1);
        assertThat(slot1.segment().toArray(ValueLayout.JAVA_BYTE)).isEqualTo(new byte[4096]);
        assertThat(slot0.segment().toArray(ValueLayout.JAVA_BYTE)).as("message DMA still done").isEqualTo(pattern());
        // the server is still serving
        assertThat(c.read(1, 0, 4)).hasSize(4);
    }

    private static List<byte[]> drain(VfioUserClient c) throws Exception {
        List<byte[]> chunks = new ArrayList<>();
        MemorySegment buf = MemorySegment.ofArray(new byte[1024]);
        for (int i = 0; i < 100; i++) {
            long n = c.readMigrationChunk(buf);
            if (n == 0) {
                return chunks;
            }
            chunks.add(buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE));
        }
        throw new AssertionError("stream does not end");
    }

    @Test
    void migration_stream_is_bar1_then_bar0_and_restores() throws Exception {
        SampleServerDevice src = device(0x3000);
        VfioUserClient c = connect(serve(src, "src.sock"));
        byte[] bar1 = new byte[0x3000];
        new Random(7).nextBytes(bar1);
        c.write(1, 0, bar1);
        long deadline = now() + 100;
        c.write(0, 0, le64(deadline));
        assertThat(src.alarmArmed()).isTrue();

        c.setMigrationState(MigrationState.PRE_COPY);
        List<byte[]> pre = drain(c);
        assertThat(pre).hasSize(12).allSatisfy(b -> assertThat(b).hasSize(1024));
        assertThat(src.alarmArmed()).as("PRE_COPY keeps the alarm").isTrue();

        c.setMigrationState(MigrationState.STOP_COPY);
        assertThat(src.alarmArmed()).as("STOP_COPY disarms").isFalse();
        List<byte[]> stop = drain(c);
        assertThat(stop).hasSize(13);
        assertThat(stop.get(12)).hasSize(8);
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        stop.forEach(stream::writeBytes);
        byte[] image = stream.toByteArray();
        assertThat(image).hasSize(0x3000 + 8);
        assertThat(java.util.Arrays.copyOf(image, 0x3000)).isEqualTo(bar1);
        assertThat(le64(java.util.Arrays.copyOfRange(image, 0x3000, 0x3008))).isEqualTo(deadline);
        c.setMigrationState(MigrationState.STOP);

        SampleServerDevice dst = device(0x3000);
        VfioUserClient d = connect(serve(dst, "dst.sock"));
        d.setMigrationState(MigrationState.RESUMING);
        d.writeMigrationData(new java.io.ByteArrayInputStream(image), 1000);
        d.setMigrationState(MigrationState.STOP);
        assertThat(d.read(1, 0, 0x3000)).isEqualTo(bar1);
        assertThat(dst.alarmArmed()).isFalse();
        d.setMigrationState(MigrationState.RUNNING);
        assertThat(dst.alarmArmed()).as("re-armed from the migrated bar0").isTrue();
        assertThat(le64(d.read(0, 0, 8))).isBetween(-100L, -98L);
    }

    @Test
    void resuming_takes_exactly_the_image() throws Exception {
        SampleServerDevice dst = device(0x3000);
        VfioUserClient d = connect(serve(dst, "res.sock"));
        d.setMigrationState(MigrationState.RESUMING);
        byte[] image = new byte[0x3000 + 8];
        System.arraycopy(le64(now() + 100), 0, image, 0x3000, 8);
        d.writeMigrationData(MemorySegment.ofArray(java.util.Arrays.copyOf(image, 0x3000 + 4)));
        einval(() -> d.writeMigrationData(MemorySegment.ofArray(new byte[] {0, 0, 0, 0, 0}))); // 4 fit, 1 too many
        einval(() -> d.writeMigrationData(MemorySegment.ofArray(new byte[1]))); // complete: nothing fits
        d.setMigrationState(MigrationState.RUNNING); // RESUMING -> STOP -> RUNNING: all B1 + 8 bytes arrived
        assertThat(dst.alarmArmed()).isTrue();
    }

    @Test
    void running_needs_a_complete_stream_and_a_future_bar0() throws Exception {
        SampleServerDevice d = device(0x3000);
        VfioUserClient c = connect(serve(d, "run.sock"));
        c.setMigrationState(MigrationState.STOP);
        einval(() -> c.setMigrationState(MigrationState.RUNNING)); // the C sample asserts here
        assertThat(c.migrationState()).isEqualTo(MigrationState.STOP);

        // drained STOP_COPY, but bar0 = 0 is in the past: the RUNNING arc fails, the device stays in STOP
        c.setMigrationState(MigrationState.STOP_COPY);
        assertThat(drain(c).stream().mapToInt(b -> b.length).sum()).isEqualTo(0x3000 + 8);
        c.setMigrationState(MigrationState.STOP);
        einval(() -> c.setMigrationState(MigrationState.RUNNING));
        assertThat(c.migrationState()).isEqualTo(MigrationState.STOP);
        c.write(0, 0, le64(now() + 50)); // outside RUNNING: stored only
        assertThat(d.alarmArmed()).isFalse();
        c.setMigrationState(MigrationState.RUNNING);
        assertThat(d.alarmArmed()).isTrue();

        // STOP_COPY -> STOP without draining fails
        c.setMigrationState(MigrationState.STOP_COPY);
        einval(() -> c.setMigrationState(MigrationState.STOP));
        assertThat(c.migrationState()).isEqualTo(MigrationState.STOP_COPY);
    }

    @Test
    void registry_has_sample_server() {
        assertThat(Devices.find("sample-server")).isPresent();
        String old = System.getProperty(SampleServerDevice.BAR1_SIZE_PROPERTY);
        try {
            System.setProperty(SampleServerDevice.BAR1_SIZE_PROPERTY, "0x4000");
            assertThat(SampleServerDevice.bar1SizeFromProperty()).isEqualTo(0x4000);
            assertThat(Devices.find("sample-server").orElseThrow().create().region(1).size()).isEqualTo(0x4000);
            System.setProperty(SampleServerDevice.BAR1_SIZE_PROPERTY, "x");
            assertThatThrownBy(SampleServerDevice::bar1SizeFromProperty).isInstanceOf(IllegalArgumentException.class);
        } finally {
            if (old == null) {
                System.clearProperty(SampleServerDevice.BAR1_SIZE_PROPERTY);
            } else {
                System.setProperty(SampleServerDevice.BAR1_SIZE_PROPERTY, old);
            }
        }
        assertThat(SampleServerDevice.bar1SizeFromProperty()).isEqualTo(SampleServerDevice.DEFAULT_BAR1_SIZE);
    }
}
