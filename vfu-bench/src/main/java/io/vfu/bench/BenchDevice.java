package io.vfu.bench;

import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.Bar;
import io.vfu.server.DeviceContext;
import io.vfu.server.MigrationHandler;
import io.vfu.server.PciDevice;
import io.vfu.server.Region;
import io.vfu.server.RegionHandler;
import io.vfu.server.pci.PciIdentity;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;

/**
 * The device the end-to-end benchmarks drive: a scratch register for BAR writes, device-side DMA loops timed
 * inside the server process, a migration stream of a requested length (bytes are not generated: the
 * benchmark measures transport, not the device), and a register reporting the server JVM's allocated bytes.
 *
 * <pre>
 * BAR0 (4 KiB, trapped, 8-byte registers)
 *   0x00 SCRATCH     r/w   target of the 8-byte BAR write benchmark
 *   0x08 OP_IOVA     w     first guest address of a DMA loop
 *   0x10 OP_BLOCK    w     bytes per DMA access
 *   0x18 OP_SPAN     w     bytes of guest memory cycled through (from OP_IOVA)
 *   0x20 OP_COUNT    w     accesses
 *   0x28 OP_RUN      w     runs a loop now (1 read, 2 write, 3 read by message, 4 write by message,
 *                          5 memcpy from a direct view of the same guest memory: the baseline)
 *   0x30 RESULT_NS   r     nanoseconds the last loop took
 *   0x38 MIG_BYTES   w     length of the next saved stream
 *   0x40 ALLOCATED   r     bytes allocated so far by all threads of the server JVM
 *   0x48 JIT_MS      r     milliseconds the server JVM's JIT compilers have worked so far
 * </pre>
 */
final class BenchDevice implements RegionHandler, MigrationHandler {
    static final int SCRATCH = 0x00;
    static final int OP_IOVA = 0x08;
    static final int OP_BLOCK = 0x10;
    static final int OP_SPAN = 0x18;
    static final int OP_COUNT = 0x20;
    static final int OP_RUN = 0x28;
    static final int RESULT_NS = 0x30;
    static final int MIG_BYTES = 0x38;
    static final int ALLOCATED = 0x40;
    static final int JIT_MS = 0x48;

    static final int RUN_READ = 1;
    static final int RUN_WRITE = 2;
    static final int RUN_READ_MSG = 3;
    static final int RUN_WRITE_MSG = 4;
    static final int RUN_MEMCPY = 5;

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private final long[] regs = new long[0x1000 / 8];
    private long migRemaining;
    private long migWritten;
    private DeviceContext ctx;

    PciDevice device() {
        return PciDevice.builder()
                .identity(new PciIdentity(0x1234, 0xbe7c, 0x1234, 0x0001, 0xff0000, 1))
                .bar(0, Bar.mem32(Region.trapped(0x1000, this)))
                .migration(this)
                .onAttach(c -> ctx = c)
                .build();
    }

    @Override
    public void read(long offset, MemorySegment dst) {
        if (dst.byteSize() != 8 || (offset & 7) != 0) {
            throw VfioUserException.einval("8-byte aligned registers only");
        }
        long value = switch ((int) offset) {
            case ALLOCATED -> THREADS.getTotalThreadAllocatedBytes();
            case JIT_MS -> java.lang.management.ManagementFactory.getCompilationMXBean().getTotalCompilationTime();
            default -> regs[(int) (offset >>> 3)];
        };
        dst.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, value);
    }

    @Override
    public void write(long offset, MemorySegment src) {
        if (src.byteSize() != 8 || (offset & 7) != 0) {
            throw VfioUserException.einval("8-byte aligned registers only");
        }
        long value = src.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
        regs[(int) (offset >>> 3)] = value;
        if (offset == OP_RUN) {
            regs[RESULT_NS >>> 3] = run((int) value, regs[OP_IOVA >>> 3], regs[OP_BLOCK >>> 3], regs[OP_SPAN >>> 3],
                    regs[OP_COUNT >>> 3]);
        } else if (offset == MIG_BYTES) {
            migRemaining = value;
        }
    }

    private long run(int op, long iova, long block, long span, long count) {
        if (block <= 0 || span < block || count <= 0) {
            throw VfioUserException.einval("bad DMA loop parameters");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(block, 64);
            // The baseline copies the same guest memory through a direct view: the physical limit of the access.
            MemorySegment local = op == RUN_MEMCPY ? ctx.dma().directView(iova, span, false) : null;
            if (op == RUN_MEMCPY && local == null) {
                throw VfioUserException.einval("memcpy baseline needs fd-backed guest memory at the loop's iova");
            }
            long slots = span / block;
            long start = System.nanoTime();
            for (long i = 0; i < count; i++) {
                long at = (i % slots) * block;
                switch (op) {
                    case RUN_READ -> ctx.dma().read(iova + at, buf);
                    case RUN_WRITE -> ctx.dma().write(iova + at, buf);
                    case RUN_READ_MSG -> ctx.dma().readByMessage(iova + at, buf);
                    case RUN_WRITE_MSG -> ctx.dma().writeByMessage(iova + at, buf);
                    case RUN_MEMCPY -> MemorySegment.copy(local, at, buf, 0, block);
                    default -> throw VfioUserException.einval("unknown op " + op);
                }
            }
            return System.nanoTime() - start;
        }
    }

    @Override
    public void transition(MigrationState from, MigrationState to) {
        if (to == MigrationState.RESUMING) {
            migWritten = 0;
        }
    }

    @Override
    public long stopCopySize() {
        return migRemaining;
    }

    @Override
    public long readData(MemorySegment dst) {
        long n = Math.min(dst.byteSize(), migRemaining);
        migRemaining -= n;
        return n;
    }

    @Override
    public void writeData(MemorySegment src) {
        migWritten += src.byteSize();
    }
}
