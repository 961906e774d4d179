package io.vfu.devices;

import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.Bar;
import io.vfu.server.DeviceContext;
import io.vfu.server.DmaListener;
import io.vfu.server.MigrationHandler;
import io.vfu.server.MmapArea;
import io.vfu.server.PciDevice;
import io.vfu.server.Region;
import io.vfu.server.RegionHandler;
import io.vfu.server.pci.PciIdentity;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A device that behaves like libvfio-user's {@code samples/server}, so that the unmodified C sample client
 * (and a C sample server on the other end of a migration) accept it. Built only on vfu-server's public API.
 * The behaviour is specified in the shared notes on the libvfio-user samples (§3); this class follows them,
 * except where noted under "Differences".
 *
 * <h2>Identity</h2>
 * Conventional PCI endpoint, vendor 0xdead, device 0xbeef, subsystem 0xcafe:0xbabe, class 0, revision 0, no
 * capabilities. IRQs: INTx 1, MSI 0, MSI-X 0, ERR 1, REQ 1.
 *
 * <h2>BAR0: an alarm clock (8 bytes, trapped)</h2>
 * One signed 64-bit value {@code bar0}, seconds since the epoch, initially 0. Only accesses of exactly 8
 * bytes at offset 0 are accepted (EINVAL otherwise).
 * <ul>
 * <li>Write {@code t}: while the device is RUNNING, arms a one-shot alarm for {@code t − now} whole seconds
 *     ({@code now} = the current second; 0 disarms; negative fails the write with EINVAL and stores
 *     nothing); in any other state only stores. Then stores {@code t}.</li>
 * <li>Read: {@code now − bar0} (signed seconds, little endian).</li>
 * <li>When the alarm fires (on a timer thread, not a signal): INTx vector 0 is triggered, the line
 *     {@code doing dma io} goes to the console, then the DMA sequence below runs.</li>
 * <li>Entering STOP_COPY disarms the alarm; entering RUNNING re-arms it from {@code bar0}; nothing else
 *     touches it (an alarm armed while RUNNING also fires in PRE_COPY or STOP, like the C sample's).</li>
 * </ul>
 *
 * <h2>BAR1: plain memory ({@code B1} bytes, default {@value #DEFAULT_BAR1_SIZE})</h2>
 * Backed by the library's memfd (handed to the client with the 80-byte GET_REGION_INFO reply); mmap-able
 * sparse areas are the first and the last page (0x3000: 0x0 and 0x2000; 0x4000: 0x0 and 0x3000). Message
 * reads and writes go to the same memory at the offset asked. {@code B1} must be a multiple of 4 KiB, at
 * least 8 KiB. It need not be a power of two (the BAR register decodes the next power of two).
 *
 * <h2>DMA</h2>
 * A table of {@value #DMA_SLOTS} slots, filled in DMA_MAP order (first free slot) through the
 * {@link DmaListener}, emptied by exact (iova, size) match. After each alarm:
 * <ol>
 * <li>direct, on slot 1 (must be mapped with an fd, readable, writable, ≥ 4 KiB): writes 1 KiB each of 'A',
 *     'B', 'C', 'D' at +0, +0x400, +0x800, +0xc00 straight into client memory (marked dirty), reads back
 *     2 × 2 KiB and compares;</li>
 * <li>by message, on slot 0: four DMA_WRITE of 1 KiB at the same offsets, then two 2 KiB reads which the
 *     library splits by the client's max_data_xfer_size (four DMA_READ for the sample client's 1024).</li>
 * </ol>
 * Where the C sample exits the process (slot missing or without fd, mismatch, DMA failure), this device logs
 * an error and counts it in {@link #errors()}; the server keeps running.
 *
 * <h2>Migration (STOP_COPY | PRE_COPY)</h2>
 * Raw stream, no framing. PRE_COPY: {@code BAR1[xfer..B1)}. STOP_COPY: {@code BAR1 ‖ bar0} (8 bytes LE),
 * {@code B1 + 8} bytes. Each read of N returns {@code min(N, remaining)} and 0 at the end. RESUMING expects
 * exactly {@code B1 + 8} bytes in the same layout: a write of N consumes {@code min(N, remaining)} and fails
 * with EINVAL if that is less than N. {@code xfer} (bytes moved in the current phase) is reset on entering
 * PRE_COPY, STOP_COPY and RESUMING. Arcs:
 * <ul>
 * <li>→ STOP_COPY: disarms the alarm;</li>
 * <li>STOP_COPY → STOP: requires {@code xfer == B1 + 8} (the stream was drained);</li>
 * <li>→ RUNNING: requires {@code xfer == B1 + 8} (so a fresh device cannot go RUNNING → STOP → RUNNING,
 *     nor abandon a pre-copy), then re-arms the alarm for {@code bar0 − now} seconds (0: no alarm;
 *     negative: the arc fails).</li>
 * </ul>
 * A failed requirement fails the arc with EINVAL (the C sample asserts, i.e. aborts the process); the
 * library leaves the device in the state the arc started from.
 *
 * <h2>Differences from the C sample</h2>
 * <ul>
 * <li>BAR1 reads honour the offset (the C sample always copies from the start of BAR1, a bug the C client
 *     never exercises: it only reads at offset 0).</li>
 * <li>BAR0 and BAR1 are 32-bit memory BARs in config space (the C sample declares no type, so its BAR
 *     registers read as I/O, bit 0 set).</li>
 * <li>Errors are EINVAL replies or logged, never a process exit; a full DMA table is logged.</li>
 * </ul>
 *
 * <h2>Threads</h2>
 * The library calls BAR0, migration and DMA-table callbacks on its connection thread; the alarm runs on a
 * platform timer thread. Both share {@code bar0}, {@code xfer}, the alarm and the slot table under one lock;
 * the alarm's DMA runs without it (DMA messages wait for the client, whose replies the connection thread
 * reads). {@link #close()} stops the timer thread.
 */
public final class SampleServerDevice implements MigrationHandler, DmaListener, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SampleServerDevice.class);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Vendor id. */
    public static final int VENDOR_ID = 0xdead;
    /** Device id. */
    public static final int DEVICE_ID = 0xbeef;
    /** Subsystem vendor id. */
    public static final int SUBSYSTEM_VENDOR_ID = 0xcafe;
    /** Subsystem id. */
    public static final int SUBSYSTEM_ID = 0xbabe;
    /** Identity registers: class 0, revision 0. */
    public static final PciIdentity IDENTITY = new PciIdentity(VENDOR_ID, DEVICE_ID, SUBSYSTEM_VENDOR_ID, SUBSYSTEM_ID, 0, 0);
    /** Size of BAR0 (one {@code time_t}). */
    public static final long BAR0_SIZE = 8;
    /** BAR1 size of libvfio-user up to commit 7e7a0a6 (3 pages). */
    public static final long DEFAULT_BAR1_SIZE = 0x3000;
    /** Page size of the sparse areas and of the BAR1 granularity (the C sample's hard-coded 4 KiB). */
    public static final long PAGE_SIZE = 0x1000;
    /** Largest BAR1 accepted. */
    public static final long MAX_BAR1_SIZE = 1L << 30;
    /** Slots of the DMA table. */
    public static final int DMA_SLOTS = 96;
    /** Bytes of one DMA piece; four pieces per sequence. */
    public static final int DMA_PIECE = 1024;
    /** Pieces per DMA sequence. */
    public static final int DMA_PIECES = 4;
    /** System property giving the BAR1 size of the registry's {@code sample-server} device. */
    public static final String BAR1_SIZE_PROPERTY = "vfu.sample-server.bar1-size";

    /** One DMA table slot. */
    private record Slot(long iova, long size, int flags, boolean direct) {
    }

    private final long bar1Size;
    private final Consumer<String> console;
    private final Object lock = new Object();
    private final Slot[] slots = new Slot[DMA_SLOTS];
    private DeviceContext context;
    private long bar0;
    private long xfer;
    private ScheduledThreadPoolExecutor timer;
    private ScheduledFuture<?> alarm;
    private boolean closed;
    private long alarmsHandled;
    private long errors;

    /** A device with BAR1 of {@link #DEFAULT_BAR1_SIZE} that logs its console line. */
    public SampleServerDevice() {
        this(DEFAULT_BAR1_SIZE);
    }

    /** A device with BAR1 of {@code bar1Size} bytes that logs its console line (see below). */
    public SampleServerDevice(long bar1Size) {
        this(bar1Size, line -> log.info("{}", line));
    }

    /**
     * A device with BAR1 of {@code bar1Size} bytes.
     *
     * @param console receives the {@code doing dma io} line (the C sample prints it on stdout)
     * @throws IllegalArgumentException the size is not a multiple of 4 KiB in [8 KiB, 1 GiB]
     */
    public SampleServerDevice(long bar1Size, Consumer<String> console) {
        if (bar1Size < 2 * PAGE_SIZE || bar1Size > MAX_BAR1_SIZE || bar1Size % PAGE_SIZE != 0) {
            throw new IllegalArgumentException("BAR1 size must be a multiple of 0x1000 in [0x2000, 0x40000000]: 0x"
                    + Long.toHexString(bar1Size));
        }
        this.bar1Size = bar1Size;
        this.console = Objects.requireNonNull(console, "console");
    }

    /**
     * The BAR1 size named by the system property {@value #BAR1_SIZE_PROPERTY} (decimal, or hex with 0x),
     * {@link #DEFAULT_BAR1_SIZE} if unset.
     *
     * @throws IllegalArgumentException the property is malformed
     */
    public static long bar1SizeFromProperty() {
        String v = System.getProperty(BAR1_SIZE_PROPERTY);
        if (v == null || v.isBlank()) {
            return DEFAULT_BAR1_SIZE;
        }
        try {
            return Long.decode(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(BAR1_SIZE_PROPERTY + ": not a number: " + v);
        }
    }

    /** The device description to serve (one {@link io.vfu.server.VfioUserServer} per instance). */
    public PciDevice build() {
        return PciDevice.builder()
                .identity(IDENTITY)
                .bar(0, Bar.mem32(Region.trapped(BAR0_SIZE, new Bar0())))
                .bar(1, Bar.mem32(Region.sparse(bar1Size, null,
                        List.of(new MmapArea(0, PAGE_SIZE), new MmapArea(bar1Size - PAGE_SIZE, PAGE_SIZE)))))
                .irqs(IrqIndex.INTX, 1)
                .migration(this)
                .dmaListener(this)
                .reset(reason -> log.debug("device reset callback ({})", reason))
                .onAttach(ctx -> {
                    synchronized (lock) {
                        context = ctx;
                    }
                })
                .build();
    }

    /** Size of BAR1. */
    public long bar1Size() {
        return bar1Size;
    }

    /** Bytes of a complete STOP_COPY stream: {@code B1 + 8}. */
    public long streamSize() {
        return bar1Size + BAR0_SIZE;
    }

    /** Alarms handled so far (interrupt triggered and DMA sequence finished, successfully or not). */
    public long alarmsHandled() {
        synchronized (lock) {
            return alarmsHandled;
        }
    }

    /** Failures the C sample would have exited for (missing slot, DMA failure, mismatch, full table). */
    public long errors() {
        synchronized (lock) {
            return errors;
        }
    }

    /** Whether an alarm is armed. */
    public boolean alarmArmed() {
        synchronized (lock) {
            return alarm != null;
        }
    }

    /**
     * Waits until at least {@code count} alarms were handled.
     *
     * @return whether they were, within {@code timeout}
     */
    public boolean awaitAlarmsHandled(long count, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (lock) {
            while (alarmsHandled < count) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                TimeUnit.NANOSECONDS.timedWait(lock, left);
            }
            return true;
        }
    }

    /** Disarms the alarm and stops the timer thread. Idempotent. */
    @Override
    public void close() {
        synchronized (lock) {
            closed = true;
            disarm();
            if (timer != null) {
                timer.shutdownNow();
                timer = null;
            }
        }
    }

    private static long now() {
        return Instant.now().getEpochSecond();
    }

    // ------------------------------------------------------------------------------------------------
    // BAR0 and the alarm

    private final class Bar0 implements RegionHandler {
        @Override
        public void read(long offset, MemorySegment dst) {
            check(offset, dst.byteSize());
            synchronized (lock) {
                dst.set(LE_LONG, 0, now() - bar0);
            }
        }

        @Override
        public void write(long offset, MemorySegment src) {
            check(offset, src.byteSize());
            long t = src.get(LE_LONG, 0);
            synchronized (lock) {
                if (context != null && context.migrationState() == MigrationState.RUNNING) {
                    arm(t - now());
                }
                bar0 = t;
            }
        }

        private static void check(long offset, long count) {
            if (offset != 0 || count != BAR0_SIZE) {
                log.error("bad BAR0 access {}+{}", offset, count);
                throw VfioUserException.einval("BAR0: only 8-byte accesses at offset 0 (got " + count
                        + " bytes at " + offset + ")");
            }
        }
    }

    /** Arms the alarm for {@code seconds} (0 disarms; negative: EINVAL, nothing changes). Holds the lock. */
    private void arm(long seconds) {
        if (seconds < 0) {
            throw VfioUserException.einval("alarm " + seconds + " s in the past");
        }
        disarm();
        if (seconds == 0 || closed) {
            log.debug("alarm disarmed");
            return;
        }
        if (timer == null) {
            timer = new ScheduledThreadPoolExecutor(1,
                    Thread.ofPlatform().daemon().name("sample-server-alarm").factory());
            timer.setRemoveOnCancelPolicy(true);
        }
        log.debug("arming timer to trigger in {} seconds", seconds);
        alarm = timer.schedule(this::alarmFired, seconds, TimeUnit.SECONDS);
    }

    private void disarm() {
        if (alarm != null) {
            alarm.cancel(false);
            alarm = null;
        }
    }

    private void alarmFired() {
        DeviceContext ctx;
        Slot direct;
        Slot messages;
        synchronized (lock) {
            alarm = null;
            ctx = context;
            direct = slots[1];
            messages = slots[0];
        }
        boolean ok = true;
        try {
            if (ctx == null) {
                fail("alarm fired before the device was attached");
                return;
            }
            if (!ctx.irqs().assigned(IrqIndex.INTX, 0)) {
                fail("alarm fired but the client assigned no eventfd to INTx 0");
                ok = false;
            } else {
                ctx.irqs().trigger(IrqIndex.INTX, 0);
            }
            console.accept("doing dma io");
            ok &= directIo(ctx, direct);
            ok &= messageIo(ctx, messages);
            if (ok) {
                log.debug("DMA sequence done");
            }
        } catch (RuntimeException e) {
            fail("alarm handling failed: " + e);
        } finally {
            synchronized (lock) {
                alarmsHandled++;
                lock.notifyAll();
            }
        }
    }

    private static byte[] pattern() {
        byte[] b = new byte[DMA_PIECE * DMA_PIECES];
        for (int i = 0; i < DMA_PIECES; i++) {
            Arrays.fill(b, i * DMA_PIECE, (i + 1) * DMA_PIECE, (byte) ('A' + i));
        }
        return b;
    }

    /** Direct writes and reads on slot 1 through a view of the client's fd-backed memory. */
    private boolean directIo(DeviceContext ctx, Slot slot) {
        long length = (long) DMA_PIECE * DMA_PIECES;
        if (slot == null || !slot.direct() || slot.size() < length) {
            fail("DMA slot 1 must be mapped with an fd and hold at least " + length + " bytes: " + slot);
            return false;
        }
        try {
            MemorySegment out = ctx.dma().directView(slot.iova(), length, true);
            MemorySegment in = ctx.dma().directView(slot.iova(), length, false);
            if (out == null || in == null) {
                fail("DMA slot 1 " + slot + " is not readable and writable client memory");
                return false;
            }
            byte[] expected = pattern();
            for (int i = 0; i < DMA_PIECES; i++) {
                log.debug("DIRECT WRITE addr 0x{} size {}", Long.toHexString(slot.iova() + (long) i * DMA_PIECE), DMA_PIECE);
                MemorySegment.copy(MemorySegment.ofArray(expected), (long) i * DMA_PIECE, out, (long) i * DMA_PIECE, DMA_PIECE);
                ctx.dma().markDirty(slot.iova() + (long) i * DMA_PIECE, DMA_PIECE);
            }
            byte[] got = new byte[expected.length];
            for (int i = 0; i < DMA_PIECES; i += 2) {
                log.debug("DIRECT READ addr 0x{} size {}", Long.toHexString(slot.iova() + (long) i * DMA_PIECE), 2 * DMA_PIECE);
                MemorySegment.copy(in, (long) i * DMA_PIECE, MemorySegment.ofArray(got), (long) i * DMA_PIECE, 2 * DMA_PIECE);
            }
            if (!Arrays.equals(expected, got)) {
                fail("DIRECT DMA write and read mismatch");
                return false;
            }
            log.debug("DIRECT success");
            return true;
        } catch (RuntimeException e) {
            fail("DIRECT DMA on slot 1 " + slot + " failed: " + e.getMessage());
            return false;
        }
    }

    /** Four DMA_WRITE messages and two reads (split by the client's max_data_xfer_size) on slot 0. */
    private boolean messageIo(DeviceContext ctx, Slot slot) {
        if (slot == null) {
            fail("DMA slot 0 is empty");
            return false;
        }
        try {
            byte[] expected = pattern();
            for (int i = 0; i < DMA_PIECES; i++) {
                long iova = slot.iova() + (long) i * DMA_PIECE;
                log.debug("MESSAGE WRITE addr 0x{} size {}", Long.toHexString(iova), DMA_PIECE);
                ctx.dma().writeByMessage(iova, MemorySegment.ofArray(expected).asSlice((long) i * DMA_PIECE, DMA_PIECE));
            }
            byte[] got = new byte[expected.length];
            for (int i = 0; i < DMA_PIECES; i += 2) {
                long iova = slot.iova() + (long) i * DMA_PIECE;
                log.debug("MESSAGE READ addr 0x{} size {}", Long.toHexString(iova), 2 * DMA_PIECE);
                ctx.dma().readByMessage(iova, MemorySegment.ofArray(got).asSlice((long) i * DMA_PIECE, 2 * DMA_PIECE));
            }
            if (!Arrays.equals(expected, got)) {
                fail("MESSAGE DMA write and read mismatch");
                return false;
            }
            log.debug("MESSAGE success");
            return true;
        } catch (RuntimeException e) {
            fail("MESSAGE DMA on slot 0 " + slot + " failed: " + e.getMessage());
            return false;
        }
    }

    private void fail(String what) {
        log.error("{}", what);
        synchronized (lock) {
            errors++;
        }
    }

    // ------------------------------------------------------------------------------------------------
    // DMA table

    @Override
    public void mapped(long iova, long size, int flags, boolean direct) {
        synchronized (lock) {
            for (int i = 0; i < DMA_SLOTS; i++) {
                if (slots[i] == null) {
                    slots[i] = new Slot(iova, size, flags, direct);
                    log.debug("DMA slot {}: iova 0x{} size 0x{} flags {} {}", i, Long.toHexString(iova),
                            Long.toHexString(size), flags, direct ? "fd" : "messages");
                    return;
                }
            }
        }
        fail("failed to add DMA region 0x" + Long.toHexString(iova) + ", slots full");
    }

    @Override
    public void unmapped(long iova, long size) {
        synchronized (lock) {
            for (int i = 0; i < DMA_SLOTS; i++) {
                if (slots[i] != null && slots[i].iova() == iova && slots[i].size() == size) {
                    slots[i] = null;
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Migration

    @Override
    public MigrationFeatures features() {
        return MigrationFeatures.STOP_COPY_PRE_COPY;
    }

    @Override
    public void transition(MigrationState from, MigrationState to) {
        log.debug("migration: transition {} -> {}", from, to);
        synchronized (lock) {
            switch (to) {
                case STOP_COPY -> {
                    disarm();
                    xfer = 0;
                }
                case PRE_COPY, RESUMING -> xfer = 0;
                case STOP -> {
                    if (from == MigrationState.STOP_COPY && xfer != streamSize()) {
                        throw VfioUserException.einval("STOP_COPY -> STOP after " + xfer + " of " + streamSize()
                                + " bytes (the C sample asserts here)");
                    }
                }
                case RUNNING -> {
                    if (xfer != streamSize()) {
                        throw VfioUserException.einval(from + " -> RUNNING after " + xfer + " of " + streamSize()
                                + " bytes moved (the C sample asserts here)");
                    }
                    arm(bar0 - now());
                }
                default -> throw VfioUserException.einval("unsupported state " + to);
            }
        }
    }

    @Override
    public long readData(MemorySegment dst) {
        synchronized (lock) {
            MigrationState state = context.migrationState();
            long total = state == MigrationState.STOP_COPY ? streamSize() : bar1Size;
            long n = Math.min(dst.byteSize(), total - xfer);
            if (n <= 0) {
                log.debug("no data left to read");
                return 0;
            }
            long start = xfer;
            long inBar1 = Math.max(0, Math.min(n, bar1Size - start));
            if (inBar1 > 0) {
                MemorySegment.copy(context.regionMemory(1), start, dst, 0, inBar1);
            }
            MemorySegment b0 = bar0Bytes();
            for (long i = inBar1; i < n; i++) {
                dst.set(ValueLayout.JAVA_BYTE, i, b0.get(ValueLayout.JAVA_BYTE, start + i - bar1Size));
            }
            xfer += n;
            return n;
        }
    }

    @Override
    public void writeData(MemorySegment src) {
        synchronized (lock) {
            long total = streamSize();
            long n = Math.min(src.byteSize(), total - xfer);
            long start = xfer;
            long inBar1 = Math.max(0, Math.min(n, bar1Size - start));
            if (inBar1 > 0) {
                MemorySegment.copy(src, 0, context.regionMemory(1), start, inBar1);
            }
            if (n > inBar1) {
                MemorySegment b0 = bar0Bytes();
                for (long i = inBar1; i < n; i++) {
                    b0.set(ValueLayout.JAVA_BYTE, start + i - bar1Size, src.get(ValueLayout.JAVA_BYTE, i));
                }
                bar0 = b0.get(LE_LONG, 0);
            }
            xfer += Math.max(0, n);
            if (n < src.byteSize()) {
                throw VfioUserException.einval("migration stream: " + src.byteSize() + " bytes written, only "
                        + Math.max(0, n) + " fit in the " + total + "-byte image");
            }
        }
    }

    private MemorySegment bar0Bytes() {
        MemorySegment b = MemorySegment.ofArray(new byte[(int) BAR0_SIZE]);
        b.set(LE_LONG, 0, bar0);
        return b;
    }

    @Override
    public PrecopyInfo precopyInfo() {
        synchronized (lock) {
            return new PrecopyInfo(Math.max(0, bar1Size - xfer), 0);
        }
    }

    @Override
    public long stopCopySize() {
        return streamSize();
    }

    /** For diagnostics: the raw BAR0 value. */
    long bar0() {
        synchronized (lock) {
            return bar0;
        }
    }
}
