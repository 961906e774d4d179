package io.vfu.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.EventFd;
import io.vfu.core.linux.Mapping;
import io.vfu.core.linux.MemFd;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.Capabilities;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.DeviceFeature;
import io.vfu.core.protocol.DeviceFeatureReply;
import io.vfu.core.protocol.DeviceFeatureRequest;
import io.vfu.core.protocol.DeviceInfoReply;
import io.vfu.core.protocol.DeviceInfoRequest;
import io.vfu.core.protocol.DeviceResetRequest;
import io.vfu.core.protocol.DmaMapRequest;
import io.vfu.core.protocol.DmaUnmapReply;
import io.vfu.core.protocol.DmaUnmapRequest;
import io.vfu.core.protocol.FeaturePayload;
import io.vfu.core.protocol.Header;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.IrqInfoReply;
import io.vfu.core.protocol.IrqInfoRequest;
import io.vfu.core.protocol.MigDataReadRequest;
import io.vfu.core.protocol.MigDataWriteRequest;
import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.core.protocol.RegionInfoReply;
import io.vfu.core.protocol.RegionInfoRequest;
import io.vfu.core.protocol.RegionReadRequest;
import io.vfu.core.protocol.RegionWriteMultiRequest;
import io.vfu.core.protocol.RegionWriteMultiReply;
import io.vfu.core.protocol.RegionWriteRequest;
import io.vfu.core.protocol.SetIrqsRequest;
import io.vfu.core.protocol.VersionRequest;
import io.vfu.core.transport.ReceivedReply;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every command through a real socket: the normal case and its errors; after each error the next command works. */
class ServerCommandsTest {
    @TempDir
    Path dir;
    ServerTestSupport support;
    ServerTestSupport.Served served;
    TestDevice device;
    TestClient client;
    int fdsBefore;

    @BeforeEach
    void start() throws Exception {
        fdsBefore = ServerTestSupport.openFds();
        support = new ServerTestSupport(dir);
        served = support.serve("dev", MigrationFeatures.STOP_COPY_PRE_COPY);
        device = served.device();
        client = support.connect(served, true);
    }

    @AfterEach
    void stop() throws Exception {
        support.close();
        assertThat(ServerTestSupport.openFds()).as("fds after the test").isEqualTo(fdsBefore);
    }

    /** An error must leave the device untouched and the connection usable. */
    private void assertStillServing() throws Exception {
        long r5 = device.registers[5];
        assertThat(client.commandWorks()).isTrue();
        assertThat(client.readU64(0, 5 * 8)).isEqualTo(r5);
        assertThat(client.state()).isIn(MigrationState.RUNNING, MigrationState.STOP_COPY, MigrationState.PRE_COPY,
                MigrationState.STOP, MigrationState.RESUMING);
    }

    @Test
    void versionIsNegotiated() {
        assertThat(client.version.major()).isZero();
        assertThat(client.version.minor()).isZero();
        Capabilities caps = client.version.capabilitiesOrNone();
        assertThat(caps.maxDataXferSizeOrDefault()).isEqualTo(1 << 20);
        assertThat(caps.writeMultipleOrDefault()).isTrue();
        assertThat(caps.twinSocketSupported()).isTrue();
        assertThat(client.twin).isNotNull();
    }

    @Test
    void commandsBeforeVersionAreRefusedAndTheClientDropped() throws Exception {
        try (UnixSocket raw = UnixSocket.connect(served.server().socketPath());
             Arena arena = Arena.ofConfined()) {
            // wait until the first client is gone so that this one is accepted
            client.close();
            MemorySegment msg = arena.allocate(32);
            Header.encode(msg, 1, Command.DEVICE_GET_INFO.code(), 32, 0, 0);
            msg.set(ValueLayout.JAVA_INT_UNALIGNED, 16, 16);
            raw.send(null, msg);
            MemorySegment reply = arena.allocate(16);
            try (var fds = new io.vfu.core.linux.FdList()) {
                raw.receiveFully(reply, fds);
                Header h = Header.decode(reply);
                assertThat(h.isError()).isTrue();
                assertThat(h.error()).isEqualTo(Errno.EINVAL.value());
                assertThat(raw.receive(arena.allocate(1), fds)).as("then disconnected").isZero();
            }
        }
    }

    @Test
    void secondVersionIsRefused() throws Exception {
        client.expectErrno(Errno.EINVAL, new VersionRequest(0, 0, Capabilities.NONE));
        assertStillServing();
    }

    @Test
    void deviceInfo() throws Exception {
        DeviceInfoReply info = client.call(new DeviceInfoRequest());
        assertThat(info.flags()).isEqualTo(DeviceInfoReply.FLAG_PCI | DeviceInfoReply.FLAG_RESET);
        assertThat(info.numRegions()).isEqualTo(9);
        assertThat(info.numIrqs()).isEqualTo(5);
    }

    @Test
    void regionInfoWithRetryAndFd() throws Exception {
        RegionInfoReply config = client.call(new RegionInfoRequest(RegionIndex.CONFIG));
        assertThat(config.size()).isEqualTo(4096);
        assertThat(config.flags()).isEqualTo(RegionInfoReply.FLAG_READ | RegionInfoReply.FLAG_WRITE);

        RegionInfoReply bar0 = client.call(new RegionInfoRequest(0));
        assertThat(bar0.size()).isEqualTo(0x1000);
        assertThat(bar0.flags() & RegionInfoReply.FLAG_MMAP).isZero();

        RegionInfoReply rom = client.call(new RegionInfoRequest(RegionIndex.ROM));
        assertThat(rom.size()).isZero();
        assertThat(rom.flags()).isZero();

        // BAR2 needs caps: first a short answer without fd, then the full one with it.
        try (ReceivedReply r = client.callRaw(new RegionInfoRequest(2))) {
            RegionInfoReply shortReply = RegionInfoReply.decode(r.payload());
            assertThat(shortReply.truncated()).isTrue();
            assertThat(shortReply.flags() & RegionInfoReply.FLAG_MMAP).isNotZero();
            assertThat(r.fds().size()).isZero();
            try (ReceivedReply full = client.callRaw(new RegionInfoRequest(shortReply.argsz(), 2))) {
                RegionInfoReply bar2 = RegionInfoReply.decode(full.payload());
                assertThat(bar2.sparseMmapAreas()).hasSize(1);
                assertThat(bar2.sparseMmapAreas().getFirst().size()).isEqualTo(0x8000);
                assertThat(full.fds().size()).isEqualTo(1);
                // The fd maps the same memory the device sees.
                try (MemFd fd = MemFd.adopt(full.fds().take(0)); Mapping m = fd.map(0, 0x8000, true)) {
                    m.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0x100, 0x1122334455667788L);
                    assertThat(device.bar2().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x100)).isEqualTo(0x1122334455667788L);
                    assertThat(client.readU64(2, 0x100)).isEqualTo(0x1122334455667788L);
                }
            }
        }
        client.expectErrno(Errno.EINVAL, new RegionInfoRequest(9));
        assertStillServing();
    }

    @Test
    void configSpaceReadsTheIdentity() throws Exception {
        assertThat(client.readU32(RegionIndex.CONFIG, 0)).isEqualTo(0x0042_1de5);
        assertThat(client.readU32(RegionIndex.CONFIG, 0x2c)).isEqualTo(0x0001_1de5);
    }

    @Test
    void regionReadWriteAndTheirErrors() throws Exception {
        client.writeU64(0, 8, 0xfeed_f00d_dead_beefL);
        assertThat(device.registers[1]).isEqualTo(0xfeed_f00d_dead_beefL);
        assertThat(client.readU64(0, 8)).isEqualTo(0xfeed_f00d_dead_beefL);
        // the trapped part of BAR2 (beyond the mmap area) goes to memory too: no handler
        client.writeU64(2, 0x9000, 42);
        assertThat(device.bar2().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x9000)).isEqualTo(42);

        long before = device.registers[1];
        client.expectErrno(Errno.EINVAL, new RegionReadRequest(0, 9, 4));                 // bad region
        client.expectErrno(Errno.EINVAL, new RegionReadRequest(0, RegionIndex.ROM, 4));   // absent region
        client.expectErrno(Errno.EINVAL, new RegionReadRequest(0xffc, 0, 8));             // past the end
        client.expectErrno(Errno.EINVAL, new RegionReadRequest(0, 2, 2 << 20));           // beyond 1 MiB
        client.expectErrno(Errno.EINVAL, new RegionWriteRequest(0x1000, 0, MemorySegment.ofArray(new byte[4])));
        client.expectErrno(Errno.EINVAL, new RegionWriteRequest(0x3, 0, MemorySegment.ofArray(new byte[8]))); // device refuses unaligned
        client.expectErrno(Errno.EINVAL, new RegionReadRequest(0x10000, RegionIndex.CONFIG, 4));
        assertThat(device.registers[1]).isEqualTo(before);
        assertStillServing();
    }

    /** REGION_READ and MIG_DATA_READ are decoded on a fast path without records: its bad inputs too. */
    @Test
    void malformedFastPathRequestsAreEinval() throws Exception {
        client.expectErrno(Errno.EINVAL, new RawRequest(Command.REGION_READ, RawRequest.hex("00 00 00 00 00 00 00 00")));
        client.expectErrno(Errno.EINVAL, new RawRequest(Command.REGION_READ, RawRequest.hex(
                "f8 ff ff ff ff ff ff ff  00 00 00 00  10 00 00 00")));           // offset + count overflows
        client.expectErrno(Errno.EINVAL, new RawRequest(Command.REGION_WRITE, RawRequest.hex("00 00 00 00 00 00 00 00")));
        client.expectErrno(Errno.EINVAL, new RawRequest(Command.REGION_WRITE, RawRequest.hex(
                "10 00 00 00 00 00 00 00  00 00 00 00  08 00 00 00  01 02 03 04")));  // count 8, 4 data bytes
        client.expectErrno(Errno.EINVAL, new RawRequest(Command.REGION_WRITE, RawRequest.hex(
                "fc ff ff ff ff ff ff ff  00 00 00 00  04 00 00 00  01 02 03 04")));  // offset + count overflows
        client.expectErrno(Errno.EINVAL, new RawRequest(Command.MIG_DATA_READ, RawRequest.hex("08 00 00 00")));
        client.expectErrno(Errno.EINVAL, new RawRequest(Command.MIG_DATA_READ, RawRequest.hex(
                "08 00 00 00  00 10 00 00")));                                      // argsz < 8 + size
        try (EventFd stray = EventFd.create()) {                                    // fds where none belong
            client.expectErrno(Errno.EINVAL, new RegionReadRequest(0, 0, 8), stray.fd());
        }
        assertStillServing();
    }

    @Test
    void writeMultiAppliesEntriesInOrder() throws Exception {
        RegionWriteMultiReply reply = client.call(RegionWriteMultiRequest.of(
                new RegionWriteMultiRequest.Entry(16, 0, 8, 7),
                new RegionWriteMultiRequest.Entry(24, 0, 8, 9),
                new RegionWriteMultiRequest.Entry(16, 0, 8, 11)));
        assertThat(reply.wrCnt()).isEqualTo(3);
        assertThat(device.registers[2]).isEqualTo(11);
        assertThat(device.registers[3]).isEqualTo(9);
        client.expectErrno(Errno.EINVAL, RegionWriteMultiRequest.of(new RegionWriteMultiRequest.Entry(0, 9, 4, 1)));
        assertStillServing();
    }

    @Test
    void dmaMapWithFdAndDeviceWrites() throws Exception {
        try (MemFd memfd = MemFd.create("guest", 0x10000); Mapping view = memfd.map(0, 0x10000, true)) {
            client.call(new DmaMapRequest(DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE, 0, 0x100000, 0x10000), memfd.fd());
            client.writeU64(0, 0x200, 0x100040);                      // doorbell: device writes 16 x 0xA5
            byte[] got = view.segment().asSlice(0x40, 16).toArray(ValueLayout.JAVA_BYTE);
            assertThat(got).containsOnly((byte) 0xA5);
            assertThat(view.segment().get(ValueLayout.JAVA_BYTE, 0x50)).isZero();

            // exact duplicate is accepted; overlap is EEXIST; unknown unmap is ENOENT
            client.call(new DmaMapRequest(DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE, 0, 0x100000, 0x10000), memfd.fd());
            client.expectErrno(Errno.EEXIST, new DmaMapRequest(DmaMapRequest.FLAG_READ, 0, 0x108000, 0x10000), memfd.fd());
            client.expectErrno(Errno.ENOENT, new DmaUnmapRequest(0x100000, 0x8000));
            // two fds with one map
            client.expectErrno(Errno.EINVAL, new DmaMapRequest(DmaMapRequest.FLAG_READ, 0, 0x300000, 0x1000), memfd.fd(), memfd.fd());
            assertStillServing();

            DmaUnmapReply unmapped = client.call(new DmaUnmapRequest(0x100000, 0x10000));
            assertThat(unmapped.address()).isEqualTo(0x100000);
            // the device now gets EFAULT: its doorbell write fails with that errno
            assertThatThrownBy(() -> client.writeU64(0, 0x200, 0x100040))
                    .isInstanceOfSatisfying(io.vfu.core.protocol.VfioUserException.class,
                            e -> assertThat(e.errno()).isEqualTo(Errno.EFAULT));
        }
    }

    @Test
    void readOnlyMappingRefusesDeviceWrites() throws Exception {
        try (MemFd memfd = MemFd.create("guest", 0x1000)) {
            client.call(new DmaMapRequest(DmaMapRequest.FLAG_READ, 0, 0x100000, 0x1000), memfd.fd());
            assertThatThrownBy(() -> client.writeU64(0, 0x200, 0x100000))
                    .isInstanceOfSatisfying(io.vfu.core.protocol.VfioUserException.class,
                            e -> assertThat(e.errno()).isEqualTo(Errno.EPERM));
            client.call(DmaUnmapRequest.all());
        }
    }

    @Test
    void fdLessDmaGoesThroughMessagesOnTheTwinSocket() throws Exception {
        fdLessDma(client);
    }

    @Test
    void fdLessDmaGoesThroughMessagesOnTheMainSocket() throws Exception {
        client.close();
        TestClient single = support.connect(served, false);
        assertThat(single.twin).isNull();
        fdLessDma(single);
    }

    private void fdLessDma(TestClient c) throws Exception {
        MemorySegment guest = Arena.ofAuto().allocate(0x2000);
        guest.set(ValueLayout.JAVA_LONG_UNALIGNED, 0x800, 0x5566778899aabbccL);
        c.guest.put(0x400000L, guest);
        c.call(new DmaMapRequest(DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE, 0, 0x400000, 0x2000));
        c.writeU64(0, 0x200, 0x400100);               // device writes via DMA_WRITE while we wait for our reply
        assertThat(guest.asSlice(0x100, 16).toArray(ValueLayout.JAVA_BYTE)).containsOnly((byte) 0xA5);
        c.writeU64(0, 0x210, 0x400800);               // device reads via DMA_READ
        assertThat(device.registers[0]).isEqualTo(0x5566778899aabbccL);
        guest.set(ValueLayout.JAVA_LONG_UNALIGNED, 0x808, 0x1122334455667788L);
        c.writeU64(0, 0x218, 0x400808);               // into native memory: the reply's data lands there directly
        assertThat(device.registers[1]).isEqualTo(0x1122334455667788L);
        // crosses the end of the mapping: the device's DMA fails, and so does the access that caused it
        assertThatThrownBy(() -> c.writeU64(0, 0x210, 0x402000 - 4))
                .isInstanceOfSatisfying(io.vfu.core.protocol.VfioUserException.class,
                        e -> assertThat(e.errno()).isEqualTo(Errno.EFAULT));
        assertThat(device.registers[0]).isEqualTo(0x5566778899aabbccL);
        assertThat(c.commandWorks()).isTrue();
    }

    /**
     * A DMA_READ reply that does not echo the request (another address, less data) fails the device's read with
     * EIO, into heap memory (copied from a reply buffer) and into native memory (received in place) alike; the
     * server keeps serving.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(TestClient.DmaReadLie.class)
    void aDmaReadReplyThatDoesNotEchoTheRequestFailsTheRead(TestClient.DmaReadLie lie) throws Exception {
        MemorySegment guest = Arena.ofAuto().allocate(0x2000);
        client.guest.put(0x400000L, guest);
        client.call(new DmaMapRequest(DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE, 0, 0x400000, 0x2000));
        client.dmaReadLie = lie;
        for (int doorbell : new int[] {0x210, 0x218}) {
            assertThatThrownBy(() -> client.writeU64(0, doorbell, 0x400800))
                    .isInstanceOfSatisfying(io.vfu.core.protocol.VfioUserException.class,
                            e -> assertThat(e.errno()).isEqualTo(Errno.EIO));
        }
        client.dmaReadLie = null;
        guest.set(ValueLayout.JAVA_LONG_UNALIGNED, 0x800, 42);
        client.writeU64(0, 0x218, 0x400800);
        assertThat(device.registers[1]).isEqualTo(42);
        assertStillServing();
    }

    @Test
    void irqInfoAndEventfdTriggers() throws Exception {
        IrqInfoReply msix = client.call(new IrqInfoRequest(IrqIndex.MSIX));
        assertThat(msix.count()).isEqualTo(8);
        IrqInfoReply msi = client.call(new IrqInfoRequest(IrqIndex.MSI));
        assertThat(msi.count()).isEqualTo(4);
        client.expectErrno(Errno.EINVAL, new IrqInfoRequest(5));
        try (EventFd e0 = EventFd.create(0, false, true); EventFd e1 = EventFd.create(0, false, true)) {
            int flags = SetIrqsRequest.DATA_EVENTFD | SetIrqsRequest.ACTION_TRIGGER;
            client.call(new SetIrqsRequest(flags, IrqIndex.MSIX, 0, 2), e0.fd(), e1.fd());
            client.writeU64(0, 0x208, 1);
            assertThat(e1.read()).isEqualTo(1);
            assertThat(e0.read()).isZero();
            // wrong fd count
            client.expectErrno(Errno.EINVAL, new SetIrqsRequest(flags, IrqIndex.MSIX, 0, 2), e0.fd());
            // beyond the vector count
            client.expectErrno(Errno.EINVAL, new SetIrqsRequest(flags, IrqIndex.MSIX, 7, 2), e0.fd(), e1.fd());
            assertStillServing();
            client.writeU64(0, 0x208, 0);
            assertThat(e0.read()).isEqualTo(1);
        }
    }

    @Test
    void featuresAndMigrationStateErrors() throws Exception {
        DeviceFeatureReply mig = client.call(DeviceFeatureRequest.get(DeviceFeature.MIGRATION));
        assertThat(((FeaturePayload.MigrationFlags) mig.featureData()).flags()).isEqualTo(0x5);
        // GET and SET together without PROBE
        // argsz 16, flags MIG_DEVICE_STATE|GET|SET, device_state RUNNING, data_fd -1 (raw bytes: our encoder refuses it)
        client.expectErrno(Errno.EINVAL, new RawRequest(Command.DEVICE_FEATURE, RawRequest.hex(
                "10 00 00 00  02 00 03 00  02 00 00 00  ff ff ff ff")));
        // a truncated SET_IRQS and a DMA_MAP with a reserved flag bit
        client.expectErrno(Errno.EINVAL, new RawRequest(Command.DEVICE_SET_IRQS, RawRequest.hex("14 00 00 00 24 00 00 00")));
        client.expectErrno(Errno.EINVAL, new RawRequest(Command.DMA_MAP, RawRequest.hex(
                "20 00 00 00  13 00 00 00  00 00 00 00 00 00 00 00  00 00 10 00 00 00 00 00  00 10 00 00 00 00 00 00")));

        client.expectErrno(Errno.EINVAL, new MigDataReadRequest(4096));       // RUNNING: no data to read
        client.expectErrno(Errno.EINVAL, new MigDataWriteRequest(MemorySegment.ofArray(new byte[8])));
        client.expectErrno(Errno.EINVAL, DeviceFeatureRequest.set(DeviceFeature.MIG_DEVICE_STATE, new FeaturePayload.MigDeviceState(8)));
        client.expectErrno(Errno.EINVAL, DeviceFeatureRequest.set(DeviceFeature.MIG_DEVICE_STATE, new FeaturePayload.MigDeviceState(0)));
        client.expectErrno(Errno.EINVAL, new DeviceFeatureRequest(8, 0x1234 | DeviceFeature.GET, new FeaturePayload.Empty()));
        assertThat(client.state()).isEqualTo(MigrationState.RUNNING);
        assertStillServing();

        client.setState(MigrationState.STOP_COPY);
        assertThat(device.arcs).containsExactly("RUNNING->STOP", "STOP->STOP_COPY");
        client.expectErrno(Errno.EINVAL, DeviceFeatureRequest.set(DeviceFeature.MIG_DEVICE_STATE,
                new FeaturePayload.MigDeviceState(MigrationState.PRE_COPY.wireValue())));
        assertThat(client.state()).isEqualTo(MigrationState.STOP_COPY);
        // gated in STOP_COPY: region access and DMA_MAP
        client.expectErrno(Errno.EINVAL, new RegionReadRequest(0, 0, 8));
        client.expectErrno(Errno.EINVAL, new DmaMapRequest(DmaMapRequest.FLAG_READ, 0, 0x1000, 0x1000));
        client.setState(MigrationState.RUNNING);
        assertThat(device.arcs).endsWith("STOP_COPY->STOP", "STOP->RUNNING");
        assertStillServing();
    }

    @Test
    void aBrokenArcEntersErrorAndDeviceResetRecovers() throws Exception {
        device.breakNextTransition = true;
        client.expectErrno(Errno.EIO, DeviceFeatureRequest.set(DeviceFeature.MIG_DEVICE_STATE,
                new FeaturePayload.MigDeviceState(MigrationState.STOP.wireValue())));
        assertThat(client.state()).isEqualTo(MigrationState.ERROR);
        // nothing but reset gets the device out of ERROR
        client.expectErrno(Errno.EINVAL, DeviceFeatureRequest.set(DeviceFeature.MIG_DEVICE_STATE,
                new FeaturePayload.MigDeviceState(MigrationState.RUNNING.wireValue())));
        client.expectErrno(Errno.EINVAL, new RegionReadRequest(0, 0, 8));
        client.call(new DeviceResetRequest());
        assertThat(client.state()).isEqualTo(MigrationState.RUNNING);
        assertThat(device.resets).containsExactly(ResetReason.CLIENT_REQUEST);
        assertStillServing();
    }

    @Test
    void aNewClientCanAttachToAStoppedDevice() throws Exception {
        client.setState(MigrationState.STOP);
        client.close();
        TestClient next = support.connect(served, true);
        assertThat(next.state()).isEqualTo(MigrationState.STOP);
        next.setState(MigrationState.RUNNING);
    }

    @Test
    void failedArcLeavesTheLastReachedState() throws Exception {
        device.failNextTransition = true;
        client.expectErrno(Errno.EBUSY, DeviceFeatureRequest.set(DeviceFeature.MIG_DEVICE_STATE,
                new FeaturePayload.MigDeviceState(MigrationState.STOP_COPY.wireValue())));
        assertThat(client.state()).isEqualTo(MigrationState.RUNNING);
        client.setState(MigrationState.STOP);
        device.failNextTransition = true;
        client.expectErrno(Errno.EBUSY, DeviceFeatureRequest.set(DeviceFeature.MIG_DEVICE_STATE,
                new FeaturePayload.MigDeviceState(MigrationState.RESUMING.wireValue())));
        assertThat(client.state()).isEqualTo(MigrationState.STOP);
        client.setState(MigrationState.RUNNING);
    }

    @Test
    void probeTellsWhatTheDeviceSupports() throws Exception {
        client.call(DeviceFeatureRequest.probe(DeviceFeature.MIGRATION, DeviceFeature.GET));
        client.call(DeviceFeatureRequest.probe(DeviceFeature.MIG_DEVICE_STATE, DeviceFeature.GET | DeviceFeature.SET));
        client.call(DeviceFeatureRequest.probe(DeviceFeature.VFU_PRECOPY_INFO, DeviceFeature.GET));
        client.expectErrno(Errno.EINVAL, DeviceFeatureRequest.probe(DeviceFeature.MIGRATION, DeviceFeature.SET));
    }

    @Test
    void resetCallsTheDevice() throws Exception {
        client.call(new DeviceResetRequest());
        assertThat(device.resets).containsExactly(ResetReason.CLIENT_REQUEST);
    }

    @Test
    void msixTableIsServedInItsBar() throws Exception {
        // vector control of entry 0 (offset 12): masked after reset
        assertThat(client.readU32(4, 12) & 1).isEqualTo(1);
        client.writeU32(4, 12, 0);
        assertThat(client.readU32(4, 12) & 1).isZero();
    }

    @Test
    void disconnectReleasesAndANewClientIsServed() throws Exception {
        client.writeU64(0, 0, 77);
        try (MemFd memfd = MemFd.create("guest", 0x1000)) {
            client.call(new DmaMapRequest(DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE, 0, 0x100000, 0x1000), memfd.fd());
        }
        client.close();
        TestClient next = support.connect(served, true);
        assertThat(next.readU64(0, 0)).as("device state kept").isEqualTo(77);
        assertThat(device.resets).contains(ResetReason.LOST_CONNECTION);
        // the old mapping is gone
        assertThatThrownBy(() -> next.writeU64(0, 0x200, 0x100000))
                .isInstanceOfSatisfying(io.vfu.core.protocol.VfioUserException.class,
                        e -> assertThat(e.errno()).isEqualTo(Errno.EFAULT));
        assertThat(served.server().sessionsServed()).isEqualTo(2);
    }

    @Test
    void ioEventFdsAreHandedOutWithArgszRetry() throws Exception {
        try (ReceivedReply r = client.callRaw(new io.vfu.core.protocol.RegionIoFdsRequest(16, 0))) {
            io.vfu.core.protocol.RegionIoFdsReply shortReply = io.vfu.core.protocol.RegionIoFdsReply.decode(r.payload());
            assertThat(shortReply.count()).isEqualTo(1);
            assertThat(shortReply.entries()).isEmpty();
            assertThat(r.fds().size()).isZero();
            try (ReceivedReply full = client.callRaw(new io.vfu.core.protocol.RegionIoFdsRequest(shortReply.argsz(), 0))) {
                io.vfu.core.protocol.RegionIoFdsReply reply = io.vfu.core.protocol.RegionIoFdsReply.decode(full.payload());
                assertThat(reply.argsz()).isEqualTo(16 + 40);
                io.vfu.core.protocol.IoFdEntry.IoEventFd e = (io.vfu.core.protocol.IoFdEntry.IoEventFd) reply.entries().getFirst();
                assertThat(e.offset()).isEqualTo(0x300);
                assertThat(e.size()).isEqualTo(4);
                assertThat(e.flags()).isEqualTo(1); // DATAMATCH
                assertThat(e.datamatch()).isEqualTo(1);
                try (EventFd received = EventFd.adopt(full.fds().take((int) e.fdIndex()))) {
                    received.signal();
                    assertThat(device.doorbell.read()).isEqualTo(1);
                }
            }
        }
        // a region with no ioeventfds: an empty answer; an absent region: EINVAL
        io.vfu.core.protocol.RegionIoFdsReply none = client.call(new io.vfu.core.protocol.RegionIoFdsRequest(2));
        assertThat(none.count()).isZero();
        client.expectErrno(Errno.EINVAL, new io.vfu.core.protocol.RegionIoFdsRequest(RegionIndex.ROM));
        assertStillServing();
    }

    @Test
    void functionLevelResetReachesTheDevice() throws Exception {
        int pcie = findCapability(0x10);
        assertThat(pcie).isPositive();
        client.writeU32(RegionIndex.CONFIG, 0x04, 0x0006);                  // memory + bus master
        int control = client.readU32(RegionIndex.CONFIG, pcie + 8) & 0xffff;
        MemorySegment flr = Arena.ofAuto().allocate(2);
        flr.set(ValueLayout.JAVA_SHORT_UNALIGNED, 0, (short) (control | 0x8000));
        client.call(new RegionWriteRequest(pcie + 8, RegionIndex.CONFIG, flr));
        assertThat(device.resets).containsExactly(ResetReason.FUNCTION_LEVEL_RESET);
        assertThat(client.readU32(RegionIndex.CONFIG, 0x04) & 0xffff).as("command register reset").isZero();
    }

    private int findCapability(int id) throws Exception {
        int ptr = client.readU32(RegionIndex.CONFIG, 0x34) & 0xfc;
        for (int hops = 0; ptr != 0 && hops < 48; hops++) {
            int header = client.readU32(RegionIndex.CONFIG, ptr);
            if ((header & 0xff) == id) {
                return ptr;
            }
            ptr = (header >>> 8) & 0xfc;
        }
        return -1;
    }

    @Test
    void clientsOfAnotherUidAreRefused() throws Exception {
        int uid;
        UnixSocket[] pair = UnixSocket.pair();
        try {
            uid = pair[0].peerCredentials().uid();
        } finally {
            pair[0].close();
            pair[1].close();
        }
        VfioUserServer strict = support.add(VfioUserServer.builder(support.add(new TestDevice(null)).build(), dir.resolve("strict.sock"))
                .allowedUid(uid + 1).start());
        assertThatThrownBy(() -> TestClient.connect(strict.socketPath(), false)).isInstanceOf(java.io.IOException.class);
        VfioUserServer own = support.add(VfioUserServer.builder(support.add(new TestDevice(null)).build(), dir.resolve("own.sock"))
                .allowedUid(uid).start());
        try (TestClient ok = TestClient.connect(own.socketPath(), false)) {
            assertThat(ok.commandWorks()).isTrue();
        }
    }

    @Test
    void removedUnknownAndServerToClientCommandsAreEinval() throws Exception {
        client.close();
        try (UnixSocket raw = UnixSocket.connect(served.server().socketPath()); Arena arena = Arena.ofConfined()) {
            var fds = new io.vfu.core.linux.FdList();
            // VERSION 0.0 without JSON
            MemorySegment version = arena.allocate(20);
            Header.encode(version, 1, Command.VERSION.code(), 20, 0, 0);
            raw.send(null, version);
            MemorySegment h = arena.allocate(16);
            raw.receiveFully(h, fds);
            Header vh = Header.decode(h);
            assertThat(vh.isError()).isFalse();
            raw.skip(vh.payloadSize(), fds);
            fds.close();
            for (int cmd : new int[] {14, 19, 0, 0xffff, Command.DMA_READ.code()}) {
                MemorySegment msg = arena.allocate(32);
                Header.encode(msg, 100 + cmd, cmd, 32, 0, 0);
                raw.send(null, msg);
                raw.receiveFully(h, fds);
                Header reply = Header.decode(h);
                assertThat(reply.msgId()).isEqualTo((100 + cmd) & 0xffff);
                assertThat(reply.cmd()).isEqualTo(cmd);
                assertThat(reply.isError()).isTrue();
                assertThat(reply.error()).as("command " + cmd).isEqualTo(Errno.EINVAL.value());
                assertThat(reply.msgSize()).isEqualTo(16);
            }
            // still serving: DEVICE_GET_INFO works
            MemorySegment info = arena.allocate(32);
            Header.encode(info, 7, Command.DEVICE_GET_INFO.code(), 32, 0, 0);
            info.set(ValueLayout.JAVA_INT_UNALIGNED, 16, 16);
            raw.send(null, info);
            raw.receiveFully(h, fds);
            assertThat(Header.decode(h).isError()).isFalse();
            fds.close();
        }
    }

    @Test
    void staleSocketIsReplacedButALiveOneIsNot() throws Exception {
        Path stale = dir.resolve("stale.sock");
        UnixSocket dead = UnixSocket.listen(stale);
        java.nio.file.Files.createLink(dir.resolve("stale-copy.sock"), stale);
        dead.close();                                             // removes stale.sock; the copy stays, unserved
        java.nio.file.Files.move(dir.resolve("stale-copy.sock"), stale);
        VfioUserServer replaced = support.add(VfioUserServer.builder(support.add(new TestDevice(null)).build(), stale).start());
        try (TestClient ok = TestClient.connect(replaced.socketPath(), false)) {
            assertThat(ok.commandWorks()).isTrue();
        }
        // the socket of a running server is never taken over
        assertThatThrownBy(() -> VfioUserServer.builder(support.add(new TestDevice(null)).build(),
                served.server().socketPath()).start())
                .isInstanceOfSatisfying(io.vfu.core.linux.LinuxException.class,
                        e -> assertThat(e.errno()).isEqualTo(Errno.EADDRINUSE));
        assertThat(client.commandWorks()).isTrue();
    }

    static String hex(byte[] b) {
        return Arrays.toString(b);
    }
}
