package io.vfu.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.Mapping;
import io.vfu.core.linux.MemFd;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.DeviceFeature;
import io.vfu.core.protocol.DeviceFeatureReply;
import io.vfu.core.protocol.DeviceFeatureRequest;
import io.vfu.core.protocol.DeviceInfoReply;
import io.vfu.core.protocol.DmaMapReply;
import io.vfu.core.protocol.DmaMapRequest;
import io.vfu.core.protocol.DmaReadReply;
import io.vfu.core.protocol.DmaReadRequest;
import io.vfu.core.protocol.DmaWriteRequest;
import io.vfu.core.protocol.FeaturePayload;
import io.vfu.core.protocol.MigDataReadRequest;
import io.vfu.core.protocol.MigDataWriteReply;
import io.vfu.core.protocol.MigDataWriteRequest;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.RegionCapability;
import io.vfu.core.protocol.RegionInfoReply;
import io.vfu.core.protocol.RegionInfoRequest;
import io.vfu.core.protocol.RegionReadReply;
import io.vfu.core.protocol.RegionReadRequest;
import io.vfu.core.protocol.RegionWriteMultiReply;
import io.vfu.core.protocol.RegionWriteMultiRequest;
import io.vfu.core.protocol.RegionWriteReply;
import io.vfu.core.protocol.RegionWriteRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.protocol.Wire;
import io.vfu.core.testing.NoFdLeaks;
import io.vfu.core.transport.Response;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@ExtendWith(NoFdLeaks.class)
class ClientCallsTest {
    @TempDir
    Path dir;

    private static byte[] pattern(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 31 + seed);
        }
        return b;
    }

    @Test
    void deviceInfoIsBoundedByTheLimits() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            AtomicInteger regions = new AtomicInteger(9);
            server.on(Command.DEVICE_GET_INFO, (s, c) -> Response.of(new DeviceInfoReply(3, regions.get(), 5)));
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                assertThat(client.deviceInfo().numRegions()).isEqualTo(9);
                regions.set(101);
                assertThatThrownBy(client::deviceInfo).isInstanceOf(VfioUserException.class)
                        .hasMessageContaining("101 regions");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void regionInfoRetriesWithTheReplysArgszAndKeepsOneFd(boolean fdInBothReplies) throws Exception {
        long page = io.vfu.core.linux.Fds.pageSize();
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir));
             MemFd bar = MemFd.create("bar1", 4 * page);
             Mapping serverView = bar.map(0, 4 * page, true)) {
            List<Long> asked = new CopyOnWriteArrayList<>();
            RegionInfoReply full = new RegionInfoReply(RegionInfoReply.FLAG_READ | RegionInfoReply.FLAG_WRITE
                    | RegionInfoReply.FLAG_MMAP, 1, 4 * page, 0, List.of(new RegionCapability.SparseMmap(List.of(
                    new RegionCapability.Area(0, page), new RegionCapability.Area(3 * page, page)))));
            server.on(Command.DEVICE_GET_REGION_INFO, (s, c) -> {
                RegionInfoRequest r = RegionInfoRequest.decode(c.payload());
                asked.add(r.argsz());
                RegionInfoReply reply = full.forClient(r.argsz());
                return reply.truncated() && !fdInBothReplies ? Response.of(reply) : Response.of(reply, bar.fd());
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                try (RegionInfo info = client.regionInfo(1)) {
                    assertThat(asked).containsExactly(32L, full.argsz());
                    assertThat(info.size()).isEqualTo(4 * page);
                    assertThat(info.sparseMmapAreas()).hasSize(2);
                    assertThat(info.mappable()).isTrue();
                    assertThat(info.fd()).isPresent();
                }
                try (MappedRegion mapped = client.mmap(1)) {
                    assertThat(mapped.areas()).hasSize(2);
                    mapped.areas().get(1).segment().set(ValueLayout.JAVA_LONG, 8, 0x1122334455667788L);
                    assertThat(serverView.segment().get(ValueLayout.JAVA_LONG, 3 * page + 8)).isEqualTo(0x1122334455667788L);
                }
            }
        }
    }

    @Test
    void readAndWriteAreSplitByTheTransferSize() throws Exception {
        byte[] region = new byte[20000];
        List<Long> readCounts = new CopyOnWriteArrayList<>();
        List<Long> writeCounts = new CopyOnWriteArrayList<>();
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.maxDataXferSize = 4096;
            server.on(Command.REGION_READ, (s, c) -> {
                RegionReadRequest r = RegionReadRequest.decode(c.payload());
                readCounts.add(r.count());
                return Response.of(new RegionReadReply(r.offset(), r.region(),
                        MemorySegment.ofArray(region).asSlice(r.offset(), r.count())));
            });
            server.on(Command.REGION_WRITE, (s, c) -> {
                RegionWriteRequest r = RegionWriteRequest.decode(c.payload());
                writeCounts.add(r.count());
                MemorySegment.copy(r.data(), 0, MemorySegment.ofArray(region), r.offset(), r.count());
                return Response.of(new RegionWriteReply(r.offset(), r.region(), r.count()));
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                assertThat(client.transferSize()).isEqualTo(4096);
                byte[] data = pattern(10000, 7);
                client.write(2, 100, data);
                assertThat(writeCounts).containsExactly(4096L, 4096L, 1808L);
                assertThat(java.util.Arrays.copyOfRange(region, 100, 10100)).isEqualTo(data);
                assertThat(client.read(2, 100, 10000)).isEqualTo(data);
                assertThat(readCounts).containsExactly(4096L, 4096L, 1808L);
            }
        }
    }

    @Test
    void shortReadIsAnError() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.REGION_READ, (s, c) -> {
                RegionReadRequest r = RegionReadRequest.decode(c.payload());
                return Response.of(new RegionReadReply(r.offset(), r.region(), MemorySegment.ofArray(new byte[2])));
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                assertThatThrownBy(() -> client.read(0, 0, 8))
                        .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EIO))
                        .hasMessageContaining("short read, 2 of 8");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void writeMultiBatchesOrFallsBack(boolean writeMultiple) throws Exception {
        List<Integer> batches = new CopyOnWriteArrayList<>();
        List<Long> singles = new CopyOnWriteArrayList<>();
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.writeMultiple = writeMultiple;
            server.on(Command.REGION_WRITE_MULTI, (s, c) -> {
                RegionWriteMultiRequest r = RegionWriteMultiRequest.decode(c.payload());
                batches.add(r.wrCnt());
                return Response.of(new RegionWriteMultiReply(r.wrCnt()));
            });
            server.on(Command.REGION_WRITE, (s, c) -> {
                RegionWriteRequest r = RegionWriteRequest.decode(c.payload());
                singles.add(r.data().get(Wire.U32, 0) & 0xFFFF_FFFFL);
                return Response.of(new RegionWriteReply(r.offset(), r.region(), r.count()));
            });
            List<RegionWriteMultiRequest.Entry> entries = new ArrayList<>();
            for (int i = 0; i < 450; i++) {
                entries.add(new RegionWriteMultiRequest.Entry(4L * i, 0, 4, i));
            }
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                client.writeMulti(entries);
            }
            if (writeMultiple) {
                assertThat(batches).containsExactly(200, 200, 50);
                assertThat(singles).isEmpty();
            } else {
                assertThat(batches).isEmpty();
                assertThat(singles).hasSize(450).startsWith(0L, 1L, 2L).endsWith(449L);
            }
        }
    }

    /** The server DMAs into client memory while the client is blocked in its own REGION_WRITE. */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void dmaIsServedWhileTheClientWaitsForItsReply(boolean twin) throws Exception {
        List<String> outcomes = new CopyOnWriteArrayList<>();
        byte[] payload = pattern(6000, 3);
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.twinEnabled = twin;
            server.on(Command.DMA_MAP, (s, c) -> {
                DmaMapRequest m = DmaMapRequest.decode(c.payload());
                outcomes.add("map " + Wire.hex(m.address()) + " fds=" + c.fds().size());
                return Response.of(new DmaMapReply());
            });
            server.on(Command.REGION_WRITE, (s, c) -> {
                RegionWriteRequest r = RegionWriteRequest.decode(c.payload());
                // DMA_WRITE 6000 bytes at 0x10000 + 100 (two messages of ≤ 4096), then read them back.
                for (int done = 0; done < payload.length; ) {
                    int n = Math.min(4096, payload.length - done);
                    s.dma().call(new DmaWriteRequest(0x10000 + 100 + done,
                            MemorySegment.ofArray(payload).asSlice(done, n))).close();
                    outcomes.add("write " + n);
                    done += n;
                }
                try (var reply = s.dma().call(new DmaReadRequest(0x10000 + 100, 4096))) {
                    DmaReadReply d = DmaReadReply.decode(reply.payload());
                    outcomes.add("read " + d.count() + " equal="
                            + java.util.Arrays.equals(d.data().toArray(ValueLayout.JAVA_BYTE), java.util.Arrays.copyOf(payload, 4096)));
                }
                expectError(s, new DmaWriteRequest(0x20000, MemorySegment.ofArray(new byte[8])), outcomes, "read-only");
                expectError(s, new DmaReadRequest(0x90000, 8), outcomes, "unmapped");
                expectError(s, new DmaReadRequest(0x10000 + 0x3C00, 0x800), outcomes, "beyond");
                expectError(s, new DmaWriteRequest(0x10000, MemorySegment.ofArray(new byte[5000])), outcomes, "too big");
                expectError(s, dmaWriteWithCount(0x10000, 8, 16), outcomes, "count not the data's");
                return Response.of(new RegionWriteReply(r.offset(), r.region(), r.count()));
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().maxDataXferSize(4096).build())) {
                assertThat(client.twinSocketActive()).isEqualTo(twin);
                GuestMemory.Region rw = client.memory().allocateWithoutFd(0x10000, 0x4000, true, true);
                GuestMemory.Region ro = client.memory().allocateWithoutFd(0x20000, 0x1000, true, false);
                client.dmaMap(rw);
                client.dmaMap(ro);
                client.write(0, 0, new byte[4]);
                assertThat(outcomes).containsExactly("map 0x10000 fds=0", "map 0x20000 fds=0", "write 4096", "write 1904",
                        "read 4096 equal=true", "read-only: EPERM", "unmapped: EFAULT", "beyond: EFAULT", "too big: E2BIG",
                        "count not the data's: EINVAL");
                assertThat(rw.segment().asSlice(100, payload.length).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(payload);
                assertThat(rw.segment().asSlice(0, 100).toArray(ValueLayout.JAVA_BYTE)).as("refused writes land nowhere")
                        .containsOnly((byte) 0);
                // 100..6100 touches pages 0 and 1 of 4 KiB.
                assertThat(rw.dirtyPageCount()).isEqualTo(2);
                MemorySegment bitmap = rw.readAndClearDirty();
                assertThat(bitmap.get(Wire.U64, 0)).isEqualTo(0b11L);
                assertThat(rw.dirtyPageCount()).isZero();
            }
        }
    }

    /** A DMA_WRITE whose count field ({@code count}) is not the length of its data ({@code dataBytes} of 0xFF). */
    private static RawRequest dmaWriteWithCount(long address, long count, int dataBytes) {
        MemorySegment bytes = MemorySegment.ofArray(new byte[DmaWriteRequest.FIXED_SIZE + dataBytes]);
        bytes.set(Wire.U64, 0, address);
        bytes.set(Wire.U64, 8, count);
        bytes.asSlice(DmaWriteRequest.FIXED_SIZE).fill((byte) 0xFF);
        return new RawRequest(Command.DMA_WRITE, bytes);
    }

    private static void expectError(FakeServer s, io.vfu.core.protocol.Request request, List<String> outcomes, String label)
            throws java.io.IOException {
        try {
            s.dma().call(request).close();
            outcomes.add(label + ": no error");
        } catch (VfioUserException e) {
            outcomes.add(label + ": " + e.errno());
        }
    }

    @Test
    void memfdRegionsArePassedWithDmaMapAndUnmapStopsServing() throws Exception {
        List<String> log = new CopyOnWriteArrayList<>();
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.DMA_MAP, (s, c) -> {
                DmaMapRequest m = DmaMapRequest.decode(c.payload());
                try (MemFd fd = MemFd.adopt(c.fds().take(0)); Mapping view = fd.map(0, m.size(), true)) {
                    view.segment().set(ValueLayout.JAVA_INT, 0, 0xCAFE);
                }
                log.add("map flags=" + m.flags());
                return Response.of(new DmaMapReply());
            });
            server.on(Command.DMA_UNMAP, (s, c) -> {
                var u = io.vfu.core.protocol.DmaUnmapRequest.decode(c.payload());
                return Response.of(io.vfu.core.protocol.DmaUnmapReply.echo(u));
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                GuestMemory.Region r = client.memory().allocate(0x1000, 0x2000, true, true);
                client.dmaMap(r);
                assertThat(r.mapped()).isTrue();
                assertThat(r.segment().get(ValueLayout.JAVA_INT, 0)).isEqualTo(0xCAFE);
                client.dmaUnmap(r);
                assertThat(r.mapped()).isFalse();
                assertThat(log).containsExactly("map flags=3");
            }
        }
    }

    /** A MIG_DATA_READ reply as libvfio-user sends it: {@code n} bytes of {@code stream} from {@code at}, padded to the request. */
    private static Response paddedMigDataReply(MigDataReadRequest r, byte[] stream, int at, int n) {
        byte[] p = new byte[8 + (int) r.size()];
        MemorySegment seg = MemorySegment.ofArray(p);
        seg.set(Wire.U32, 0, 8 + n);
        seg.set(Wire.U32, 4, n);
        MemorySegment.copy(stream, at, seg, ValueLayout.JAVA_BYTE, 8, n);
        return Response.of(RawReply.of(Command.MIG_DATA_READ, p));
    }

    @Test
    void migrationChunksAreCopiedOutAndAReplyLargerThanTheChunkIsRefused() throws Exception {
        byte[] stream = pattern(300, 5);
        AtomicInteger position = new AtomicInteger();
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.MIG_DATA_READ, (s, c) -> {
                MigDataReadRequest r = MigDataReadRequest.decode(c.payload());
                int at = position.get();
                if (at == 200) { // the third read asks for 16 bytes: 32 come back
                    byte[] p = new byte[8 + 32];
                    MemorySegment seg = MemorySegment.ofArray(p);
                    seg.set(Wire.U32, 0, 8 + 32);
                    seg.set(Wire.U32, 4, 32);
                    return Response.of(RawReply.of(Command.MIG_DATA_READ, p));
                }
                int n = (int) Math.min(r.size(), stream.length - at);
                position.addAndGet(n);
                return paddedMigDataReply(r, stream, at, n);
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                byte[] got = new byte[200];
                MemorySegment first = MemorySegment.ofArray(got).asSlice(0, 128);
                MemorySegment second = MemorySegment.ofArray(got).asSlice(128, 72);
                assertThat(client.readMigrationChunk(first)).isEqualTo(128);
                assertThat(client.readMigrationChunk(second)).isEqualTo(72); // in the buffer the first one left
                assertThat(got).isEqualTo(Arrays.copyOf(stream, 200));

                // The kept reply buffer has room for 32, the read asked for 16: the reply is refused as too large
                // (received into the whole kept buffer, it would pass and fail only when copied out).
                assertThatThrownBy(() -> client.readMigrationChunk(MemorySegment.ofArray(new byte[16])))
                        .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.E2BIG));
            }
        }
    }

    @Test
    void migrationDataIsReadUntilAZeroSizeReplyAndWrittenInPieces() throws Exception {
        byte[] stream = pattern(10000, 11);
        AtomicInteger position = new AtomicInteger();
        AtomicInteger replies = new AtomicInteger();
        ByteArrayOutputStream received = new ByteArrayOutputStream();
        List<Long> writeArgsz = Collections.synchronizedList(new ArrayList<>());
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.MIG_DATA_READ, (s, c) -> {
                MigDataReadRequest r = MigDataReadRequest.decode(c.payload());
                int at = position.get();
                // Second reply is short but not final (libvfio-user allows it); replies padded to 8 + requested.
                int n = replies.incrementAndGet() == 2 ? 100 : (int) Math.min(r.size(), stream.length - at);
                position.addAndGet(n);
                return paddedMigDataReply(r, stream, at, n);
            });
            server.on(Command.MIG_DATA_WRITE, (s, c) -> {
                MigDataWriteRequest w = MigDataWriteRequest.decode(c.payload());
                writeArgsz.add(w.argsz());
                received.writeBytes(w.data().toArray(ValueLayout.JAVA_BYTE));
                return Response.of(new MigDataWriteReply());
            });
            server.on(Command.DEVICE_FEATURE, (s, c) -> {
                DeviceFeatureRequest f = DeviceFeatureRequest.decode(c.payload());
                if (f.isSet()) {
                    return Response.of(DeviceFeatureReply.echo(f));
                }
                return Response.of(DeviceFeatureReply.get(DeviceFeature.MIG_DEVICE_STATE,
                        new FeaturePayload.MigDeviceState(MigrationState.STOP_COPY.wireValue())));
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                client.setMigrationState(MigrationState.STOP_COPY);
                assertThat(client.migrationState()).isEqualTo(MigrationState.STOP_COPY);
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                assertThat(client.readMigrationData(out, 4096)).isEqualTo(stream.length);
                assertThat(out.toByteArray()).isEqualTo(stream);
                client.writeMigrationData(new ByteArrayInputStream(stream), 4096);
            }
            assertThat(received.toByteArray()).isEqualTo(stream);
            assertThat(writeArgsz).containsExactly(8L + 4096, 8L + 4096, 8L + 1808);
        }
    }

    /**
     * With a length estimate no request goes beyond it, and one small request checks the end (instead of a
     * whole chunk of padding); a wrong estimate still reads the whole stream.
     */
    @org.junit.jupiter.params.ParameterizedTest(name = "estimate {0}")
    @org.junit.jupiter.params.provider.CsvSource(delimiter = ';', value = {
        "10000; 16384 4096",                         // exact: one chunk, then the end check
        "3000; 16384 4096",                          // too low, but the chunk brought everything
        "0; 4096 16384 16384 16384 16384",           // too low: the end check brings data, then as usual
        "100000; 16384 16384 16384 16384",           // too high: ends with a reply of size 0, as usual
        "-1; 16384 16384 16384 16384"})              // unknown: as usual
    void migrationDataReadWithALengthEstimate(long estimate, String expectedSizes) throws Exception {
        List<Long> sizes = readWithEstimate(pattern(10000, 12), 16384, estimate);
        assertThat(sizes).containsExactlyElementsOf(java.util.Arrays.stream(expectedSizes.split(" "))
                .map(Long::valueOf).toList());
    }

    /**
     * With a length estimate the window is deeper (it is bounded by the estimate): a long stream still arrives
     * whole, an exact estimate sends no request past it (then the one small end check), and one far too high
     * ends with at most a window of requests past the end.
     */
    @org.junit.jupiter.params.ParameterizedTest(name = "estimate {0} x the stream")
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 8})
    void aLongStreamWithAnEstimateThroughTheDeeperWindowArrivesWhole(int times) throws Exception {
        byte[] stream = pattern(200 * 1024 + 123, 5);
        int chunk = 8192;
        int chunks = (stream.length + chunk - 1) / chunk;
        List<Long> sizes = readWithEstimate(stream, chunk, (long) stream.length * times);
        if (times == 1) {
            List<Long> expected = new ArrayList<>(Collections.nCopies(chunks, (long) chunk));
            expected.add((long) VfioUserClient.END_PROBE);
            assertThat(sizes).containsExactlyElementsOf(expected);
        } else {
            assertThat(sizes).hasSizeGreaterThan(chunks).hasSizeLessThanOrEqualTo(chunks + 16)
                    .allMatch(size -> size == chunk);
        }
    }

    /**
     * {@link VfioUserClient#readStopCopyData} sends GET MIG_DATA_SIZE ahead of the first reads, and its answer
     * bounds the reads after them: an exact one ends with the small end check and no read past the stream, a
     * device that cannot estimate (EINVAL) is read as without an estimate, and an answer that is not
     * MIG_DATA_SIZE's (-2 here) fails the read with EPROTO, the reads in flight drained, the client in step.
     */
    @org.junit.jupiter.params.ParameterizedTest(name = "device estimate {0}")
    @org.junit.jupiter.params.provider.ValueSource(longs = {204_923, -1, -2})
    void theStopCopyStreamIsReadWithTheSizeQuerySentAlongWithTheFirstReads(long estimate) throws Exception {
        byte[] stream = pattern(204_923, 7); // 25 reads of 8 KiB and a short one
        int chunk = 8192;
        int chunks = (stream.length + chunk - 1) / chunk;
        List<String> order = Collections.synchronizedList(new ArrayList<>());
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            servesStream(server, stream, r -> order.add(String.valueOf(r.size())));
            server.on(Command.DEVICE_FEATURE, (s, c) -> {
                DeviceFeatureRequest r = DeviceFeatureRequest.decode(c.payload());
                if (r.feature() == DeviceFeature.MIG_DATA_SIZE) {
                    order.add("size");
                    if (estimate == -2) {
                        return Response.of(DeviceFeatureReply.get(DeviceFeature.MIG_DEVICE_STATE,
                                new FeaturePayload.MigDeviceState(MigrationState.STOP_COPY.wireValue())));
                    }
                    if (estimate < 0) {
                        throw new VfioUserException(Errno.EINVAL, "no estimate");
                    }
                    return Response.of(DeviceFeatureReply.get(DeviceFeature.MIG_DATA_SIZE,
                            new FeaturePayload.MigDataSize(estimate)));
                }
                return Response.of(DeviceFeatureReply.get(DeviceFeature.MIG_DEVICE_STATE,
                        new FeaturePayload.MigDeviceState(MigrationState.STOP_COPY.wireValue())));
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                if (estimate == -2) {
                    assertThatThrownBy(() -> client.readStopCopyData(piece -> { }, chunk))
                            .isInstanceOfSatisfying(VfioUserException.class,
                                    e -> assertThat(e.errno()).isEqualTo(Errno.EPROTO));
                } else {
                    long got = client.readStopCopyData(piece -> out.writeBytes(piece.toArray(ValueLayout.JAVA_BYTE)),
                            chunk);
                    assertThat(got).isEqualTo(stream.length);
                    assertThat(out.toByteArray()).isEqualTo(stream);
                }
                assertThat(client.migrationState()).as("every reply consumed").isEqualTo(MigrationState.STOP_COPY);
            }
        }
        assertThat(order.getFirst()).as("the size query goes first").isEqualTo("size");
        if (estimate == -2) {
            return;
        }
        List<String> reads = order.subList(1, order.size());
        if (estimate >= 0) {
            List<String> expected = new ArrayList<>(Collections.nCopies(chunks, String.valueOf(chunk)));
            expected.add(String.valueOf(VfioUserClient.END_PROBE));
            assertThat(reads).as("bounded by the estimate, then the end check").containsExactlyElementsOf(expected);
        } else {
            assertThat(reads).as("as without an estimate: whole chunks until the end, and the window's past it")
                    .hasSizeGreaterThan(chunks).allMatch(size -> size.equals(String.valueOf(chunk)));
        }
    }

    /**
     * Once the size query's answer is in, the reads it allows go out at once, up to the window, while the first
     * chunks are still on their way: the server is not left idle for a round trip per step of a growing window.
     * The sink holds the first chunk until the server has seen the whole window of reads; a client that sent
     * more only after consuming chunks would never get there.
     */
    @Test
    void theWholeWindowOfReadsGoesOutAsSoonAsTheSizeAnswerIsIn() throws Exception {
        byte[] stream = pattern(204_923, 9);
        int chunk = 8192;
        int window = VfioUserClient.heldReadWindow(chunk, true); // the reads share one buffer, replies in order
        java.util.concurrent.CountDownLatch windowSeen = new java.util.concurrent.CountDownLatch(window);
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            servesStream(server, stream, r -> windowSeen.countDown());
            server.on(Command.DEVICE_FEATURE, (s, c) -> DeviceFeatureRequest.decode(c.payload()).feature()
                    == DeviceFeature.MIG_DATA_SIZE
                    ? Response.of(DeviceFeatureReply.get(DeviceFeature.MIG_DATA_SIZE,
                            new FeaturePayload.MigDataSize(stream.length)))
                    : Response.of(DeviceFeatureReply.get(DeviceFeature.MIG_DEVICE_STATE,
                            new FeaturePayload.MigDeviceState(MigrationState.STOP_COPY.wireValue()))));
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                long got = client.readStopCopyData(piece -> {
                    try {
                        if (out.size() == 0) {
                            assertThat(windowSeen.await(10, java.util.concurrent.TimeUnit.SECONDS))
                                    .as("the window's reads reached the server before the first chunk was consumed")
                                    .isTrue();
                        }
                    } catch (InterruptedException e) {
                        throw new java.io.InterruptedIOException();
                    }
                    out.writeBytes(piece.toArray(ValueLayout.JAVA_BYTE));
                }, chunk);
                assertThat(got).isEqualTo(stream.length);
                assertThat(out.toByteArray()).isEqualTo(stream);
            }
        }
    }

    /** Serves {@code stream} to MIG_DATA_READs in order (padded replies), telling {@code seen} of each request. */
    private static void servesStream(FakeServer server, byte[] stream,
                                     java.util.function.Consumer<MigDataReadRequest> seen) {
        AtomicInteger position = new AtomicInteger();
        server.on(Command.MIG_DATA_READ, (s, c) -> {
            MigDataReadRequest r = MigDataReadRequest.decode(c.payload());
            seen.accept(r);
            int at = position.get();
            int n = (int) Math.min(r.size(), stream.length - at);
            position.addAndGet(n);
            return paddedMigDataReply(r, stream, at, n);
        });
    }

    /**
     * Reads {@code stream} from a fake server in STOP_COPY with {@code chunk}-byte requests and the given length
     * estimate, checks that it arrived whole and every reply was consumed; returns the requested sizes in order.
     */
    private List<Long> readWithEstimate(byte[] stream, long chunk, long estimate) throws Exception {
        List<Long> sizes = Collections.synchronizedList(new ArrayList<>());
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            servesStream(server, stream, r -> sizes.add(r.size()));
            reportsState(server, MigrationState.STOP_COPY);
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                long got = client.readMigrationData(piece -> out.writeBytes(piece.toArray(ValueLayout.JAVA_BYTE)),
                        chunk, estimate);
                assertThat(got).isEqualTo(stream.length);
                assertThat(out.toByteArray()).isEqualTo(stream);
                assertThat(client.migrationState()).as("every reply consumed").isEqualTo(MigrationState.STOP_COPY);
            }
        }
        return new ArrayList<>(sizes);
    }

    /**
     * A long stream read through the deep window (the client reads its socket itself here: all requests in
     * flight share one reply buffer) arrives whole and in order; the sink must not call the client meanwhile.
     */
    @Test
    void aLongStreamThroughTheDeepReadWindowArrivesWholeAndTheSinkMayNotCallTheClient() throws Exception {
        byte[] stream = pattern(200 * 1024 + 123, 7);
        AtomicInteger position = new AtomicInteger();
        AtomicInteger requests = new AtomicInteger();
        AtomicInteger stateQueries = new AtomicInteger();
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.MIG_DATA_READ, (s, c) -> {
                MigDataReadRequest r = MigDataReadRequest.decode(c.payload());
                requests.incrementAndGet();
                int at = position.get();
                int n = (int) Math.min(r.size(), stream.length - at);
                position.addAndGet(n);
                return paddedMigDataReply(r, stream, at, n);
            });
            server.on(Command.DEVICE_FEATURE, (s, c) -> {
                stateQueries.incrementAndGet();
                return Response.of(DeviceFeatureReply.get(DeviceFeature.MIG_DEVICE_STATE,
                        new FeaturePayload.MigDeviceState(MigrationState.STOP_COPY.wireValue())));
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                assertThat(client.readMigrationData(chunk -> out.writeBytes(chunk.toArray(ValueLayout.JAVA_BYTE)), 4096))
                        .isEqualTo(stream.length);
                assertThat(out.toByteArray()).isEqualTo(stream);
                int chunks = (stream.length + 4095) / 4096;
                assertThat(requests.get()).as("beyond the end: at most a window of requests")
                        .isGreaterThan(chunks).isLessThanOrEqualTo(chunks + 16);

                position.set(0);
                int queries = stateQueries.get();
                assertThatThrownBy(() -> client.readMigrationData(chunk -> client.migrationState(), 4096))
                        .isInstanceOf(IllegalStateException.class);
                // The requests in flight were drained: the next call gets its own reply (and the server saw no
                // query from the sink, handled in order before this one).
                assertThat(client.migrationState()).isEqualTo(MigrationState.STOP_COPY);
                assertThat(stateQueries.get()).as("the sink's call was not sent").isEqualTo(queries + 1);
            }
        }
    }

    @Test
    void aFailedChunkInTheReadPipelineFailsTheReadAndLeavesTheClientInStep() throws Exception {
        AtomicInteger requests = new AtomicInteger();
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.MIG_DATA_READ, (s, c) -> {
                MigDataReadRequest r = MigDataReadRequest.decode(c.payload());
                if (requests.incrementAndGet() == 3) {
                    throw new VfioUserException(Errno.EIO, "device failed");
                }
                byte[] p = new byte[8 + (int) r.size()];
                MemorySegment seg = MemorySegment.ofArray(p);
                seg.set(Wire.U32, 0, 8 + (int) r.size());
                seg.set(Wire.U32, 4, (int) r.size());
                return Response.of(RawReply.of(Command.MIG_DATA_READ, p));
            });
            reportsState(server, MigrationState.STOP_COPY);
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                List<Long> chunks = new ArrayList<>();
                assertThatThrownBy(() -> client.readMigrationData(chunk -> chunks.add(chunk.byteSize()), 4096))
                        .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EIO));
                assertThat(chunks).as("the chunks before the failure were delivered, none after").containsExactly(4096L, 4096L);
                assertThat(requests.get()).as("requests were in flight together").isGreaterThan(3);
                // Every reply to a request in flight was consumed: the next call gets its own reply.
                assertThat(client.migrationState()).isEqualTo(MigrationState.STOP_COPY);
            }
        }
    }

    /** The fake server answers DEVICE_FEATURE GET MIG_DEVICE_STATE with {@code state}. */
    private static void reportsState(FakeServer server, MigrationState state) {
        server.on(Command.DEVICE_FEATURE, (s, c) -> Response.of(DeviceFeatureReply.get(DeviceFeature.MIG_DEVICE_STATE,
                new FeaturePayload.MigDeviceState(state.wireValue()))));
    }

    /** Writes {@code chunk} {@code n} times through a {@link VfioUserClient.MigrationDataWriter}, closed at the end. */
    private static void writeThroughAWriter(VfioUserClient client, MemorySegment chunk, int n) throws Exception {
        try (VfioUserClient.MigrationDataWriter writer = client.migrationDataWriter()) {
            for (int i = 0; i < n; i++) {
                writer.write(chunk);
            }
        }
    }

    /** A MIG_DATA_WRITE reply must be empty (§11.6): a pipelined write refuses one with a payload, as a single write does. */
    @Test
    void aMigrationWriteReplyWithAPayloadIsRefused() throws Exception {
        AtomicInteger writes = new AtomicInteger();
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.MIG_DATA_WRITE, (s, c) -> writes.incrementAndGet() == 3
                    ? Response.of(RawReply.of(Command.MIG_DATA_WRITE, new byte[8]))
                    : Response.of(new MigDataWriteReply()));
            reportsState(server, MigrationState.RESUMING);
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                MemorySegment chunk = MemorySegment.ofArray(new byte[512]);
                assertThatThrownBy(() -> writeThroughAWriter(client, chunk, 5)).isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
                assertThat(client.migrationState()).as("every reply consumed").isEqualTo(MigrationState.RESUMING);
            }
        }
    }

    @Test
    void aFailedMigrationWriteIsReportedOnceAndTheClientStaysInStep() throws Exception {
        AtomicInteger writes = new AtomicInteger();
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.MIG_DATA_WRITE, (s, c) -> {
                if (writes.incrementAndGet() == 2) {
                    throw new VfioUserException(Errno.EINVAL, "device rejects chunk");
                }
                return Response.of(new MigDataWriteReply());
            });
            reportsState(server, MigrationState.RESUMING);
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                MemorySegment chunk = MemorySegment.ofArray(new byte[512]);
                // Through try-with-resources: the failure surfaces from a later write or from close, exactly once.
                assertThatThrownBy(() -> writeThroughAWriter(client, chunk, 8)).isInstanceOfSatisfying(VfioUserException.class, e -> {
                    assertThat(e.errno()).isEqualTo(Errno.EINVAL);
                    assertThat(e.getSuppressed()).isEmpty();
                });
                try (VfioUserClient.MigrationDataWriter writer = client.migrationDataWriter()) {
                    assertThatThrownBy(() -> writer.write(MemorySegment.ofArray(new byte[0])))
                            .isInstanceOf(IllegalArgumentException.class);
                    assertThatThrownBy(() -> writer.write(MemorySegment.ofArray(new byte[(int) client.transferSize() + 1])))
                            .isInstanceOf(IllegalArgumentException.class);
                }
                writes.set(0);
                assertThatThrownBy(() -> client.writeMigrationData(new ByteArrayInputStream(new byte[4096 * 6]), 4096))
                        .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
                assertThat(client.migrationState()).isEqualTo(MigrationState.RESUMING);
            }
        }
    }

    @Test
    void serverErrnoIsReported() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir));
             VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
            // No script for DEVICE_RESET: the fake server answers EINVAL.
            assertThat(server.versionRequest).isNotNull();
            assertThatThrownBy(client::reset)
                    .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
            assertThat(client.featureProbe(DeviceFeature.MIG_DATA_SIZE, DeviceFeature.GET)).isFalse();
        }
    }

    @Test
    void postedWritesAndDirtyReports() throws Exception {
        List<String> log = new CopyOnWriteArrayList<>();
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.on(Command.REGION_WRITE, (s, c) -> {
                RegionWriteRequest r = RegionWriteRequest.decode(c.payload());
                log.add("write " + r.count() + " noReply=" + c.header().noReply());
                return Response.of(new RegionWriteReply(r.offset(), r.region(), r.count()));
            });
            server.on(Command.DEVICE_FEATURE, (s, c) -> {
                DeviceFeatureRequest f = DeviceFeatureRequest.decode(c.payload());
                FeaturePayload.DmaLoggingReportQuery q = (FeaturePayload.DmaLoggingReportQuery) f.featureData();
                byte[] bitmap = new byte[(int) q.bitmapSize()];
                bitmap[0] = 0b101;
                return Response.of(DeviceFeatureReply.get(DeviceFeature.DMA_LOGGING_REPORT,
                        new FeaturePayload.DmaLoggingReport(q, MemorySegment.ofArray(bitmap))));
            });
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                client.postWrite(1, 0, MemorySegment.ofArray(new byte[8]));
                MemorySegment bitmap = client.dmaLoggingReport(0x10000, 0x100000, 4096);
                assertThat(bitmap.byteSize()).isEqualTo(32);
                assertThat(bitmap.get(ValueLayout.JAVA_BYTE, 0)).isEqualTo((byte) 0b101);
                assertThatThrownBy(() -> client.dmaLoggingReport(0, 1L << 50, 4096))
                        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("exceeds the limit");
            }
            // The report's reply implies the posted write was processed first (ordering, §2).
            assertThat(log).containsExactly("write 8 noReply=true");
        }
    }
}
