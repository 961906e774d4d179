package io.vfu.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.EventFd;
import io.vfu.core.protocol.DeviceFeature;
import io.vfu.core.protocol.DeviceInfoReply;
import io.vfu.core.protocol.DirtyBitmap;
import io.vfu.core.protocol.FeaturePayload;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.core.protocol.RegionWriteMultiRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.protocol.Wire;
import io.vfu.server.Bar;
import io.vfu.server.DeviceContext;
import io.vfu.server.IoEventFd;
import io.vfu.server.MigrationHandler;
import io.vfu.server.MmapArea;
import io.vfu.server.PciDevice;
import io.vfu.server.Region;
import io.vfu.server.RegionHandler;
import io.vfu.server.ResetReason;
import io.vfu.server.VfioUserServer;
import io.vfu.server.pci.Capability;
import io.vfu.server.pci.PciIdentity;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The client against our server: every client→server command end to end, and server-initiated DMA into
 * fd-less client memory while the client is blocked in its own request.
 */
class EndToEndTest {
    @TempDir
    Path dir;

    /** BAR0 registers: 0x00 scratch; 0x08 doorbell: device writes the 8-byte value at 0x00 to the IOVA written;
     *  0x10: device reads 8 bytes at the IOVA written into the scratch register; 0x18: trigger MSI-X vector n. */
    static final class Device implements RegionHandler, MigrationHandler {
        long scratch;
        DeviceContext ctx;
        final List<ResetReason> resets = new ArrayList<>();
        final EventFd doorbell;
        private byte[] saved;
        /** Appended to the 8-byte image, to make the stream as long as a test wants. */
        byte[] extra = new byte[0];
        private final ByteArrayOutputStream loaded = new ByteArrayOutputStream();
        private int readPos;

        Device() throws Exception {
            doorbell = EventFd.create(0, false, true);
        }

        PciDevice build() {
            return PciDevice.builder()
                    .identity(new PciIdentity(0x1de5, 0x00e2, 0x1de5, 0x0002, 0x058000, 2))
                    .bar(0, Bar.mem32(Region.trapped(0x100, this)))
                    .bar(2, Bar.mem64(Region.sparse(0x4000, null, List.of(new MmapArea(0x1000, 0x2000)))))
                    .bar(4, Bar.mem32(Region.trapped(0x2000, RegionHandler.none())))
                    .capability(new Capability.Msix(4, 4, 0, 4, 0x1000))
                    .capability(Capability.PciExpress.endpoint())
                    .ioEventFd(new IoEventFd(0, 0x20, 4, OptionalLong.empty(), doorbell))
                    .migration(this)
                    .reset(resets::add)
                    .onAttach(c -> ctx = c)
                    .build();
        }

        @Override
        public void read(long offset, MemorySegment dst) {
            dst.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, offset == 0 ? scratch : 0);
        }

        @Override
        public void write(long offset, MemorySegment src) {
            long v = Wire.u64(src, 0);
            switch ((int) offset) {
                case 0x00 -> scratch = v;
                case 0x08 -> ctx.dma().write(v, MemorySegment.ofArray(new long[] {scratch}));
                case 0x10 -> {
                    MemorySegment eight = MemorySegment.ofArray(new byte[8]);
                    ctx.dma().read(v, eight);
                    scratch = Wire.u64(eight, 0);
                }
                case 0x18 -> ctx.irqs().trigger(IrqIndex.MSIX, (int) v);
                default -> throw VfioUserException.einval("no register at " + offset);
            }
        }

        @Override
        public MigrationFeatures features() {
            return MigrationFeatures.STOP_COPY_PRE_COPY;
        }

        @Override
        public void transition(MigrationState from, MigrationState to) {
            if (to == MigrationState.STOP_COPY || to == MigrationState.PRE_COPY) {
                saved = MemorySegment.ofArray(new long[] {scratch}).toArray(ValueLayout.JAVA_BYTE);
                saved = java.util.Arrays.copyOf(saved, 8 + extra.length);
                System.arraycopy(extra, 0, saved, 8, extra.length);
                readPos = 0;
                loaded.reset();
            } else if (from == MigrationState.RESUMING) {
                scratch = Wire.u64(MemorySegment.ofArray(loaded.toByteArray()), 0);
            }
        }

        @Override
        public long readData(MemorySegment dst) {
            int n = (int) Math.min(dst.byteSize(), saved.length - readPos);
            MemorySegment.copy(MemorySegment.ofArray(saved), readPos, dst, 0, n);
            readPos += n;
            return n;
        }

        @Override
        public void writeData(MemorySegment src) {
            loaded.writeBytes(src.toArray(ValueLayout.JAVA_BYTE));
        }

        @Override
        public long stopCopySize() {
            return 8 + extra.length;
        }
    }

    Device device;
    VfioUserServer server;
    VfioUserClient client;

    @BeforeEach
    void start() throws Exception {
        device = new Device();
        server = VfioUserServer.start(device.build(), dir.resolve("dev.sock"));
        client = VfioUserClient.connect(server.socketPath());
    }

    @AfterEach
    void stop() {
        if (client != null) {
            client.close();
        }
        server.close();
        device.doorbell.close();
    }

    @Test
    void discoveryCommands() throws Exception {
        DeviceInfoReply info = client.deviceInfo();
        assertThat(info.numRegions()).isEqualTo(9);
        try (RegionInfo bar2 = client.regionInfo(2)) {
            assertThat(bar2.size()).isEqualTo(0x4000);
            assertThat(bar2.sparseMmapAreas()).hasSize(1);
            assertThat(bar2.fd()).isPresent();
        }
        try (RegionIoFds fds = client.regionIoFds(0)) {
            assertThat(fds.entries()).hasSize(1);
        }
        assertThat(client.irqInfo(IrqIndex.MSIX).count()).isEqualTo(4);
        assertThat(client.twinSocketActive()).isTrue();
        assertThat(client.serverCapabilities().writeMultipleOrDefault()).isTrue();
    }

    @Test
    void regionAccessPostedWritesWriteMultiAndMmap() throws Exception {
        client.write(0, 0, MemorySegment.ofArray(new long[] {42}));
        assertThat(client.read(0, 0, 8)).isEqualTo(MemorySegment.ofArray(new long[] {42}).toArray(ValueLayout.JAVA_BYTE));
        client.postWrite(0, 0, MemorySegment.ofArray(new long[] {43}));
        client.writeMulti(List.of(new RegionWriteMultiRequest.Entry(0, 0, 8, 44)));
        assertThat(device.scratch).isEqualTo(44);
        // config space: vendor and device id
        assertThat(Wire.u32(MemorySegment.ofArray(client.read(RegionIndex.CONFIG, 0, 4)), 0)).isEqualTo(0x00e2_1de5L);
        try (MappedRegion m = client.mmap(2)) {
            MemorySegment area = m.areas().getFirst().segment();
            area.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 0xcafe);
            // the same memory through messages
            assertThat(Wire.u32(MemorySegment.ofArray(client.read(2, 0x1000, 4)), 0)).isEqualTo(0xcafe);
        }
        assertThatThrownBy(() -> client.read(0, 0x100, 8))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
    }

    @Test
    void serverDmaIntoFdLessMemoryWhileTheClientWaits() throws Exception {
        GuestMemory.Region fdless = client.memory().allocateWithoutFd(0x10_0000, 0x1000, true, true);
        GuestMemory.Region withFd = client.memory().allocate(0x20_0000, 0x1000, true, true);
        client.dmaMap(fdless);
        client.dmaMap(withFd);
        client.write(0, 0, MemorySegment.ofArray(new long[] {0x1122334455667788L}));
        client.write(0, 8, MemorySegment.ofArray(new long[] {0x10_0010}));   // DMA_WRITE to us while we wait
        assertThat(fdless.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x10)).isEqualTo(0x1122334455667788L);
        assertThat(fdless.isDirty(0)).isTrue();
        client.write(0, 8, MemorySegment.ofArray(new long[] {0x20_0020}));   // straight into the memfd
        assertThat(withFd.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x20)).isEqualTo(0x1122334455667788L);
        fdless.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0x800, 99);
        client.write(0, 0x10, MemorySegment.ofArray(new long[] {0x10_0800})); // DMA_READ from us while we wait
        assertThat(device.scratch).isEqualTo(99);
        client.dmaUnmap(fdless);
        client.dmaUnmapAll();
        assertThatThrownBy(() -> client.write(0, 8, MemorySegment.ofArray(new long[] {0x20_0020})))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EFAULT));
    }

    @Test
    void interruptsAndReset() throws Exception {
        try (EventFd vector2 = EventFd.create(0, false, true)) {
            client.setIrqEventFds(IrqIndex.MSIX, 2, List.of(vector2));
            client.write(0, 0x18, MemorySegment.ofArray(new long[] {2}));
            assertThat(vector2.read()).isEqualTo(1);
            client.maskIrqs(IrqIndex.MSIX, 2, 1);
            client.write(0, 0x18, MemorySegment.ofArray(new long[] {2}));
            assertThat(vector2.read()).isZero();
            client.unmaskIrqs(IrqIndex.MSIX, 2, 1);       // the pending interrupt fires now
            assertThat(vector2.read()).isEqualTo(1);
            client.disableIrqs(IrqIndex.MSIX);
        }
        client.reset();
        assertThat(device.resets).containsExactly(ResetReason.CLIENT_REQUEST);
    }

    /**
     * A long stream read with several MIG_DATA_READs in flight (the server may send two replies with one
     * sendmsg) and written back with several MIG_DATA_WRITEs in flight: every byte arrives, in order.
     */
    @Test
    void pipelinedMigrationStreamIsByteIdentical() throws Exception {
        byte[] pattern = new byte[300_000 + 123];
        new java.util.Random(42).nextBytes(pattern);
        device.extra = pattern;
        client.write(0, 0, MemorySegment.ofArray(new long[] {0x1234_5678_9abcL}));
        client.setMigrationState(MigrationState.STOP_COPY);
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        List<Long> chunks = new ArrayList<>();
        long read = client.readMigrationData(chunk -> {
            chunks.add(chunk.byteSize());
            stream.writeBytes(chunk.toArray(ValueLayout.JAVA_BYTE));
        }, 4096);
        assertThat(read).isEqualTo(8 + pattern.length);
        byte[] image = stream.toByteArray();
        assertThat(Arrays.copyOfRange(image, 8, image.length)).isEqualTo(pattern);
        assertThat(chunks).hasSize((8 + pattern.length + 4095) / 4096);
        client.setMigrationState(MigrationState.STOP);

        device.scratch = 0;
        client.setMigrationState(MigrationState.RESUMING);
        client.writeMigrationData(new ByteArrayInputStream(image), 4096);
        assertThat(device.loaded.toByteArray()).isEqualTo(image);
        client.setMigrationState(MigrationState.RUNNING);
        assertThat(device.scratch).isEqualTo(0x1234_5678_9abcL);
    }

    @Test
    void dirtyLoggingAndMigrationThroughTheClient() throws Exception {
        GuestMemory.Region ram = client.memory().allocate(0x40_0000, 0x10000, true, true);
        client.dmaMap(ram);
        assertThat(client.featureProbe(DeviceFeature.DMA_LOGGING_START, DeviceFeature.SET)).isTrue();
        client.dmaLoggingStart(4096, List.of(new FeaturePayload.DmaLoggingControl.Range(0x40_0000, 0x10000)));
        client.write(0, 8, MemorySegment.ofArray(new long[] {0x40_3000}));
        MemorySegment bitmap = client.dmaLoggingReport(0x40_0000, 0x10000, 4096);
        assertThat(DirtyBitmap.cardinality(bitmap)).isEqualTo(1);
        assertThat(DirtyBitmap.test(bitmap, 3)).isTrue();

        // A dirty-page loop's reports into one reply buffer: each bitmap is received in place (over 0xFF bytes),
        // and only the page written since the last report is set: the server reuses its bitmap buffer too, so a
        // previous round's bits left in it would show here.
        MemorySegment replyBuffer = Arena.ofAuto().allocate(4096, 8);
        replyBuffer.fill((byte) -1);
        SegmentAllocator oneBuffer = SegmentAllocator.prefixAllocator(replyBuffer);
        for (long page : new long[] {5, 7, 2}) {
            client.write(0, 8, MemorySegment.ofArray(new long[] {0x40_0000 + page * 4096}));
            MemorySegment inPlace = client.dmaLoggingReport(0x40_0000, 0x10000, 4096, oneBuffer);
            assertThat(inPlace.address()).isEqualTo(replyBuffer.address() + 32); // after argsz, flags and the range
            assertThat(inPlace.byteSize()).isEqualTo(DirtyBitmap.byteSize(0x10000, 4096)); // whole u64 words
            assertThat(DirtyBitmap.cardinality(inPlace)).isEqualTo(1);
            assertThat(DirtyBitmap.test(inPlace, page)).isTrue();
        }
        client.dmaLoggingStop();

        client.write(0, 0, MemorySegment.ofArray(new long[] {777}));
        assertThat(client.migrationFeatures()).isEqualTo(MigrationFeatures.STOP_COPY_PRE_COPY);
        assertThat(client.migDataSize()).isEqualTo(8);
        client.setMigrationState(MigrationState.PRE_COPY);
        assertThat(client.precopyInfo()).isNotNull();
        client.setMigrationState(MigrationState.STOP_COPY);
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        client.readMigrationData(stream, 4096);
        assertThat(stream.size()).isEqualTo(8);
        client.setMigrationState(MigrationState.STOP);

        device.scratch = 0;
        client.setMigrationState(MigrationState.RESUMING);
        client.writeMigrationData(new ByteArrayInputStream(stream.toByteArray()), 4096);
        client.setMigrationState(MigrationState.RUNNING);
        assertThat(client.migrationState()).isEqualTo(MigrationState.RUNNING);
        assertThat(device.scratch).isEqualTo(777);
    }
}
