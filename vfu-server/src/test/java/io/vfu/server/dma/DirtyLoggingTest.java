package io.vfu.server.dma;

import static io.vfu.core.protocol.DmaMapRequest.FLAG_READ;
import static io.vfu.core.protocol.DmaMapRequest.FLAG_WRITE;
import static io.vfu.server.dma.DmaControllerTest.assertErrno;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.Fds;
import io.vfu.core.linux.MemFd;
import io.vfu.core.protocol.DirtyBitmap;
import io.vfu.core.protocol.DmaMapRequest;
import io.vfu.core.protocol.FeaturePayload.DmaLoggingControl;
import io.vfu.core.protocol.FeaturePayload.DmaLoggingControl.Range;
import io.vfu.core.protocol.FeaturePayload.DmaLoggingReport;
import io.vfu.core.protocol.FeaturePayload.DmaLoggingReportQuery;
import io.vfu.core.testing.NoFdLeaks;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Layout: an fd-backed mapping at 0x100000 (16 pages) and a message mapping at 0x110000 (16 pages), logged
 * as one range at 4 KiB unless a test says otherwise.
 */
@ExtendWith(NoFdLeaks.class)
class DirtyLoggingTest {
    static final long FD_BASE = 0x100000;
    static final long MSG_BASE = 0x110000;
    static final long PAGE = 4096;

    MemFd mem;
    FakeMessenger client;
    DmaController dma;

    @BeforeEach
    void setUp() throws Exception {
        mem = MemFd.create("dirty", 16 * PAGE);
        client = new FakeMessenger(MSG_BASE, (int) (16 * PAGE), 1 << 20);
        dma = new DmaController(client, 64);
        dma.map(new DmaMapRequest(FLAG_READ | FLAG_WRITE, 0, FD_BASE, 16 * PAGE), Fds.dup(mem.fd()));
        dma.map(new DmaMapRequest(FLAG_READ | FLAG_WRITE, 0, MSG_BASE, 16 * PAGE), -1);
    }

    @AfterEach
    void tearDown() {
        dma.close();
        mem.close();
    }

    static DmaLoggingControl control(long pageSize, Range... ranges) {
        return new DmaLoggingControl(pageSize, List.of(ranges));
    }

    /** Dirty page numbers of a report, from its bitmap. */
    static List<Long> pages(DmaLoggingReport r) {
        List<Long> out = new ArrayList<>();
        long n = DirtyBitmap.pageCount(r.length(), r.pageSize());
        for (long p = 0; p < r.bitmap().byteSize() * 8; p++) {
            if (DirtyBitmap.test(r.bitmap(), p)) {
                assertThat(p).as("bit past the range").isLessThan(n);
                out.add(p);
            }
        }
        return out;
    }

    List<Long> report(long iova, long length, long pageSize) {
        DmaLoggingReport r = dma.report(new DmaLoggingReportQuery(iova, length, pageSize));
        assertThat(r.bitmap().byteSize()).isEqualTo(DirtyBitmap.byteSize(length, pageSize));
        assertThat(r.iova()).isEqualTo(iova);
        return pages(r);
    }

    void write(long iova, long length) {
        dma.write(iova, Arena.ofAuto().allocate(length));
    }

    @Test
    void writesInBothKindsOfMappingAreReportedOnceAtTwoPageSizes() {
        DmaLoggingControl echo = dma.startLogging(control(PAGE, new Range(FD_BASE, 32 * PAGE)));
        assertThat(echo).isEqualTo(control(PAGE, new Range(FD_BASE, 32 * PAGE)));
        assertThat(dma.logging()).isTrue();
        write(FD_BASE + PAGE + 5, 1); // page 1
        write(FD_BASE + 3 * PAGE + 0x800, 0x2000); // pages 3, 4, 5
        write(MSG_BASE + 2 * PAGE, 8); // page 18
        dma.markDirty(MSG_BASE + 15 * PAGE, 1); // page 31
        dma.read(FD_BASE + 9 * PAGE, Arena.ofAuto().allocate(PAGE)); // reads are not logged

        assertThat(report(FD_BASE, 8 * PAGE, PAGE)).containsExactly(1L, 3L, 4L, 5L);
        assertThat(report(FD_BASE, 8 * PAGE, PAGE)).isEmpty(); // read-and-clear
        // message mapping at 8 KiB pages: byte offsets 0x2000 and 0xf000
        assertThat(report(MSG_BASE, 16 * PAGE, 2 * PAGE)).containsExactly(1L, 7L);
        assertThat(report(MSG_BASE, 16 * PAGE, 2 * PAGE)).isEmpty();

        // finer than tracking (replicate) and coarser (OR)
        write(FD_BASE + PAGE, 1);
        write(FD_BASE + 6 * PAGE, 1);
        write(FD_BASE + 7 * PAGE, 1);
        assertThat(report(FD_BASE, 4 * PAGE, 1024)).containsExactly(4L, 5L, 6L, 7L);
        assertThat(report(FD_BASE, 32 * PAGE, 4 * PAGE)).containsExactly(1L); // pages 6 and 7 -> 16 KiB page 1
        assertThat(report(FD_BASE, 32 * PAGE, 4 * PAGE)).isEmpty();
    }

    @Test
    void onlyTheReportedPagesAreClearedAndBitsOutsideTheRangeAreZero() {
        dma.startLogging(control(PAGE, new Range(FD_BASE, 16 * PAGE)));
        write(FD_BASE, 5 * PAGE); // pages 0..4
        DmaLoggingReport r = dma.report(new DmaLoggingReportQuery(FD_BASE + PAGE, 3 * PAGE, PAGE));
        assertThat(r.bitmap().get(JAVA_LONG_UNALIGNED, 0)).isEqualTo(0b111L); // pages 1..3 only
        assertThat(report(FD_BASE, 16 * PAGE, PAGE)).containsExactly(0L, 4L);
    }

    @Test
    void aReportIntoAReusedBufferClearsWhatWasInIt() {
        dma.startLogging(control(PAGE, new Range(FD_BASE, 16 * PAGE)));
        MemorySegment reused = Arena.ofAuto().allocate(64, 8);
        reused.fill((byte) -1); // the previous report's bits, or anything
        write(FD_BASE + 2 * PAGE, 1);
        DmaLoggingReport r = dma.report(new DmaLoggingReportQuery(FD_BASE, 16 * PAGE, PAGE),
                (size, alignment) -> reused.asSlice(0, size));
        assertThat(r.bitmap().address()).isEqualTo(reused.address());
        assertThat(pages(r)).containsExactly(2L);
    }

    @Test
    void unalignedReportKeepsPartlyCoveredTrackingPages() {
        dma.startLogging(control(PAGE, new Range(FD_BASE, 16 * PAGE)));
        write(FD_BASE + 0x10, 1); // page 0
        write(FD_BASE + PAGE + 0x10, 1); // page 1
        // [0x800, 0x1800) at 2 KiB: half of page 0, half of page 1
        assertThat(report(FD_BASE + 0x800, PAGE, 2048)).containsExactly(0L, 1L);
        assertThat(report(FD_BASE + 0x800, PAGE, 2048)).containsExactly(0L, 1L); // kept: only partly reported
        assertThat(report(FD_BASE, 2 * PAGE, PAGE)).containsExactly(0L, 1L);
        assertThat(report(FD_BASE + 0x800, PAGE, 2048)).isEmpty();
    }

    @Test
    void rangesAreHonoured() {
        DmaLoggingControl ranges = control(PAGE, new Range(FD_BASE + 2 * PAGE, 2 * PAGE),
                new Range(FD_BASE + 4 * PAGE, 2 * PAGE), new Range(MSG_BASE, PAGE));
        dma.startLogging(ranges);
        write(FD_BASE, 16 * PAGE); // everything: only pages 2..5 are in the ranges
        write(MSG_BASE, 2 * PAGE);
        assertErrno(() -> dma.report(new DmaLoggingReportQuery(FD_BASE, 6 * PAGE, PAGE)), Errno.EINVAL);
        assertErrno(() -> dma.report(new DmaLoggingReportQuery(FD_BASE + 5 * PAGE, 2 * PAGE, PAGE)), Errno.EINVAL);
        assertErrno(() -> dma.report(new DmaLoggingReportQuery(MSG_BASE, 2 * PAGE, PAGE)), Errno.EINVAL);
        assertThat(report(FD_BASE + 2 * PAGE, 4 * PAGE, PAGE)).containsExactly(0L, 1L, 2L, 3L); // adjacent union
        assertThat(report(MSG_BASE, PAGE, PAGE)).containsExactly(0L);
    }

    @Test
    void numRangesZeroLogsEverythingIncludingLaterMappings() throws Exception {
        dma.startLogging(control(PAGE));
        dma.map(new DmaMapRequest(FLAG_READ | FLAG_WRITE, 0, 0x200000, 4 * PAGE), Fds.dup(mem.fd()));
        write(0x200000 + 3 * PAGE, 1);
        write(FD_BASE + 15 * PAGE, 1);
        assertThat(report(0x200000, 4 * PAGE, PAGE)).containsExactly(3L);
        assertThat(report(0, 1L << 32, 1L << 20)).containsExactly(1L); // 1 MiB page 1 holds FD_BASE + 15 pages
        assertThat(report(0, 1L << 32, 1L << 20)).isEmpty();
    }

    @Test
    void startValidationAndTheEcho() {
        assertErrno(() -> dma.startLogging(control(0)), Errno.EINVAL);
        assertErrno(() -> dma.startLogging(control(3 * PAGE)), Errno.EINVAL);
        assertErrno(() -> dma.startLogging(control(PAGE, new Range(FD_BASE, 0))), Errno.EINVAL);
        assertErrno(() -> dma.startLogging(control(PAGE, new Range(FD_BASE, 2 * PAGE),
                new Range(FD_BASE + PAGE, PAGE))), Errno.EINVAL);
        assertErrno(() -> dma.startLogging(control(PAGE, new Range(0, 1L << 50))), Errno.E2BIG);
        assertThat(dma.logging()).isFalse();
        assertErrno(() -> dma.report(new DmaLoggingReportQuery(FD_BASE, PAGE, PAGE)), Errno.EINVAL);
        dma.stopLogging(); // not logging: no-op

        DmaLoggingControl fine = control(512, new Range(FD_BASE, 16 * PAGE));
        assertThat(dma.startLogging(fine).pageSize()).isEqualTo(DmaController.MIN_TRACKING_PAGE_SIZE);
        assertThat(dma.startLogging(fine).pageSize()).isEqualTo(PAGE); // identical START: idempotent
        DmaLoggingControl garbageReserved = new DmaLoggingControl(512, 0xdead, fine.ranges());
        assertThat(dma.startLogging(garbageReserved)).isEqualTo(new DmaLoggingControl(PAGE, 0xdead, fine.ranges()));
        assertErrno(() -> dma.startLogging(control(PAGE, new Range(FD_BASE, 16 * PAGE))), Errno.EINVAL);
        write(FD_BASE, 1);
        assertThat(report(FD_BASE, 16 * PAGE, 512)).containsExactly(0L, 1L, 2L, 3L, 4L, 5L, 6L, 7L);
        assertErrno(() -> dma.report(new DmaLoggingReportQuery(FD_BASE, 0, PAGE)), Errno.EINVAL);
        dma.stopLogging();
        assertThat(dma.logging()).isFalse();
        write(FD_BASE, 1); // not logged, no failure
        assertThat(dma.startLogging(control(1L << 21)).pageSize()).isEqualTo(1L << 21); // coarser kept
        assertThat(report(FD_BASE, 16 * PAGE, PAGE)).isEmpty(); // STOP dropped the old bits
    }

    @Test
    void hugeReportIsE2bigBeforeAllocating() {
        dma.startLogging(control(PAGE));
        assertErrno(() -> dma.report(new DmaLoggingReportQuery(0, 1L << 62, PAGE)), Errno.E2BIG);
        // one page more than 256 MiB of bitmap covers
        assertErrno(() -> dma.report(new DmaLoggingReportQuery(0, (DmaController.MAX_BITMAP_BYTES * 8) + 1, 1)),
                Errno.E2BIG);
        write(MSG_BASE, 1);
        assertThat(report(0, -1L, 1L << 40)).containsExactly(0L); // the whole space at 1 TiB pages
    }

    @Test
    void writesFromSeveralThreadsAreAllLogged() throws Exception {
        dma.startLogging(control(PAGE, new Range(FD_BASE, 16 * PAGE)));
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            int first = t;
            threads.add(Thread.ofPlatform().start(() -> {
                for (int p = first; p < 16; p += 4) {
                    dma.write(FD_BASE + p * PAGE, MemorySegment.ofArray(new byte[8]));
                }
            }));
        }
        for (Thread t : threads) {
            t.join();
        }
        assertThat(report(FD_BASE, 16 * PAGE, PAGE)).hasSize(16);
    }
}
