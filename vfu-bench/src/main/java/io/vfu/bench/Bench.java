package io.vfu.bench;

import io.vfu.client.ClientOptions;
import io.vfu.client.GuestMemory;
import io.vfu.client.VfioUserClient;
import io.vfu.core.protocol.DeviceFeatureRequest;
import io.vfu.core.protocol.DmaMapRequest;
import io.vfu.core.protocol.DmaReadReply;
import io.vfu.core.protocol.DmaReadRequest;
import io.vfu.core.protocol.DmaWriteReply;
import io.vfu.core.protocol.DmaWriteRequest;
import io.vfu.core.protocol.FeaturePayload;
import io.vfu.core.protocol.Header;
import io.vfu.core.protocol.MigDataReadReply;
import io.vfu.core.protocol.MigDataReadRequest;
import io.vfu.core.protocol.MigDataWriteRequest;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.core.protocol.RegionReadReply;
import io.vfu.core.protocol.RegionReadRequest;
import io.vfu.core.protocol.RegionWriteReply;
import io.vfu.core.protocol.RegionWriteRequest;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The end-to-end benchmark set of {@code vfu bench}. Each benchmark measures the vfio-user figure and, in the
 * same run against the same server process, a baseline of the same bytes over a raw UNIX socket (or a
 * memcpy), so the result is a ratio that survives a noisy machine. Client (this JVM) and server (a child JVM,
 * {@link BenchServer}) are pinned to CPU 0 when {@code taskset} is available.
 */
public final class Bench {
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    static final long MiB = 1L << 20;
    static final long KiB = 1L << 10;
    private static final long GUEST_IOVA = 0x10_0000;
    private static final long DIRTY_IOVA = 1L << 40;
    private static final long DIRTY_LENGTH = 16L << 30;
    private static final long DIRTY_PAGE = 4096;

    /**
     * Sizes of one run. {@code warmUpOps}: calls of each path before it is measured (C2 compiles after ~10k);
     * {@code rounds}: blocks in which figure and baseline alternate.
     */
    public record Config(String name, int latencyOps, long migBytes, long dmaBytes, int dirtyReports, int allocOps,
                         int warmUpOps, int rounds, boolean pin, boolean allocOnly) {
        /** The full set (a few minutes on a quiet 2-core machine). */
        public static Config full() {
            return new Config("full", 60_000, 1024 * MiB, 256 * MiB, 200, 20_000, 50_000, 15, true, false);
        }

        /** {@code --quick}: well under two minutes. */
        public static Config quick() {
            return new Config("quick", 27_000, 1024 * MiB, 64 * MiB, 40, 5_000, 30_000, 9, true, false);
        }

        /** A smoke test of every benchmark (figures meaningless). */
        public static Config tiny() {
            return new Config("tiny", 200, 8 * MiB, 2 * MiB, 3, 200, 100, 2, true, false);
        }

        public Config withPin(boolean p) {
            return new Config(name, latencyOps, migBytes, dmaBytes, dirtyReports, allocOps, warmUpOps, rounds, p,
                    allocOnly);
        }

        /** Only the allocation figures (for working on the hot paths). */
        public Config allocationOnly() {
            return new Config(name + ", allocation only", latencyOps, migBytes, dmaBytes, dirtyReports, allocOps,
                    warmUpOps, rounds, pin, true);
        }
    }

    /**
     * One measured figure against its baseline. {@code ratios}, when not null, are the ratios of blocks measured
     * next to each other (robust to the machine changing speed during the run): the row's ratio is their median,
     * their quartiles show the spread; otherwise the ratio is figure / baseline.
     */
    public record Row(String name, String unit, double figure, double baseline, String detail, Target target,
                      double[] ratios) {
        Row(String name, String unit, double figure, double baseline, String detail, Target target) {
            this(name, unit, figure, baseline, detail, target, null);
        }

        public Row {
            ratios = ratios == null ? null : ratios.clone();
        }

        /** The blocks' ratios (a copy), or null when the row was not measured in blocks. */
        @Override
        public double[] ratios() {
            return ratios == null ? null : ratios.clone();
        }

        public double ratio() {
            return ratios == null ? figure / baseline : quantile(ratios, 0.5);
        }

        /** The lower quartile of the blocks' ratios (the ratio itself without blocks). */
        public double ratioQ1() {
            return ratios == null ? ratio() : quantile(ratios, 0.25);
        }

        /** The upper quartile of the blocks' ratios (the ratio itself without blocks). */
        public double ratioQ3() {
            return ratios == null ? ratio() : quantile(ratios, 0.75);
        }

        /** How many blocks the ratio is the median of; 0 when it was not measured in blocks. */
        public int blocks() {
            return ratios == null ? 0 : ratios.length;
        }

        public Target.Verdict verdict() {
            return target.verdict(ratio(), ratioQ1(), ratioQ3());
        }

        Row withTarget(Target t) {
            return new Row(name, unit, figure, baseline, detail, t, ratios);
        }

        Row withBlockRatios(double[] r) {
            return new Row(name, unit, figure, baseline, detail, target, r);
        }
    }

    /** The {@code q} quantile of {@code values}, interpolated between neighbours (q = 0.5: the median). */
    static double quantile(double[] values, double q) {
        double[] v = values.clone();
        Arrays.sort(v);
        double at = q * (v.length - 1);
        int lo = (int) Math.floor(at);
        int hi = (int) Math.ceil(at);
        return v[lo] + (v[hi] - v[lo]) * (at - lo);
    }

    /** Heap bytes allocated per operation in steady state, per process (all threads). */
    public record Alloc(String path, long ops, double clientBytesPerOp, double serverBytesPerOp) {
    }

    /** Everything a run produced. */
    public record Report(String config, String machine, String pinning, String loadBefore, String loadAfter,
                         List<Row> rows, List<Alloc> alloc, List<String> notes) {
    }

    private final Config config;
    private final PrintStream progress;

    private Bench(Config config, PrintStream progress) {
        this.config = config;
        this.progress = progress;
    }

    /** Runs every benchmark; {@code progress} gets one line per benchmark (may be a null stream). */
    public static Report run(Config config, PrintStream progress) throws IOException, InterruptedException {
        return new Bench(config, progress).run();
    }

    private Report run() throws IOException, InterruptedException {
        String loadBefore = Machine.loadAverage();
        String machine = Machine.describe(); // before pinning: availableProcessors follows the affinity
        long maxTransfer = 4 * MiB;
        List<Row> rows = new ArrayList<>();
        List<Alloc> alloc = new ArrayList<>();
        List<String> notes = new ArrayList<>();
        try (Pinning pinning = config.pin() ? Pinning.pinSelf(0) : Pinning.none();
             ServerProcess server = ServerProcess.start(maxTransfer, pinning.active());
             VfioUserClient client = VfioUserClient.connect(server.deviceSocket(),
                     ClientOptions.builder().maxDataXferSize(maxTransfer).build());
             Raw.Client raw = new Raw.Client(server.rawSocket(), maxTransfer + 4096);
             Arena arena = Arena.ofConfined()) {
            Ctx c = new Ctx(client, raw, arena.allocate(maxTransfer, 64));
            if (config.allocOnly()) {
                MemorySegment four = arena.allocate(4, 8);
                for (int i = 0; i < config.allocOps(); i++) {
                    client.read(RegionIndex.CONFIG, 0, four); // warm up
                }
                allocRegionRead(c, alloc);
                allocMigDataRead(c, alloc);
            } else {
                regionAccess(c, rows, alloc);
                migration(c, rows, alloc);
                dma(c, rows);
                dirty(c, rows);
            }
            notes.add("migration over TCP (downtime, total time, 1/2/4 channels vs raw TCP): not measured, the"
                    + " migration engine does not exist yet");
            String pinned = pinning.describe();
            return new Report(config.name(), machine, pinned, loadBefore, Machine.loadAverage(), rows,
                    alloc, notes);
        }
    }

    private record Ctx(VfioUserClient client, Raw.Client raw, MemorySegment buffer) {
        long reg(int offset) throws IOException {
            client.read(RegionIndex.BAR0, offset, buffer.asSlice(0, 8));
            return buffer.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
        }

        void reg(int offset, long value) throws IOException {
            MemorySegment v = buffer.asSlice(0, 8);
            v.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, value);
            client.write(RegionIndex.BAR0, offset, v);
        }

        long serverAllocated() throws IOException {
            return reg(BenchDevice.ALLOCATED);
        }
    }

    private void say(String what) {
        progress.println("  " + what);
        progress.flush();
    }

    // ------------------------------------------------------------------------------------------------
    // Region access

    private void regionAccess(Ctx c, List<Row> rows, List<Alloc> alloc) throws IOException {
        int n = config.latencyOps();
        MemorySegment four = Arena.ofAuto().allocate(4, 8);
        MemorySegment eight = Arena.ofAuto().allocate(8, 8);

        say("REGION_READ 4 bytes of config space vs raw ping-pong");
        int readReq = Header.SIZE + RegionReadRequest.SIZE;
        int readReply = Header.SIZE + RegionReadReply.FIXED_SIZE + 4;
        warmUp(() -> c.client().read(RegionIndex.CONFIG, 0, four), readReq, readReply, c);
        rows.add(interleavedLatency("REGION_READ 4 B config", n, () -> c.client().read(RegionIndex.CONFIG, 0, four),
                readReq, readReply, c));

        say("REGION_WRITE 8 bytes to BAR0 vs raw ping-pong");
        int writeReq = Header.SIZE + RegionWriteRequest.FIXED_SIZE + 8;
        int writeReply = Header.SIZE + RegionWriteReply.SIZE;
        IoAction write = () -> c.client().write(RegionIndex.BAR0, BenchDevice.SCRATCH, eight);
        warmUp(write, writeReq, writeReply, c);
        rows.add(interleavedLatency("REGION_WRITE 8 B BAR0", n, write, writeReq, writeReply, c));

        allocRegionRead(c, alloc);
    }

    /** One operation of a latency benchmark. */
    @FunctionalInterface
    private interface IoAction {
        void run() throws IOException;
    }

    /**
     * Runs {@code op} and the raw ping-pong often enough for the JIT to compile both (C2 needs ~10k calls; the
     * first measured round would otherwise compare interpreted code against compiled code).
     */
    private void warmUp(IoAction op, int req, int reply, Ctx c) throws IOException {
        int ops = config.warmUpOps();
        long[] scratch = new long[ops];
        settle(c, () -> {
            timeOps(op, scratch, 0, ops);
            c.raw().pingPong(req, reply, scratch);
        });
    }

    /**
     * Runs {@code op} {@code count} times, each timed into {@code t} from index {@code from} on. The warm-up runs
     * this very loop, so that it is compiled before it measures, as the baseline's loop is
     * ({@link Raw.Client#pingPong}). A timing loop that only the measurement ran stayed in the interpreter (a
     * loop is compiled on the fly only after ~60,000 iterations; a `--quick` row has 27,000): each timed call
     * then included an interpreted call of {@code op} and the second clock read through a native call, which
     * the raw side's compiled loop did not pay: +0.8 % on a REGION_READ median (the same loop interpreted and
     * compiled, alternating in one process, 30 blocks of 20,000 calls; -XX:+PrintCompilation had never listed
     * the measuring method).
     */
    private static void timeOps(IoAction op, long[] t, int from, int count) throws IOException {
        for (int i = 0; i < count; i++) {
            long t0 = System.nanoTime();
            op.run();
            t[from + i] = System.nanoTime() - t0;
        }
    }

    /** JIT milliseconds (both JVMs) a warm-up round may still cost and count as settled (stray small methods). */
    private static final long SETTLED_JIT_MS = 5;
    /** Most warm-up rounds of {@link #settle}: bounds the time a JIT that never settles can take. */
    private static final int MAX_SETTLE_ROUNDS = 12;

    /**
     * Repeats a warm-up round until a whole round passes with (next to) no JIT compilation in either JVM (or
     * {@link #MAX_SETTLE_ROUNDS} rounds). Both processes share one CPU with their compiler threads: code still
     * being compiled runs profiled C1 code and the compiler takes CPU from the round trips (seen: C2 busy for
     * a quarter of the CPU 10 s into a MIG_DATA_READ run, its hot methods compiled only after 12-18 s).
     */
    private void settle(Ctx c, IoAction round) throws IOException {
        java.lang.management.CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        long before = jit.getTotalCompilationTime() + c.reg(BenchDevice.JIT_MS);
        for (int i = 0; i < MAX_SETTLE_ROUNDS; i++) {
            round.run();
            long after = jit.getTotalCompilationTime() + c.reg(BenchDevice.JIT_MS);
            if (after - before <= SETTLED_JIT_MS && i > 0) {
                return;
            }
            before = after;
        }
    }

    /**
     * {@code ops} round trips of {@code op} and as many raw ones, alternating in {@link Config#rounds} blocks so
     * that a change in the machine's speed during the run (other guests, frequency) hits both alike.
     */
    private Row interleavedLatency(String name, int ops, IoAction op, int req, int reply, Ctx c) throws IOException {
        int rounds = config.rounds();
        int per = Math.max(1, ops / rounds);
        long[] t = new long[per * rounds];
        long[] base = new long[per * rounds];
        long[] block = new long[per];
        double[] ratios = new double[rounds];
        for (int r = 0; r < rounds; r++) {
            timeOps(op, t, r * per, per);
            c.raw().pingPong(req, reply, block);
            System.arraycopy(block, 0, base, r * per, per);
            ratios[r] = medianOf(Arrays.copyOfRange(t, r * per, (r + 1) * per)) / medianOf(block);
        }
        return latency(name, t, base, req + "/" + reply + " B ping-pong; ratio: median of " + rounds
                + " alternating blocks' median ratios").withBlockRatios(ratios);
    }

    private void allocRegionRead(Ctx c, List<Alloc> alloc) throws IOException {
        say("allocation per REGION_READ (steady state)");
        MemorySegment four = c.buffer().asSlice(64, 4);
        int ops = config.allocOps();
        long s0 = c.serverAllocated();
        long c0 = THREADS.getTotalThreadAllocatedBytes();
        for (int i = 0; i < ops; i++) {
            c.client().read(RegionIndex.CONFIG, 0, four);
        }
        long c1 = THREADS.getTotalThreadAllocatedBytes();
        long s1 = c.serverAllocated();
        alloc.add(new Alloc("REGION_READ 4 B", ops, (double) (c1 - c0) / ops, (double) (s1 - s0) / ops));
    }

    private static Row latency(String name, long[] t, long[] base, String baselineWhat) {
        long[] a = t.clone();
        long[] b = base.clone();
        Arrays.sort(a);
        Arrays.sort(b);
        double med = a[a.length / 2] / 1000.0;
        double bmed = b[b.length / 2] / 1000.0;
        double p99 = a[(int) Math.min(a.length - 1, Math.ceil(a.length * 0.99) - 1)] / 1000.0;
        double bp99 = b[(int) Math.min(b.length - 1, Math.ceil(b.length * 0.99) - 1)] / 1000.0;
        long sum = 0;
        for (long x : t) {
            sum += x;
        }
        double opsPerSec = t.length / (sum / 1e9);
        String detail = String.format("p99 %.1f µs (raw %.1f, ratio %.2f), %,.0f ops/s; baseline %s", p99, bp99,
                p99 / bp99, opsPerSec, baselineWhat);
        return new Row(name + " median", "µs", med, bmed, detail, Target.atMost(1.05));
    }

    // ------------------------------------------------------------------------------------------------
    // Migration data

    /** Chunks of each measured size in a migration warm-up round (see {@link #migration}). */
    private static final long WARM_CHUNKS_PER_SIZE = 8;

    private void migration(Ctx c, List<Row> rows, List<Alloc> alloc) throws IOException {
        long[] chunks = {64 * KiB, MiB, 4 * MiB};
        say("warming up MIG_DATA_READ/MIG_DATA_WRITE and the raw streams");
        long warmChunk = 4 * KiB;
        long warmBytes = config.warmUpOps() * warmChunk;
        settle(c, () -> {
            // A few chunks of every measured size first, then many small ones: C2 compiles the stream loops
            // from profiles that have seen every size's branches. Warmed up with small chunks only, the first
            // larger chunk hit a branch C2 had left out (an uncommon trap): the loop went back to profiling C1
            // code and stayed there through the 1 MiB and 4 MiB rows, too few iterations (a thousand or so) to
            // be compiled again, with no compilation left for settle() to see (-XX:+PrintCompilation).
            for (long chunk : chunks) {
                long few = Math.min(chunk * WARM_CHUNKS_PER_SIZE, warmBytes);
                migRead(c, chunk, few);
                migWrite(c, chunk, few);
                c.raw().streamOut(chunk, few);
                c.raw().streamIn(chunk, few);
            }
            migRead(c, warmChunk, warmBytes);
            migWrite(c, warmChunk, warmBytes);
            c.raw().streamOut(warmChunk, warmBytes);
            c.raw().streamIn(warmChunk, warmBytes);
        });
        for (long chunk : chunks) {
            say("MIG_DATA_READ " + config.migBytes() / MiB + " MiB in " + human(chunk) + " chunks vs raw stream");
            rows.add(interleavedThroughput(c, "MIG_DATA_READ " + human(chunk), migBlock(chunk), bytes -> migRead(c, chunk, bytes),
                    bytes -> c.raw().streamOut(chunk, bytes),
                    "reply " + (Header.SIZE + MigDataReadReply.FIXED_SIZE) + " B + data per "
                            + (Header.SIZE + MigDataReadRequest.SIZE) + " B request; baseline raw stream in "
                            + human(chunk) + " writes"));
        }
        allocMigDataRead(c, alloc);
        for (long chunk : chunks) {
            say("MIG_DATA_WRITE " + config.migBytes() / MiB + " MiB in " + human(chunk) + " chunks vs raw stream");
            rows.add(interleavedThroughput(c, "MIG_DATA_WRITE " + human(chunk), migBlock(chunk), bytes -> migWrite(c, chunk, bytes),
                    bytes -> c.raw().streamIn(chunk, bytes),
                    (Header.SIZE + MigDataWriteRequest.FIXED_SIZE) + " B + data per request; baseline raw stream in "
                            + human(chunk) + " writes"));
        }
    }

    /** A timed transfer of {@code bytes}; returns nanoseconds. */
    @FunctionalInterface
    private interface Transfer {
        long run(long bytes) throws IOException;
    }

    /** A block of migration data: {@link Config#migBytes} split into {@link Config#rounds}, whole chunks. */
    private long migBlock(long chunk) {
        return Math.max(chunk, config.migBytes() / config.rounds() / chunk * chunk);
    }

    /**
     * {@code per} bytes through {@code figure} and through {@code baseline}, alternating in {@link Config#rounds}
     * blocks; the figures are the medians of the blocks' throughputs, the ratio the median of their ratios.
     */
    private Row interleavedThroughput(Ctx c, String name, long per, Transfer figure, Transfer baseline, String detail)
            throws IOException {
        int rounds = config.rounds();
        double[] mibs = new double[rounds];
        double[] base = new double[rounds];
        double[] ratios = new double[rounds];
        // Unmeasured blocks first, until the JIT is done: this size takes paths the warm-up did not.
        settle(c, () -> {
            figure.run(per);
            baseline.run(per);
        });
        for (int r = 0; r < rounds; r++) {
            mibs[r] = per / (double) MiB / (figure.run(per) / 1e9);
            base[r] = per / (double) MiB / (baseline.run(per) / 1e9);
            ratios[r] = mibs[r] / base[r];
        }
        String how = detail + "; medians of " + rounds + " alternating blocks of " + human(per)
                + ", ratio: median of the blocks' ratios";
        return new Row(name, "MiB/s", quantile(mibs, 0.5), quantile(base, 0.5), how, Target.atLeast(0.95))
                .withBlockRatios(ratios);
    }

    private static double medianOf(long[] values) {
        long[] v = values.clone();
        Arrays.sort(v);
        return v[v.length / 2];
    }

    /**
     * Reads {@code total} bytes of STOP_COPY data in {@code chunk}-byte MIG_DATA_READs, the way a migration does
     * it: the stream's length estimate (MIG_DATA_SIZE, timed too, sent along with the first reads) spares the
     * last, all-padding chunk. Returns nanoseconds.
     */
    private static long migRead(Ctx c, long chunk, long total) throws IOException {
        c.reg(BenchDevice.MIG_BYTES, total);
        c.client().setMigrationState(MigrationState.STOP_COPY);
        long t0 = System.nanoTime();
        long got = c.client().readStopCopyData(DISCARD, chunk);
        long dt = System.nanoTime() - t0;
        c.client().setMigrationState(MigrationState.RUNNING);
        if (got != total) {
            throw new IOException("MIG_DATA_READ returned " + got + " of " + total + " bytes");
        }
        return dt;
    }

    /** Writes {@code total} bytes in {@code chunk}-byte MIG_DATA_WRITEs (RESUMING); returns nanoseconds. */
    private static long migWrite(Ctx c, long chunk, long total) throws IOException {
        MemorySegment src = c.buffer();
        c.client().setMigrationState(MigrationState.RESUMING);
        long t0 = System.nanoTime();
        try (VfioUserClient.MigrationDataWriter writer = c.client().migrationDataWriter()) {
            for (long done = 0; done < total; done += chunk) {
                writer.write(src.asSlice(0, Math.min(chunk, total - done)));
            }
        }
        long dt = System.nanoTime() - t0;
        c.client().setMigrationState(MigrationState.RUNNING);
        return dt;
    }

    private static final VfioUserClient.MigrationDataSink DISCARD = chunk -> { };

    private void allocMigDataRead(Ctx c, List<Alloc> alloc) throws IOException {
        VfioUserClient.MigrationDataSink sink = DISCARD;
        say("allocation per MIG_DATA_READ 1 MiB (steady state)");
        // Region access is gated in STOP_COPY, so the server figure is read outside it: two runs of different
        // lengths, the difference divided by the difference in reads (the state changes cancel out).
        long shortRun = Math.max(8, config.allocOps() / 25);
        long[] client = new long[2];
        long[] server = new long[2];
        for (int run = -1; run < 2; run++) { // run -1 warms up
            long bytes = shortRun * MiB * (run + 2);
            long s0 = c.serverAllocated();
            long c0 = THREADS.getTotalThreadAllocatedBytes();
            c.reg(BenchDevice.MIG_BYTES, bytes);
            c.client().setMigrationState(MigrationState.STOP_COPY);
            c.client().readMigrationData(sink, MiB);
            c.client().setMigrationState(MigrationState.RUNNING);
            if (run >= 0) {
                client[run] = THREADS.getTotalThreadAllocatedBytes() - c0;
                server[run] = c.serverAllocated() - s0;
            }
        }
        alloc.add(new Alloc("MIG_DATA_READ 1 MiB", shortRun, (double) (client[1] - client[0]) / shortRun,
                (double) (server[1] - server[0]) / shortRun));
    }

    // ------------------------------------------------------------------------------------------------
    // DMA

    private void dma(Ctx c, List<Row> rows) throws IOException {
        long block = 64 * KiB;
        long span = 4 * MiB;
        long count = Math.max(1, config.dmaBytes() / block);
        long bytes = count * block;
        GuestMemory.Region guest = c.client().memory().allocate(GUEST_IOVA, span, true, true);
        c.client().dmaMap(guest);
        try {
            c.reg(BenchDevice.OP_IOVA, GUEST_IOVA);
            c.reg(BenchDevice.OP_BLOCK, block);
            c.reg(BenchDevice.OP_SPAN, span);
            c.reg(BenchDevice.OP_COUNT, count);
            say("DMA via fd mapping (" + human(block) + " accesses) vs memcpy of the same guest memory in the server");
            long warm = Math.max(count, 20_000); // fd accesses are cheap: warm up to C2
            settle(c, () -> {
                for (int op : new int[] {BenchDevice.RUN_MEMCPY, BenchDevice.RUN_READ, BenchDevice.RUN_WRITE}) {
                    deviceRun(c, op, warm);
                }
            });
            // Memory-speed loops: 8 times the bytes of the message rows, or a block lasts a few milliseconds and
            // scheduler noise decides the ratio.
            long fdCount = 8 * count;
            Transfer memcpy = b -> deviceRun(c, BenchDevice.RUN_MEMCPY, fdCount);
            rows.add(interleavedThroughput(c, "DMA read  fd mapping " + human(block), fdCount * block,
                    b -> deviceRun(c, BenchDevice.RUN_READ, fdCount), memcpy,
                    "device reads guest memory through Dma.read; baseline memcpy of the same blocks from a direct view"));
            rows.add(interleavedThroughput(c, "DMA write fd mapping " + human(block), fdCount * block,
                    b -> deviceRun(c, BenchDevice.RUN_WRITE, fdCount), memcpy,
                    "Dma.write, includes dirty logging; baseline memcpy of the same blocks from a direct view"));

            say("DMA_READ/DMA_WRITE messages (" + human(block) + ") vs raw ping-pong");
            long[] base = new long[(int) count];
            int rdReq = Header.SIZE + DmaReadRequest.SIZE;
            int rdReply = (int) (Header.SIZE + DmaReadReply.FIXED_SIZE + block);
            int wrReq = (int) (Header.SIZE + DmaWriteRequest.FIXED_SIZE + block);
            int wrReply = Header.SIZE + DmaWriteReply.SIZE;
            // Warmed up to C2 like the other paths (a run of count messages is only ~1,000 of them); a message
            // costs about what 2.5 register round trips do, so 2/5 of their warm-up takes about as long.
            long warmMessages = Math.max(count, config.warmUpOps() * 2L / 5);
            long[] warmBase = new long[(int) warmMessages];
            settle(c, () -> {
                deviceRun(c, BenchDevice.RUN_READ_MSG, warmMessages);
                deviceRun(c, BenchDevice.RUN_WRITE_MSG, warmMessages);
                rawPingPong(c, rdReq, rdReply, warmBase);
                rawPingPong(c, wrReq, wrReply, warmBase);
            });
            rows.add(interleavedThroughput(c, "DMA_READ  messages " + human(block), bytes,
                    b -> deviceRun(c, BenchDevice.RUN_READ_MSG, count), b -> rawPingPong(c, rdReq, rdReply, base),
                    "server→client on the twin socket; baseline " + rdReq + "/" + rdReply + " B ping-pong"));
            rows.add(interleavedThroughput(c, "DMA_WRITE messages " + human(block), bytes,
                    b -> deviceRun(c, BenchDevice.RUN_WRITE_MSG, count), b -> rawPingPong(c, wrReq, wrReply, base),
                    "baseline " + wrReq + "/" + wrReply + " B ping-pong"));
        } finally {
            c.client().dmaUnmap(guest);
        }
    }

    /** One device-side loop of {@code count} accesses, timed in the server; returns its nanoseconds. */
    private static long deviceRun(Ctx c, int op, long count) throws IOException {
        c.reg(BenchDevice.OP_COUNT, count);
        c.reg(BenchDevice.OP_RUN, op);
        return c.reg(BenchDevice.RESULT_NS);
    }

    /** One raw ping-pong run of {@code scratch.length} round trips; returns its nanoseconds. */
    private static long rawPingPong(Ctx c, int req, int reply, long[] scratch) throws IOException {
        long t0 = System.nanoTime();
        c.raw().pingPong(req, reply, scratch);
        return System.nanoTime() - t0;
    }

    // ------------------------------------------------------------------------------------------------
    // Dirty logging

    private void dirty(Ctx c, List<Row> rows) throws IOException {
        say("DMA_LOGGING_REPORT of 16 GiB at 4 KiB pages vs raw ping-pong");
        int n = config.dirtyReports();
        VfioUserClient client = c.client();
        client.dmaMapWithoutFd(DIRTY_IOVA, DIRTY_LENGTH, DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE);
        try {
            client.dmaLoggingStart(DIRTY_PAGE, List.of(new FeaturePayload.DmaLoggingControl.Range(DIRTY_IOVA, DIRTY_LENGTH)));
            long[] t = new long[n];
            long[] base = new long[n];
            DeviceFeatureRequest request = DeviceFeatureRequest.report(
                    new FeaturePayload.DmaLoggingReportQuery(DIRTY_IOVA, DIRTY_LENGTH, DIRTY_PAGE));
            int req = (int) (Header.SIZE + request.fixedSize() + request.data().byteSize());
            int reply = (int) (Header.SIZE + request.argsz());
            // One reply buffer for every report, as the baseline's; a migration's dirty loop would do the same.
            SegmentAllocator replyMemory = SegmentAllocator.prefixAllocator(Arena.ofAuto().allocate(request.argsz(), 8));
            try {
                for (int i = 0; i < 5 * n; i++) { // warm-up: the other rows did not run this path
                    client.dmaLoggingReport(DIRTY_IOVA, DIRTY_LENGTH, DIRTY_PAGE, replyMemory);
                }
                for (int round = 0; round < 2; round++) {
                    for (int i = 0; i < n; i++) {
                        long t0 = System.nanoTime();
                        client.dmaLoggingReport(DIRTY_IOVA, DIRTY_LENGTH, DIRTY_PAGE, replyMemory);
                        t[i] = System.nanoTime() - t0;
                    }
                    c.raw().pingPong(req, reply, base);
                }
            } finally {
                client.dmaLoggingStop();
            }
            rows.add(latency("DMA_LOGGING_REPORT 16 GiB/4 KiB", t, base, req + "/" + reply + " B ping-pong")
                    .withTarget(Target.NONE));
        } finally {
            client.dmaUnmap(DIRTY_IOVA, DIRTY_LENGTH);
        }
    }

    static String human(long bytes) {
        if (bytes >= MiB && bytes % MiB == 0) {
            return bytes / MiB + " MiB";
        }
        if (bytes >= KiB && bytes % KiB == 0) {
            return bytes / KiB + " KiB";
        }
        return bytes + " B";
    }
}
