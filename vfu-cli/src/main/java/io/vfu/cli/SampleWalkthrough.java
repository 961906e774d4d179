package io.vfu.cli;

import io.vfu.client.ClientOptions;
import io.vfu.client.GuestMemory;
import io.vfu.client.RegionInfo;
import io.vfu.client.VfioUserClient;
import io.vfu.core.linux.Errno;
import io.vfu.core.linux.EventFd;
import io.vfu.core.linux.Mapping;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.DeviceInfoReply;
import io.vfu.core.protocol.IrqInfoReply;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.RegionCapability;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.protocol.Wire;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.zip.CRC32C;

/**
 * The walk-through of libvfio-user's sample client ({@code samples/client.c}), in Java: drives a device that
 * behaves like libvfio-user's sample server ({@code samples/server.c}, or vfu-java's clone of it) through
 * negotiation, discovery, DMA, interrupts, dirty logging and a live migration into a fresh destination server
 * started by this class.
 *
 * <p>The sequence (see the shared notes on the samples, §4):
 * <ol>
 * <li>VERSION; REGION_READ of region 0xdeadbeef must fail with EINVAL; DEVICE_GET_INFO (9 regions); region
 *     info of every region (the library repeats a truncated request with the argsz the server asks for); BAR1's
 *     sparse areas are mmap'ed and unmapped; config space ids 0xdead/0xbeef/0xcafe/0xbabe; DEVICE_RESET.</li>
 * <li>2·S DMA regions of 4 KiB at IOVA i·4 KiB (S = the server's {@code max_msg_fds}) from one
 *     {@link GuestMemory}: region 0 and region S (slot 0 on the source and on the destination) without fd, so
 *     the device must reach them with DMA_READ/DMA_WRITE messages, which the client library serves; all others
 *     memfd-backed (slot 1 is written directly by the device).</li>
 * <li>IRQ info of every IRQ type; INTx vector 0 bound to an eventfd; DMA_LOGGING_START; BAR0 := now + 1 and
 *     read back; the interrupt (bounded wait); the device's DMA pattern 'A','B','C','D' (1 KiB each) checked in
 *     slot 0 and slot 1, and its read-back of slot 0 (4 KiB of DMA_READ) awaited; dirty pages of every region: regions 0 and 1 must be dirty (the server's bitmap, or a
 *     DMA_WRITE message the client served there); DMA_LOGGING_STOP; unmap of the first S regions.</li>
 * <li>BAR0 := now + {@code deadline} seconds (the destination's interrupt fires then); migration: a fake guest
 *     thread keeps writing random BAR1 contents (remembering the CRC32C of its last completed write); PRE_COPY
 *     and B1/1024 MIG_DATA_READs of 1 KiB (discarded); the guest stops; STOP_COPY and MIG_DATA_READs until an
 *     empty one (B1 + 8 bytes: BAR1 then bar0); STOP.</li>
 * <li>A fresh destination server (a child process, always reaped) at {@code SOCKET_migrated}: RESUMING; the
 *     data written back in the same chunks; STOP; BAR1 read back and its CRC32C compared with the guest's;
 *     RUNNING; the upper S DMA regions mapped; IRQs set up again; the destination's interrupt (at the deadline)
 *     and its DMA checked in slots 0 and 1 (IOVA S·4 KiB and (S+1)·4 KiB); DMA_UNMAP all; disconnect; the
 *     destination must exit with status 0. The source connection is closed last.</li>
 * </ol>
 *
 * <p>Every wait is bounded. Failures throw {@link Failure} (an {@link IOException} whose message is one line);
 * the library's own exceptions ({@link VfioUserException}, I/O errors) pass through.
 */
public final class SampleWalkthrough {
    /** The region index libvfio-user's sample client probes, expecting EINVAL. */
    public static final int BOGUS_REGION = 0xdeadbeef;
    /** Size of each DMA region. */
    public static final long DMA_REGION_SIZE = 4096;
    /** Chunk size of the migration data reads (the C client's). */
    public static final int MIG_CHUNK = 1024;
    /** Number of regions the sample device must have. */
    public static final int SAMPLE_REGIONS = 9;
    /** The placeholder for the destination socket path in a destination command. */
    public static final String SOCKET_PLACEHOLDER = "{}";
    /** The placeholder for BAR1's size (0x-hex, as found by GET_REGION_INFO) in a destination command. */
    public static final String BAR1_PLACEHOLDER = "{bar1}";

    private static final int BAR0 = 0;
    private static final int BAR1 = 1;
    private static final int CONFIG = 7;
    private static final int INTX = 0;
    private static final byte[] PATTERN = {'A', 'B', 'C', 'D'};
    private static final int PATTERN_PIECE = 1024;
    private static final int DESTINATION_LOG_LINES = 40;

    /**
     * What to run.
     *
     * @param socket             the source device's socket
     * @param destinationCommand the destination server's command line; the element {@code "{}"} is replaced by the
     *                           destination socket path ({@code SOCKET_migrated}), which is appended if there is none,
     *                           and {@code "{bar1}"} by BAR1's size in 0x-hex
     * @param bar1Size           BAR1 size the device must have, or 0 for "whatever GET_REGION_INFO says"
     * @param deadlineSeconds    BAR0 := now + this before migrating: when the destination's interrupt fires (≥ 2)
     * @param interruptTimeout   longest wait for the first interrupt, and for the device's DMA after an interrupt
     * @param startTimeout       longest wait for the destination to listen on its socket
     * @param replyTimeout       per-request reply timeout
     */
    public record Options(Path socket, List<String> destinationCommand, long bar1Size, int deadlineSeconds,
                          Duration interruptTimeout, Duration startTimeout, Duration replyTimeout) {
        public Options {
            Objects.requireNonNull(socket, "socket");
            destinationCommand = List.copyOf(destinationCommand);
            if (destinationCommand.isEmpty()) {
                throw new IllegalArgumentException("empty destination command");
            }
            if (bar1Size < 0 || bar1Size % MIG_CHUNK != 0) {
                throw new IllegalArgumentException("BAR1 size must be a positive multiple of " + MIG_CHUNK + ": " + bar1Size);
            }
            if (deadlineSeconds < 2) {
                throw new IllegalArgumentException("deadline must be at least 2 seconds: " + deadlineSeconds);
            }
            Objects.requireNonNull(interruptTimeout, "interruptTimeout");
            Objects.requireNonNull(startTimeout, "startTimeout");
            Objects.requireNonNull(replyTimeout, "replyTimeout");
        }

        /** Defaults: BAR1 size from region info, deadline 3 s, 5 s interrupt and reply timeouts, 30 s to start. */
        public static Options of(Path socket, List<String> destinationCommand) {
            return new Options(socket, destinationCommand, 0, 3, Duration.ofSeconds(5), Duration.ofSeconds(30),
                    ClientOptions.DEFAULT_REPLY_TIMEOUT);
        }

        /** A copy with another BAR1 size (0 = from region info). */
        public Options withBar1Size(long size) {
            return new Options(socket, destinationCommand, size, deadlineSeconds, interruptTimeout, startTimeout, replyTimeout);
        }

        /** A copy with another deadline. */
        public Options withDeadlineSeconds(int seconds) {
            return new Options(socket, destinationCommand, bar1Size, seconds, interruptTimeout, startTimeout, replyTimeout);
        }

        /** The destination socket: {@code SOCKET_migrated}. */
        public Path destinationSocket() {
            return socket.resolveSibling(socket.getFileName() + "_migrated");
        }
    }

    /** A check of the walk-through failed; the message is one line saying which. */
    public static final class Failure extends IOException {
        public Failure(String message) {
            super(message);
        }

        public Failure(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private final Options options;
    private final PrintWriter out;
    private final PrintWriter destinationLog;
    private final Deque<String> destinationTail = new ArrayDeque<>();
    private Thread destinationPump;

    /**
     * @param out            progress lines ({@code client: ...})
     * @param destinationLog receives the destination's stdout and stderr lines, or {@code null} to drop them (the
     *                       last lines are kept for failure messages either way)
     */
    public SampleWalkthrough(Options options, PrintWriter out, PrintWriter destinationLog) {
        this.options = Objects.requireNonNull(options, "options");
        this.out = Objects.requireNonNull(out, "out");
        this.destinationLog = destinationLog;
    }

    /**
     * The default destination: this JVM's {@code java} running
     * {@code io.vfu.cli.VfuCommand sample-server --bar1-size {bar1} -v {}} with this JVM's class path.
     */
    public static List<String> defaultDestinationCommand() {
        String java = ProcessHandle.current().info().command()
                .orElseGet(() -> Path.of(System.getProperty("java.home"), "bin", "java").toString());
        return List.of(java, "--enable-native-access=ALL-UNNAMED", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-cp", System.getProperty("java.class.path"), VfuCommand.class.getName(),
                "sample-server", "--bar1-size", BAR1_PLACEHOLDER, "-v", SOCKET_PLACEHOLDER);
    }

    /** Splits a command given as one string at white space (no quoting). */
    public static List<String> parseCommand(String command) {
        List<String> words = new ArrayList<>();
        for (String w : command.trim().split("\\s+")) {
            if (!w.isEmpty()) {
                words.add(w);
            }
        }
        if (words.isEmpty()) {
            throw new IllegalArgumentException("empty command");
        }
        return words;
    }

    private void say(String line) {
        out.println("client: " + line);
        out.flush();
    }

    private static void check(boolean ok, String what) throws Failure {
        if (!ok) {
            throw new Failure(what);
        }
    }

    /**
     * Runs the whole walk-through.
     *
     * @throws Failure a check failed (one-line message)
     */
    public void run() throws IOException, InterruptedException {
        try (GuestMemory memory = new GuestMemory();
             VfioUserClient source = connect(options.socket(), memory)) {
            long bar1Size = discover(source);
            int s = source.serverCapabilities().maxMsgFdsOrDefault();
            check(s >= 2, "the server's max_msg_fds is " + s + "; the walk-through needs at least 2");
            List<GuestMemory.Region> regions = new ArrayList<>();
            for (int i = 0; i < 2 * s; i++) {
                long iova = i * DMA_REGION_SIZE;
                regions.add(i == 0 || i == s
                        ? memory.allocateWithoutFd(iova, DMA_REGION_SIZE, true, true)
                        : memory.allocate(iova, DMA_REGION_SIZE, true, true));
            }
            for (GuestMemory.Region r : regions) {
                source.dmaMap(r);
            }
            say("mapped " + regions.size() + " DMA regions of " + DMA_REGION_SIZE + " bytes (S = " + s
                    + "; regions 0 and " + s + " without fd)");
            try (EventFd irq = EventFd.create()) {
                setUpIrqs(source, irq);
                source.dmaLoggingStart(DMA_REGION_SIZE, List.of());
                say("dirty page logging started");
                alignToSecond();
                long t = nowSeconds() + 1;
                writeBar0(source, t);
                say("wrote to BAR0: " + t);
                say("read from BAR0: " + readBar0(source));
                long served = regions.get(0).dmaBytesRead();
                awaitInterrupt(irq, options.interruptTimeout().toMillis(), "the source");
                awaitDeviceDma(regions.get(0), regions.get(1), served, "source");
            }
            checkDirty(source, regions);
            source.dmaLoggingStop();
            say("dirty page logging stopped");
            for (int i = 0; i < s; i++) {
                source.dmaUnmap(regions.get(i));
            }
            say("unmapped the first " + s + " DMA regions");
            long deadline = nowSeconds() + options.deadlineSeconds();
            writeBar0(source, deadline);
            say("wrote to BAR0: " + deadline + " (now + " + options.deadlineSeconds() + " s)");

            Migrated data = migrateOut(source, bar1Size, deadline);
            migrateIn(memory, regions.subList(s, 2 * s), bar1Size, data, deadline);
            say("closing the source connection");
        }
        say("done: every check passed");
    }

    // ------------------------------------------------------------------------------------------------

    private VfioUserClient connect(Path socket, GuestMemory memory) throws IOException {
        if (!Files.exists(socket)) {
            throw new Failure("cannot connect to " + socket + ": no such file");
        }
        try {
            return VfioUserClient.connect(socket, clientOptions(memory));
        } catch (IOException e) {
            throw new IOException("cannot connect to " + socket + ": " + e.getMessage(), e);
        }
    }

    private ClientOptions clientOptions(GuestMemory memory) {
        return ClientOptions.builder().replyTimeout(options.replyTimeout()).guestMemory(memory).build();
    }

    /** Steps before DMA: the bogus region, device info, region info, config space, reset. Returns BAR1's size. */
    private long discover(VfioUserClient client) throws IOException {
        var v = client.serverVersion();
        say("negotiated version " + v.major() + "." + v.minor() + ", max_msg_fds "
                + client.serverCapabilities().maxMsgFdsOrDefault() + ", max_data_xfer_size "
                + client.serverCapabilities().maxDataXferSizeOrDefault()
                + (client.twinSocketActive() ? ", twin socket" : ""));
        try {
            client.read(BOGUS_REGION, 0, 4);
            throw new Failure("REGION_READ of region 0xdeadbeef succeeded; expected EINVAL");
        } catch (VfioUserException e) {
            check(e.errno() == Errno.EINVAL, "REGION_READ of region 0xdeadbeef failed with " + e.errno()
                    + ", expected EINVAL");
            say("REGION_READ of region 0xdeadbeef failed with EINVAL, as expected");
        }
        DeviceInfoReply info = client.deviceInfo();
        say("devinfo: flags " + Wire.hex(info.flags()) + ", num_regions " + info.numRegions() + ", num_irqs "
                + info.numIrqs());
        check(info.numRegions() == SAMPLE_REGIONS, "the device has " + info.numRegions() + " regions, expected "
                + SAMPLE_REGIONS);
        long bar1Size = -1;
        for (int i = 0; i < SAMPLE_REGIONS; i++) {
            try (RegionInfo r = client.regionInfo(i)) {
                say("region_info[" + i + "] offset " + Wire.hex(r.offset()) + " flags " + Wire.hex(r.reply().flags())
                        + " size " + r.size() + " argsz " + r.reply().argsz() + " #FDs " + (r.fd().isPresent() ? 1 : 0));
                if (i == BAR1) {
                    bar1Size = r.size();
                    mapSparseAreas(r);
                }
            }
        }
        if (options.bar1Size() != 0) {
            check(bar1Size == options.bar1Size(), "BAR1 is " + Wire.hex(bar1Size) + " bytes, expected "
                    + Wire.hex(options.bar1Size()));
        }
        check(bar1Size > 0 && bar1Size % MIG_CHUNK == 0, "BAR1 size " + Wire.hex(bar1Size)
                + " is not a positive multiple of " + MIG_CHUNK);
        checkConfigSpace(client);
        client.reset();
        say("device reset");
        return bar1Size;
    }

    private void mapSparseAreas(RegionInfo r) throws IOException {
        List<RegionCapability.Area> areas = r.sparseMmapAreas();
        check(r.mappable() && r.fd().isPresent(), "BAR1 is not mappable with an fd (flags "
                + Wire.hex(r.reply().flags()) + ", " + (r.fd().isPresent() ? "fd" : "no fd") + ")");
        check(!areas.isEmpty(), "BAR1 has no sparse mmap areas");
        say("BAR1: " + areas.size() + " sparse mmap areas");
        for (int a = 0; a < areas.size(); a++) {
            RegionCapability.Area area = areas.get(a);
            try (Mapping m = Mapping.map(r.fd().getAsInt(), r.offset() + area.offset(), area.size(), true, r.writable())) {
                say("  area " + a + " offset " + Wire.hex(area.offset()) + " size " + area.size() + ": mmap "
                        + (m.segment().byteSize() == area.size() ? "ok" : "short") + ", unmapped");
            }
        }
    }

    private void checkConfigSpace(VfioUserClient client) throws IOException {
        MemorySegment cfg = MemorySegment.ofArray(client.read(CONFIG, 0, 64));
        int vendor = Short.toUnsignedInt(cfg.get(Wire.U16, 0));
        int device = Short.toUnsignedInt(cfg.get(Wire.U16, 2));
        int subVendor = Short.toUnsignedInt(cfg.get(Wire.U16, 0x2c));
        int subId = Short.toUnsignedInt(cfg.get(Wire.U16, 0x2e));
        say(String.format("config space: vendor %04x device %04x subsystem %04x:%04x", vendor, device, subVendor, subId));
        check(vendor == 0xdead && device == 0xbeef && subVendor == 0xcafe && subId == 0xbabe,
                String.format("config space ids %04x:%04x subsystem %04x:%04x, expected dead:beef subsystem cafe:babe",
                        vendor, device, subVendor, subId));
    }

    private void setUpIrqs(VfioUserClient client, EventFd irq) throws IOException {
        long n = client.deviceInfo().numIrqs();
        for (int i = 0; i < n; i++) {
            IrqInfoReply r = client.irqInfo(i);
            if (r.count() > 0) {
                say("IRQ " + irqName(i) + ": count=" + r.count() + " flags=" + Wire.hex(r.flags()));
            }
        }
        client.setIrqEventFds(INTX, 0, List.of(irq));
        say("INTx vector 0 -> eventfd");
    }

    private static String irqName(int index) {
        return switch (index) {
            case 0 -> "INTx";
            case 1 -> "MSI";
            case 2 -> "MSI-X";
            case 3 -> "ERR";
            case 4 -> "REQ";
            default -> "#" + index;
        };
    }

    private static long nowSeconds() {
        return System.currentTimeMillis() / 1000;
    }

    /**
     * Waits until the wall clock is early in a second: the sample server arms its alarm for {@code t − now} whole
     * seconds, and a second boundary between our clock read and its would make that 0 (disarmed).
     */
    private static void alignToSecond() throws InterruptedException {
        long ms = System.currentTimeMillis() % 1000;
        if (ms > 600) {
            Thread.sleep(1000 - ms + 20);
        }
    }

    private static void writeBar0(VfioUserClient client, long value) throws IOException {
        byte[] b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(value).array();
        client.write(BAR0, 0, b);
    }

    private static long readBar0(VfioUserClient client) throws IOException {
        return ByteBuffer.wrap(client.read(BAR0, 0, 8)).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    private void awaitInterrupt(EventFd irq, long timeoutMillis, String who) throws IOException {
        if (!irq.await(Math.max(1, timeoutMillis))) {
            throw new Failure("no interrupt from " + who + " within " + timeoutMillis + " ms");
        }
        irq.read();
        say("INTx triggered!");
    }

    /**
     * Waits (bounded) until the device's DMA after an interrupt is complete: the pattern in both slots, and the
     * device's read-back of slot 0 (4 KiB of DMA_READ messages, which the client library serves on its own thread)
     * served. Only then may the walk-through unmap: a device whose DMA runs beside the request loop would
     * otherwise see its last reads fail.
     */
    private void awaitDeviceDma(GuestMemory.Region slot0, GuestMemory.Region slot1, long readBefore, String side)
            throws IOException, InterruptedException {
        long expectRead = (long) PATTERN.length * PATTERN_PIECE;
        long end = System.nanoTime() + options.interruptTimeout().toNanos();
        while (!(hasPattern(slot0) && hasPattern(slot1) && slot0.dmaBytesRead() - readBefore >= expectRead)) {
            if (System.nanoTime() - end > 0) {
                throw new Failure("the device's DMA did not complete on the " + side + " within "
                        + options.interruptTimeout().toMillis() + " ms: slot 0 (" + slot0 + ") pattern "
                        + (hasPattern(slot0) ? "ok" : "missing") + ", " + (slot0.dmaBytesRead() - readBefore)
                        + " of " + expectRead + " bytes read back by DMA_READ; slot 1 (" + slot1 + ") pattern "
                        + (hasPattern(slot1) ? "ok" : "missing"));
            }
            Thread.sleep(10);
        }
        say("DMA pattern ABCD found in slot 0 (iova " + Wire.hex(slot0.iova()) + ", " + kind(slot0) + ") and slot 1 (iova "
                + Wire.hex(slot1.iova()) + ", " + kind(slot1) + "); slot 0 read back by the device");
    }

    private static String kind(GuestMemory.Region r) {
        return r.fd().isPresent() ? "memfd" : "no fd: DMA messages";
    }

    private static boolean hasPattern(GuestMemory.Region r) {
        MemorySegment m = r.segment();
        if (m.byteSize() < (long) PATTERN.length * PATTERN_PIECE) {
            return false;
        }
        for (int p = 0; p < PATTERN.length; p++) {
            for (int i = 0; i < PATTERN_PIECE; i++) {
                if (m.get(ValueLayout.JAVA_BYTE, (long) p * PATTERN_PIECE + i) != PATTERN[p]) {
                    return false;
                }
            }
        }
        return true;
    }

    private void checkDirty(VfioUserClient client, List<GuestMemory.Region> regions) throws IOException {
        boolean[] dirty = new boolean[regions.size()];
        for (int i = 0; i < regions.size(); i++) {
            GuestMemory.Region r = regions.get(i);
            String server = "-";
            boolean serverDirty = false;
            if (r.fd().isPresent()) {
                MemorySegment bitmap = client.dmaLoggingReport(r.iova(), r.size(), DMA_REGION_SIZE);
                int b = Byte.toUnsignedInt(bitmap.get(ValueLayout.JAVA_BYTE, 0));
                server = Wire.hex(b);
                serverDirty = b != 0;
            }
            boolean clientDirty = r.readAndClearDirty().get(ValueLayout.JAVA_BYTE, 0) != 0;
            dirty[i] = serverDirty || clientDirty;
            say(String.format("dirty bitmap %s-%s: server %s, client-tracked DMA_WRITE %s", Wire.hex(r.iova()),
                    Wire.hex(r.iova() + r.size() - 1), server, clientDirty ? "yes" : "no"));
        }
        check(dirty[0] && dirty[1], "regions 0 and 1 must be dirty after the device's DMA: region 0 "
                + (dirty[0] ? "dirty" : "clean") + ", region 1 " + (dirty[1] ? "dirty" : "clean"));
    }

    // ------------------------------------------------------------------------------------------------
    // Migration

    /** What left the source: the STOP_COPY chunks and the guest's last BAR1 CRC. */
    private record Migrated(List<byte[]> chunks, long guestCrc, long guestWrites) {
    }

    private Migrated migrateOut(VfioUserClient source, long bar1Size, long deadline)
            throws IOException, InterruptedException {
        FakeGuest guest = new FakeGuest(source, (int) bar1Size);
        Thread thread = Thread.ofPlatform().name("vfu-fake-guest").daemon().start(guest);
        try {
            if (!guest.firstWrite.await(options.replyTimeout().toMillis() * 2, TimeUnit.MILLISECONDS)) {
                throw new Failure("the fake guest's first BAR1 write did not complete");
            }
            guest.rethrow();
            say("fake guest writing BAR1");
            source.setMigrationState(MigrationState.PRE_COPY);
            say("device state: pre-copy");
            int reads = 0;
            long total = 0;
            MemorySegment buf = MemorySegment.ofArray(new byte[MIG_CHUNK]);
            while (total < bar1Size) {
                long n = source.readMigrationChunk(buf);
                reads++;
                if (n == 0) {
                    break;
                }
                total += n;
            }
            check(reads == bar1Size / MIG_CHUNK && total == bar1Size, "pre-copy: " + reads + " reads returned "
                    + total + " bytes, expected " + bar1Size / MIG_CHUNK + " reads of " + MIG_CHUNK);
            say("pre-copy: " + reads + " reads, " + total + " bytes (discarded)");
        } finally {
            say("stopping fake guest thread");
            guest.stop.set(true);
            thread.join(options.replyTimeout().toMillis() * 2);
        }
        check(!thread.isAlive(), "the fake guest thread did not stop");
        guest.rethrow();
        say("fake guest made " + guest.writes + " BAR1 writes, last CRC32C " + Wire.hex(guest.lastCrc));

        say("setting device state to stop-and-copy");
        source.setMigrationState(MigrationState.STOP_COPY);
        List<byte[]> chunks = new ArrayList<>();
        long total = 0;
        MemorySegment buf = MemorySegment.ofArray(new byte[MIG_CHUNK]);
        long limit = bar1Size + 8;
        while (true) {
            long n = source.readMigrationChunk(buf);
            if (n == 0) {
                break;
            }
            total += n;
            check(total <= limit, "stop-and-copy: more than " + limit + " bytes of migration data");
            chunks.add(buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE));
        }
        check(total == limit, "stop-and-copy: " + total + " bytes of migration data, expected " + limit
                + " (BAR1 + bar0)");
        check(chunks.size() == (limit + MIG_CHUNK - 1) / MIG_CHUNK, "stop-and-copy: " + chunks.size()
                + " non-empty reads, expected " + (limit + MIG_CHUNK - 1) / MIG_CHUNK);
        byte[] stream = concat(chunks);
        long migratedBar0 = ByteBuffer.wrap(stream, (int) bar1Size, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        check(migratedBar0 == deadline, "stop-and-copy: the stream ends with bar0 = " + migratedBar0
                + ", expected the deadline " + deadline);
        CRC32C crc = new CRC32C();
        crc.update(stream, 0, (int) bar1Size);
        check(crc.getValue() == guest.lastCrc, "stop-and-copy: BAR1 in the stream has CRC32C "
                + Wire.hex(crc.getValue()) + ", the guest's last write " + Wire.hex(guest.lastCrc));
        say("stop-and-copy: " + (chunks.size() + 1) + " reads, " + total + " bytes (BAR1 + bar0 " + migratedBar0 + ")");
        source.setMigrationState(MigrationState.STOP);
        say("device state: stop");
        return new Migrated(chunks, guest.lastCrc, guest.writes);
    }

    private static byte[] concat(List<byte[]> chunks) {
        int n = chunks.stream().mapToInt(c -> c.length).sum();
        byte[] all = new byte[n];
        int at = 0;
        for (byte[] c : chunks) {
            System.arraycopy(c, 0, all, at, c.length);
            at += c.length;
        }
        return all;
    }

    /** Writes random BAR1 contents until stopped; remembers the CRC32C of the last completed write. */
    private static final class FakeGuest implements Runnable {
        final VfioUserClient client;
        final int size;
        final AtomicBoolean stop = new AtomicBoolean();
        final CountDownLatch firstWrite = new CountDownLatch(1);
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        volatile long lastCrc;
        volatile long writes;

        FakeGuest(VfioUserClient client, int size) {
            this.client = client;
            this.size = size;
        }

        @Override
        public void run() {
            SplittableRandom random = new SplittableRandom();
            byte[] data = new byte[size];
            try {
                while (!stop.get()) {
                    random.nextBytes(data);
                    client.write(BAR1, 0, data);
                    CRC32C crc = new CRC32C();
                    crc.update(data);
                    lastCrc = crc.getValue();
                    writes++;
                    firstWrite.countDown();
                }
            } catch (Throwable t) {
                failure.set(t);
            } finally {
                firstWrite.countDown();
            }
        }

        void rethrow() throws IOException {
            Throwable t = failure.get();
            if (t != null) {
                throw new Failure("the fake guest's BAR1 write failed: " + VfuCommand.reason(t), t);
            }
        }
    }

    private void migrateIn(GuestMemory memory, List<GuestMemory.Region> upper, long bar1Size, Migrated data,
                           long deadline) throws IOException, InterruptedException {
        Path socket = options.destinationSocket();
        removeStaleSocket(socket);
        List<String> command = new ArrayList<>();
        boolean placed = false;
        for (String w : options.destinationCommand()) {
            if (w.equals(SOCKET_PLACEHOLDER)) {
                command.add(socket.toString());
                placed = true;
            } else if (w.equals(BAR1_PLACEHOLDER)) {
                command.add(Wire.hex(bar1Size));
            } else {
                command.add(w);
            }
        }
        if (!placed) {
            command.add(socket.toString());
        }
        say("starting destination server: " + String.join(" ", abbreviate(command)));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        Thread pump = pump(process);
        destinationPump = pump;
        try {
            process.getOutputStream().close();
            try (VfioUserClient dest = connectDestination(process, socket, memory)) {
                say("connected to the destination " + socket);
                dest.setMigrationState(MigrationState.RESUMING);
                say("destination state: resuming");
                for (byte[] chunk : data.chunks()) {
                    dest.writeMigrationData(MemorySegment.ofArray(chunk));
                }
                say("wrote " + data.chunks().size() + " chunks of migration data");
                dest.setMigrationState(MigrationState.STOP);
                byte[] bar1 = dest.read(BAR1, 0, (int) bar1Size);
                CRC32C crc = new CRC32C();
                crc.update(bar1);
                check(crc.getValue() == data.guestCrc(), "destination BAR1 CRC32C " + Wire.hex(crc.getValue())
                        + " differs from the guest's last write " + Wire.hex(data.guestCrc()));
                say("destination BAR1 CRC32C " + Wire.hex(crc.getValue()) + " matches the guest's last write");
                long left = deadline - nowSeconds();
                try {
                    dest.setMigrationState(MigrationState.RUNNING);
                } catch (VfioUserException e) {
                    throw new Failure("the destination refused RUNNING (" + e.errno() + ", " + left
                            + " s before the deadline; a larger --deadline may help): " + e.getMessage(), e);
                }
                say("destination state: running");
                for (GuestMemory.Region r : upper) {
                    dest.dmaMap(r);
                }
                say("mapped " + upper.size() + " DMA regions on the destination");
                try (EventFd irq = EventFd.create()) {
                    setUpIrqs(dest, irq);
                    long served = upper.get(0).dmaBytesRead();
                    long wait = Math.max(0, deadline + 1 - nowSeconds()) * 1000 + options.interruptTimeout().toMillis();
                    awaitInterrupt(irq, wait, "the destination");
                    awaitDeviceDma(upper.get(0), upper.get(1), served, "destination");
                }
                dest.dmaUnmapAll();
                say("unmapped all DMA regions on the destination");
            }
            if (!process.waitFor(options.startTimeout().toMillis(), TimeUnit.MILLISECONDS)) {
                throw new Failure("the destination server did not exit after the client left" + tail());
            }
            pump.join(1000);
            int exit = process.exitValue();
            check(exit == 0, "the destination server exited with status " + exit + tail());
            say("destination server exited with status 0");
        } finally {
            if (process.isAlive()) {
                process.destroy();
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                }
            }
            while (true) {
                try {
                    process.waitFor();
                    break;
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    process.destroyForcibly();
                }
            }
            pump.join(1000);
            process.getInputStream().close();
        }
    }

    private static List<String> abbreviate(List<String> command) {
        List<String> r = new ArrayList<>(command);
        for (int i = 0; i < r.size(); i++) {
            if (r.get(i).length() > 80) {
                r.set(i, r.get(i).substring(0, 40) + "...");
            }
        }
        return r;
    }

    private static void removeStaleSocket(Path socket) throws IOException {
        BasicFileAttributes a;
        try {
            a = Files.readAttributes(socket, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (java.nio.file.NoSuchFileException e) {
            return;
        }
        if (!a.isOther()) {
            throw new Failure("the destination socket path " + socket + " exists and is not a socket");
        }
        Files.delete(socket);
    }

    private VfioUserClient connectDestination(Process process, Path socket, GuestMemory memory)
            throws IOException, InterruptedException {
        long end = System.nanoTime() + options.startTimeout().toNanos();
        IOException last = null;
        while (true) {
            if (!process.isAlive()) {
                destinationPump.join(1000); // its last words, for the message
                throw new Failure("the destination server exited with status " + process.exitValue()
                        + " before accepting a connection" + tail());
            }
            if (Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
                UnixSocket s = null;
                try {
                    s = UnixSocket.connect(socket);
                } catch (IOException e) {
                    last = e; // bound but not listening yet (ECONNREFUSED): try again
                }
                if (s != null) {
                    return VfioUserClient.connect(s, clientOptions(memory));
                }
            }
            if (System.nanoTime() - end > 0) {
                throw new Failure("the destination server did not listen on " + socket + " within "
                        + options.startTimeout().toSeconds() + " s" + (last != null ? " (" + last.getMessage() + ")" : "")
                        + tail());
            }
            Thread.sleep(5);
        }
    }

    private Thread pump(Process process) {
        return Thread.ofPlatform().name("vfu-destination-output").daemon().start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    synchronized (destinationTail) {
                        destinationTail.addLast(line);
                        if (destinationTail.size() > DESTINATION_LOG_LINES) {
                            destinationTail.removeFirst();
                        }
                    }
                    if (destinationLog != null) {
                        destinationLog.println("destination: " + line);
                        destinationLog.flush();
                    }
                }
            } catch (IOException e) {
                // the pipe was closed: the destination is gone
            }
        });
    }

    /** The destination's last output line, for a failure message. */
    private String tail() {
        synchronized (destinationTail) {
            return destinationTail.isEmpty() ? "" : "; its last output: " + destinationTail.peekLast();
        }
    }

    /** The destination's last output lines (up to 40), e.g. for a test's failure message. */
    public List<String> destinationOutputTail() {
        synchronized (destinationTail) {
            return List.copyOf(destinationTail);
        }
    }
}
