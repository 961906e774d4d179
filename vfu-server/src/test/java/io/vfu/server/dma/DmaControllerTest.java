package io.vfu.server.dma;

import static io.vfu.core.protocol.DmaMapRequest.FLAG_READ;
import static io.vfu.core.protocol.DmaMapRequest.FLAG_WRITE;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.Fds;
import io.vfu.core.linux.Mapping;
import io.vfu.core.linux.MemFd;
import io.vfu.core.protocol.DmaMapRequest;
import io.vfu.core.protocol.DmaUnmapRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.testing.NoFdLeaks;
import io.vfu.server.dma.FakeMessenger.Call;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.assertj.core.api.AbstractThrowableAssert;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(NoFdLeaks.class)
class DmaControllerTest {
    static final int RW = FLAG_READ | FLAG_WRITE;

    static AbstractThrowableAssert<?, ? extends Throwable> assertErrno(ThrowingCallable call, Errno errno) {
        return assertThatThrownBy(call).isInstanceOfSatisfying(VfioUserException.class,
                e -> assertThat(e.errno()).isEqualTo(errno));
    }

    static MemorySegment bytes(int n, int seed) {
        MemorySegment s = Arena.ofAuto().allocate(n);
        for (int i = 0; i < n; i++) {
            s.set(JAVA_BYTE, i, (byte) (i * 7 + seed));
        }
        return s;
    }

    @Test
    void mapUnmapAndUnknownUnmap() {
        try (DmaController dma = new DmaController()) {
            dma.map(new DmaMapRequest(RW, 0, 0x1000, 0x2000), -1);
            dma.map(new DmaMapRequest(RW, 0, 0x3000, 0x1000), -1); // adjacent: no overlap
            assertThat(dma.mappingCount()).isEqualTo(2);
            assertErrno(() -> dma.unmap(new DmaUnmapRequest(0x1000, 0x1000)), Errno.ENOENT); // size differs
            assertErrno(() -> dma.unmap(new DmaUnmapRequest(0x2000, 0x1000)), Errno.ENOENT); // inside, not base
            assertErrno(() -> dma.unmap(new DmaUnmapRequest(0x9000, 0x1000)), Errno.ENOENT);
            dma.unmap(new DmaUnmapRequest(0x1000, 0x2000));
            assertThat(dma.mappingCount()).isEqualTo(1);
            assertErrno(() -> dma.unmap(new DmaUnmapRequest(0x1000, 0x2000)), Errno.ENOENT); // already gone
            dma.unmap(DmaUnmapRequest.all());
            assertThat(dma.mappingCount()).isZero();
        }
    }

    @Test
    void exactDuplicateIsAcceptedAndOverlapIsEexist() throws Exception {
        try (MemFd mem = MemFd.create("dup", 0x4000); MemFd other = MemFd.create("other", 0x4000);
                DmaController dma = new DmaController()) {
            dma.map(new DmaMapRequest(RW, 0x1000, 0x10000, 0x2000), Fds.dup(mem.fd()));
            dma.map(new DmaMapRequest(RW, 0x1000, 0x10000, 0x2000), Fds.dup(mem.fd())); // same: no-op, fd closed
            assertThat(dma.mappingCount()).isEqualTo(1);
            // same numbers, another file
            assertErrno(() -> dma.map(new DmaMapRequest(RW, 0x1000, 0x10000, 0x2000), Fds.dup(other.fd())),
                    Errno.EEXIST);
            // same range without fd, other flags, other offset, partial overlaps
            assertErrno(() -> dma.map(new DmaMapRequest(RW, 0x1000, 0x10000, 0x2000), -1), Errno.EEXIST);
            assertErrno(() -> dma.map(new DmaMapRequest(FLAG_READ, 0x1000, 0x10000, 0x2000), Fds.dup(mem.fd())),
                    Errno.EEXIST);
            assertErrno(() -> dma.map(new DmaMapRequest(RW, 0, 0x10000, 0x2000), Fds.dup(mem.fd())), Errno.EEXIST);
            assertErrno(() -> dma.map(new DmaMapRequest(RW, 0, 0x11fff, 1), -1), Errno.EEXIST);
            assertErrno(() -> dma.map(new DmaMapRequest(RW, 0, 0xf000, 0x1001), -1), Errno.EEXIST);
            assertErrno(() -> dma.map(new DmaMapRequest(RW, 0, 0x8000, 0x10000), -1), Errno.EEXIST); // covers it
            dma.map(new DmaMapRequest(RW, 0, 0xf000, 0x1000), -1);
            dma.map(new DmaMapRequest(RW, 0, 0x12000, 0x1000), -1);
            dma.map(new DmaMapRequest(RW, 0, 0x12000, 0x1000), -1); // duplicate without fd
            assertThat(dma.mappingCount()).isEqualTo(3);
        }
    }

    @Test
    void tableFullIsEnospcAndBadFdRangeIsEinval() throws Exception {
        try (MemFd mem = MemFd.create("small", 0x2000); DmaController dma = new DmaController(null, 2)) {
            // beyond the end of the 8 KiB file: refused (would SIGBUS), fd consumed
            assertErrno(() -> dma.map(new DmaMapRequest(RW, 0x1000, 0x10000, 0x2000), Fds.dup(mem.fd())),
                    Errno.EINVAL);
            assertErrno(() -> dma.map(new DmaMapRequest(RW, 0, 0x10000, 0), -1), Errno.EINVAL);
            assertErrno(() -> dma.map(new DmaMapRequest(RW, 0, -0x1000, 0x1000), -1), Errno.EINVAL); // wraps
            dma.map(new DmaMapRequest(RW, 0, 0x10000, 0x2000), Fds.dup(mem.fd()));
            dma.map(new DmaMapRequest(RW, 0, 0x20000, 0x2000), -1);
            assertErrno(() -> dma.map(new DmaMapRequest(RW, 0, 0x30000, 0x2000), Fds.dup(mem.fd())), Errno.ENOSPC);
            dma.map(new DmaMapRequest(RW, 0, 0x20000, 0x2000), -1); // a duplicate still succeeds when full
            dma.unmapAll();
            assertThat(dma.mappingCount()).isZero();
        }
    }

    @Test
    void mapAfterCloseFailsAndClosesTheFd() throws Exception {
        try (MemFd mem = MemFd.create("closed", 0x1000)) {
            DmaController dma = new DmaController();
            dma.map(new DmaMapRequest(RW, 0, 0x1000, 0x1000), Fds.dup(mem.fd()));
            dma.close();
            dma.close();
            assertThat(dma.mappingCount()).isZero();
            assertThatThrownBy(() -> dma.map(new DmaMapRequest(RW, 0, 0x1000, 0x1000), Fds.dup(mem.fd())))
                    .isInstanceOf(IllegalStateException.class);
        }
    }

    @Test
    void hundredThousandMappings() {
        int n = 100_000;
        FakeMessenger client = new FakeMessenger(1 << 20);
        try (DmaController dma = new DmaController(client, 200_000)) {
            for (int i = 0; i < n; i++) { // interleaved order to exercise inserts in the middle
                long slot = (i * 7919L) % n;
                dma.map(new DmaMapRequest(i % 2 == 0 ? RW : FLAG_READ, 0, 0x1_0000_0000L + slot * 0x2000, 0x1000), -1);
            }
            assertThat(dma.mappingCount()).isEqualTo(n);
            MemorySegment word = Arena.ofAuto().allocate(8);
            for (int slot = 0; slot < n; slot++) {
                long iova = 0x1_0000_0000L + slot * 0x2000L;
                assertThat(dma.directView(iova, 8, false)).isNull(); // no fd: no view, but the lookup ran
                dma.read(iova + 0xff8, word);
                if (slot % 2 == 0) {
                    dma.write(iova, word);
                }
                if (slot % 1000 == 1) { // failures are slow (exceptions): check a sample
                    assertErrno(() -> dma.read(iova + 0x1000, word), Errno.EFAULT); // the gap after each mapping
                    assertErrno(() -> dma.write(iova, word), Errno.EPERM);
                }
            }
            assertThat(client.calls).hasSize(n + n / 2);
            for (int slot = 0; slot < n; slot += 2) {
                dma.unmap(new DmaUnmapRequest(0x1_0000_0000L + slot * 0x2000L, 0x1000));
            }
            assertThat(dma.mappingCount()).isEqualTo(n / 2);
        }
    }

    @Test
    void readWriteThroughFdAtUnalignedOffset() throws Exception {
        try (MemFd mem = MemFd.create("guest", 0x4000); Mapping own = mem.map(0, 0x4000, true);
                DmaController dma = new DmaController()) {
            dma.map(new DmaMapRequest(RW, 0x1800, 0x10000, 0x1000), Fds.dup(mem.fd()));
            MemorySegment data = bytes(100, 3);
            dma.write(0x10010, data);
            assertThat(own.segment().asSlice(0x1810, 100).mismatch(data)).isEqualTo(-1);
            assertThat(own.segment().get(JAVA_BYTE, 0x180f)).isZero();

            own.segment().set(JAVA_LONG, 0x1800 + 0xff8, 0x0102030405060708L);
            MemorySegment out = Arena.ofAuto().allocate(8);
            dma.read(0x10ff8, out);
            assertThat(out.get(JAVA_LONG, 0)).isEqualTo(0x0102030405060708L);

            MemorySegment view = dma.directView(0x10ff8, 8, false);
            assertThat(view.get(JAVA_LONG, 0)).isEqualTo(0x0102030405060708L);
            assertThat(view.isReadOnly()).isTrue();
            assertThat(dma.directView(0x10ff8, 9, false)).isNull(); // past the end
            MemorySegment writable = dma.directView(0x10000, 0x1000, true);
            writable.set(JAVA_LONG, 0, 42L);
            assertThat(own.segment().get(JAVA_LONG, 0x1800)).isEqualTo(42L);

            dma.unmap(new DmaUnmapRequest(0x10000, 0x1000));
            assertThatThrownBy(() -> writable.get(JAVA_LONG, 0)).isInstanceOf(IllegalStateException.class);
            assertErrno(() -> dma.read(0x10000, out), Errno.EFAULT);
        }
    }

    @Test
    void messageModeIsChunkedByMaxTransferSize() {
        FakeMessenger client = new FakeMessenger(0x20000, 0x10000, 4096);
        try (DmaController dma = new DmaController(client, 16)) {
            dma.map(new DmaMapRequest(RW, 0, 0x20000, 0x10000), -1);
            MemorySegment data = bytes(10 * 1024, 9);
            dma.write(0x20100, data);
            assertThat(client.calls).containsExactly(new Call(true, 0x20100, 4096), new Call(true, 0x21100, 4096),
                    new Call(true, 0x22100, 2048));
            assertThat(client.memory.asSlice(0x100, 10 * 1024).mismatch(data)).isEqualTo(-1);

            client.calls.clear();
            MemorySegment back = Arena.ofAuto().allocate(10 * 1024);
            dma.read(0x20100, back);
            assertThat(client.calls).containsExactly(new Call(false, 0x20100, 4096), new Call(false, 0x21100, 4096),
                    new Call(false, 0x22100, 2048));
            assertThat(back.mismatch(data)).isEqualTo(-1);

            client.fail = true;
            assertErrno(() -> dma.read(0x20000, back), Errno.EIO);
            dma.messenger(null);
            assertErrno(() -> dma.write(0x20000, data), Errno.EIO);
        }
    }

    @Test
    void accessSpanningAnFdMappingAndAMessageMapping() throws Exception {
        FakeMessenger client = new FakeMessenger(0x31000, 0x1000, 1024);
        try (MemFd mem = MemFd.create("span", 0x1000); Mapping own = mem.map(0, 0x1000, false);
                DmaController dma = new DmaController(client, 16)) {
            dma.map(new DmaMapRequest(RW, 0, 0x30000, 0x1000), Fds.dup(mem.fd()));
            dma.map(new DmaMapRequest(RW, 0, 0x31000, 0x1000), -1);
            MemorySegment data = bytes(0x800, 1);
            dma.write(0x30c00, data);
            assertThat(own.segment().asSlice(0xc00, 0x400).mismatch(data.asSlice(0, 0x400))).isEqualTo(-1);
            assertThat(client.calls).containsExactly(new Call(true, 0x31000, 0x400));
            assertThat(client.memory.asSlice(0, 0x400).mismatch(data.asSlice(0x400))).isEqualTo(-1);
            MemorySegment back = Arena.ofAuto().allocate(0x800);
            dma.read(0x30c00, back);
            assertThat(back.mismatch(data)).isEqualTo(-1);
            // one byte beyond the second mapping: the whole access fails before anything is sent
            client.calls.clear();
            assertErrno(() -> dma.write(0x30c00, bytes(0x1401, 0)), Errno.EFAULT);
            assertThat(client.calls).isEmpty();
            assertThat(own.segment().asSlice(0xc00, 0x400).mismatch(data.asSlice(0, 0x400))).isEqualTo(-1);
        }
    }

    @Test
    void permissionsAndUnmappedAddresses() throws Exception {
        FakeMessenger client = new FakeMessenger(0x50000, 0x1000, 4096);
        try (MemFd mem = MemFd.create("perm", 0x2000); DmaController dma = new DmaController(client, 16)) {
            dma.map(new DmaMapRequest(FLAG_READ, 0, 0x40000, 0x1000), Fds.dup(mem.fd()));
            dma.map(new DmaMapRequest(FLAG_WRITE, 0x1000, 0x41000, 0x1000), Fds.dup(mem.fd()));
            dma.map(new DmaMapRequest(FLAG_READ, 0, 0x50000, 0x1000), -1);
            dma.map(new DmaMapRequest(0, 0, 0x60000, 0x1000), Fds.dup(mem.fd()));
            MemorySegment word = Arena.ofAuto().allocate(8);
            dma.read(0x40000, word);
            assertErrno(() -> dma.write(0x40000, word), Errno.EPERM);
            dma.write(0x41000, word);
            assertErrno(() -> dma.read(0x41000, word), Errno.EPERM);
            assertErrno(() -> dma.write(0x50000, word), Errno.EPERM);
            assertErrno(() -> dma.read(0x60000, word), Errno.EPERM);
            assertErrno(() -> dma.write(0x40ffc, word), Errno.EPERM); // spans R-only then W-only
            assertThat(dma.directView(0x40000, 8, true)).isNull();
            assertThat(dma.directView(0x41000, 8, false)).isNull();
            assertThat(dma.directView(0x41000, 8, true)).isNotNull();
            assertErrno(() -> dma.read(0x3fff8, word), Errno.EFAULT);
            assertErrno(() -> dma.read(0x3fffc, word), Errno.EFAULT); // partially mapped
            assertErrno(() -> dma.read(0x50ffc, word), Errno.EFAULT);
            assertErrno(() -> dma.read(-4, word), Errno.EFAULT); // wraps
            dma.read(0x70000, MemorySegment.ofArray(new byte[0])); // empty access: nothing to check
            assertThat(client.calls).isEmpty();
        }
    }

    @Test
    void unmapDuringConcurrentAccessNeverCrashes() throws Exception {
        try (MemFd mem = MemFd.create("race", 0x10000); DmaController dma = new DmaController()) {
            AtomicBoolean stop = new AtomicBoolean();
            AtomicReference<Throwable> unexpected = new AtomicReference<>();
            Thread device = Thread.ofPlatform().start(() -> {
                MemorySegment buf = Arena.ofAuto().allocate(0x8000);
                long ok = 0;
                while (!stop.get()) {
                    try {
                        dma.write(0x100000, buf);
                        dma.read(0x100000, buf);
                        ok++;
                    } catch (VfioUserException e) {
                        if (e.errno() != Errno.EFAULT) {
                            unexpected.set(e);
                            return;
                        }
                    } catch (Throwable t) {
                        unexpected.set(t);
                        return;
                    }
                }
            });
            try {
                for (int i = 0; i < 300; i++) {
                    dma.map(new DmaMapRequest(RW, 0, 0x100000, 0x10000), Fds.dup(mem.fd()));
                    dma.unmap(new DmaUnmapRequest(0x100000, 0x10000));
                }
            } finally {
                stop.set(true);
                device.join();
            }
            assertThat(unexpected.get()).isNull();
        }
    }
}
