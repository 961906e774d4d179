package io.vfu.devices;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.Bar;
import io.vfu.server.DeviceContext;
import io.vfu.server.MigrationHandler;
import io.vfu.server.PciDevice;
import io.vfu.server.Region;
import io.vfu.server.RegionHandler;
import io.vfu.server.ResetReason;
import io.vfu.server.pci.Capability;
import io.vfu.server.pci.ExtendedCapability;
import io.vfu.server.pci.PciIdentity;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * A small but complete PCI Express endpoint to try the library, the {@code vfu} command and migration with.
 * Built only on vfu-server's public API.
 *
 * <h2>Identity</h2>
 * Vendor 0x5646 ("VF", not a registered id: for experiments only), device 0x0001, subsystem 0x5646:0x0001,
 * class 0xff0000 (device does not fit any defined class), revision 1.
 *
 * <h2>BAR0: registers (4 KiB, 32-bit memory, trapped)</h2>
 * Accesses must be 4 or 8 bytes, naturally aligned (EINVAL otherwise). Offsets not listed read 0 and ignore
 * writes.
 * <pre>
 *   0x00  ID         ro  u32  0x56460001 ("VF", device 1)
 *   0x08  SCRATCH0   rw  u64  } four scratch registers, kept across migration and client
 *   0x10  SCRATCH1   rw  u64  } disconnects, cleared by DEVICE_RESET and FLR
 *   0x18  SCRATCH2   rw  u64  }
 *   0x20  SCRATCH3   rw  u64  }
 *   0x28  DMA_ADDR   rw  u64  IOVA the doorbell writes the counter to
 *   0x30  VECTOR     rw  u32  MSI-X vector the doorbell raises (0..7)
 *   0x38  DOORBELL   wo  u32  any write: COUNTER += 1, DMA-write COUNTER (u64 LE) to DMA_ADDR, raise VECTOR
 *   0x40  COUNTER    ro  u64  doorbells served
 *   0x48  STATUS     ro  u32  0, or the errno of the last doorbell whose DMA failed (e.g. 14 EFAULT)
 * </pre>
 * Every register is kept when a client disconnects and cleared by DEVICE_RESET and function level reset.
 * A doorbell rung while the device is stopped for migration (STOP, STOP_COPY, RESUMING) is latched and
 * served when the device runs again, since a stopped device must neither DMA nor interrupt.
 *
 * <h2>Other regions and capabilities</h2>
 * BAR2: 1 MiB 64-bit prefetchable memory, mmap-able whole (a memfd shared with the client). BAR4: 4 KiB
 * 32-bit memory holding the MSI-X table (8 vectors at 0x000) and PBA (at 0x800), reached by messages only.
 * Capabilities: Power Management, MSI-X (8 vectors), PCI Express endpoint; extended: Device Serial Number
 * {@link #SERIAL}. IRQs: INTx 1, MSI 0, MSI-X 8, ERR 1, REQ 1.
 *
 * <h2>Migration (STOP_COPY | PRE_COPY)</h2>
 * The stream is a sequence of complete images; the destination keeps the last. An image is
 * <pre>
 *   0   magic "VFUDEMO1" (8)   8  version u32 = 1   12  register bytes u32 = 64   16  BAR2 bytes u64
 *   24  registers: SCRATCH0..3, DMA_ADDR, VECTOR (as u64), COUNTER, STATUS (as u64): 8 x u64 LE
 *   88  BAR2 contents (1 MiB)
 * </pre>
 * RUNNING→PRE_COPY queues one image (the bulk, read while the device runs); →STOP_COPY queues the final
 * image after whatever is still unread, so the stream always consists of whole images. RESUMING→STOP checks
 * the length (a positive multiple of the image size), the magic, the version and both lengths of every
 * image, then restores registers and BAR2 from the last one; a bad stream fails the transition with EINVAL
 * and leaves the device unchanged.
 *
 * <p>Threading: the library calls every callback on its serving thread; the device needs no locking.
 */
public final class DemoDevice implements RegionHandler, MigrationHandler {
    /** Vendor id: 0x5646, "VF" (unregistered). */
    public static final int VENDOR_ID = 0x5646;
    /** Device id. */
    public static final int DEVICE_ID = 0x0001;
    /** Identity registers. */
    public static final PciIdentity IDENTITY = new PciIdentity(VENDOR_ID, DEVICE_ID, VENDOR_ID, 0x0001, 0xff0000, 1);
    /** Device Serial Number. */
    public static final long SERIAL = 0x0123_4567_89ab_cdefL;
    /** Size of BAR0. */
    public static final long BAR0_SIZE = 0x1000;
    /** Size of BAR2. */
    public static final long BAR2_SIZE = 1L << 20;
    /** Size of BAR4. */
    public static final long BAR4_SIZE = 0x1000;
    /** MSI-X vectors. */
    public static final int MSIX_VECTORS = 8;
    /** MSI-X PBA offset in BAR4. */
    public static final long PBA_OFFSET = 0x800;

    public static final int REG_ID = 0x00;
    public static final int REG_SCRATCH0 = 0x08;
    public static final int SCRATCH_COUNT = 4;
    public static final int REG_DMA_ADDR = 0x28;
    public static final int REG_VECTOR = 0x30;
    public static final int REG_DOORBELL = 0x38;
    public static final int REG_COUNTER = 0x40;
    public static final int REG_STATUS = 0x48;
    /** Value of the ID register. */
    public static final int ID_VALUE = 0x5646_0001;

    static final byte[] MAGIC = "VFUDEMO1".getBytes(StandardCharsets.US_ASCII);
    static final int STREAM_VERSION = 1;
    static final int HEADER_BYTES = 24;
    static final int REGISTER_BYTES = 64;
    /** Bytes of one migration image. */
    public static final long IMAGE_SIZE = HEADER_BYTES + REGISTER_BYTES + BAR2_SIZE;

    private final long[] scratch = new long[SCRATCH_COUNT];
    private long dmaAddress;
    private int vector;
    private long counter;
    private int status;
    private int latchedDoorbells;
    private DeviceContext context;
    private ByteBuffer outgoing;
    private ByteArrayOutputStream incoming;

    /** A device in its reset state; {@link #build()} describes it to the server. */
    public DemoDevice() {
    }

    /** The device description to serve (one {@link io.vfu.server.VfioUserServer} per instance). */
    public PciDevice build() {
        return PciDevice.builder()
                .identity(IDENTITY)
                .bar(0, Bar.mem32(Region.trapped(BAR0_SIZE, this)))
                .bar(2, Bar.mem64(Region.memory(BAR2_SIZE)).asPrefetchable())
                .bar(4, Bar.mem32(new Region(BAR4_SIZE, true, true, null, true, List.of())))
                .capability(Capability.PowerManagement.standard())
                .capability(new Capability.Msix(MSIX_VECTORS, 4, 0, 4, PBA_OFFSET))
                .capability(Capability.PciExpress.endpoint())
                .extendedCapability(new ExtendedCapability.DeviceSerialNumber(SERIAL))
                .migration(this)
                .reset(this::reset)
                .onAttach(ctx -> context = ctx)
                .build();
    }

    /** Doorbells served so far (the COUNTER register). */
    public long counter() {
        return counter;
    }

    // ------------------------------------------------------------------------------------------------
    // BAR0

    private static void checkAccess(long offset, long size) {
        if ((size != 4 && size != 8) || (offset & (size - 1)) != 0) {
            throw VfioUserException.einval("BAR0: access of " + size + " bytes at 0x" + Long.toHexString(offset)
                    + " (only aligned 4- or 8-byte accesses)");
        }
    }

    private long register(long reg) {
        return switch ((int) reg) {
            case REG_ID -> Integer.toUnsignedLong(ID_VALUE);
            case REG_DMA_ADDR -> dmaAddress;
            case REG_VECTOR -> Integer.toUnsignedLong(vector);
            case REG_COUNTER -> counter;
            case REG_STATUS -> Integer.toUnsignedLong(status);
            default -> isScratch(reg) ? scratch[(int) (reg - REG_SCRATCH0) >>> 3] : 0;
        };
    }

    private static boolean isScratch(long reg) {
        return reg >= REG_SCRATCH0 && reg < REG_SCRATCH0 + 8L * SCRATCH_COUNT;
    }

    @Override
    public void read(long offset, MemorySegment dst) {
        checkAccess(offset, dst.byteSize());
        long value = register(offset & ~7L) >>> (8 * (offset & 7));
        if (dst.byteSize() == 8) {
            dst.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, value);
        } else {
            dst.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, (int) value);
        }
    }

    @Override
    public void write(long offset, MemorySegment src) {
        checkAccess(offset, src.byteSize());
        long reg = offset & ~7L;
        long old = register(reg);
        long value;
        if (src.byteSize() == 8) {
            value = src.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        } else {
            long v = Integer.toUnsignedLong(src.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0));
            value = (offset & 4) == 0 ? (old & 0xffff_ffff_0000_0000L) | v : (old & 0xffff_ffffL) | v << 32;
        }
        switch ((int) reg) {
            case REG_DMA_ADDR -> dmaAddress = value;
            case REG_VECTOR -> vector = (int) value;
            case REG_DOORBELL -> doorbell();
            default -> {
                if (isScratch(reg)) {
                    scratch[(int) (reg - REG_SCRATCH0) >>> 3] = value;
                }
            }
        }
    }

    private void doorbell() {
        if (context == null || !context.migrationState().isRunning()) {
            latchedDoorbells++;
            return;
        }
        serveDoorbell();
    }

    private void serveDoorbell() {
        counter++;
        MemorySegment value = MemorySegment.ofArray(new byte[8]);
        value.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, counter);
        try {
            context.dma().write(dmaAddress, value);
            status = 0;
        } catch (VfioUserException e) {
            status = e.errno().value();
        }
        if (vector >= 0 && vector < MSIX_VECTORS) {
            context.irqs().trigger(IrqIndex.MSIX, vector);
        }
    }

    private void reset(ResetReason reason) {
        latchedDoorbells = 0;
        incoming = null;
        if (reason == ResetReason.LOST_CONNECTION) {
            return; // device state outlives a client (protocol reference §2); the next client finds it
        }
        Arrays.fill(scratch, 0);
        dmaAddress = 0;
        vector = 0;
        counter = 0;
        status = 0;
    }

    // ------------------------------------------------------------------------------------------------
    // Migration

    @Override
    public MigrationFeatures features() {
        return MigrationFeatures.STOP_COPY_PRE_COPY;
    }

    @Override
    public void transition(MigrationState from, MigrationState to) {
        if (to == MigrationState.PRE_COPY || to == MigrationState.STOP_COPY) {
            ByteBuffer image = image();
            if (outgoing != null && outgoing.hasRemaining() && from.isSaving()) {
                ByteBuffer both = ByteBuffer.allocate(outgoing.remaining() + image.remaining());
                both.put(outgoing).put(image).flip();
                outgoing = both;
            } else {
                outgoing = image;
            }
        } else if (to == MigrationState.RESUMING) {
            incoming = new ByteArrayOutputStream();
        } else if (from == MigrationState.RESUMING) {
            restore(incoming.toByteArray());
            incoming = null;
        } else {
            outgoing = null;
        }
        if (to.isRunning()) {
            while (latchedDoorbells > 0) {
                latchedDoorbells--;
                serveDoorbell();
            }
        }
    }

    private ByteBuffer image() {
        byte[] bytes = new byte[(int) IMAGE_SIZE];
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC).putInt(STREAM_VERSION).putInt(REGISTER_BYTES).putLong(BAR2_SIZE);
        for (long s : scratch) {
            b.putLong(s);
        }
        b.putLong(dmaAddress).putLong(Integer.toUnsignedLong(vector)).putLong(counter)
                .putLong(Integer.toUnsignedLong(status));
        MemorySegment.copy(context.regionMemory(2), 0, MemorySegment.ofArray(bytes), b.position(), BAR2_SIZE);
        return b.clear();
    }

    private void restore(byte[] stream) {
        if (stream.length == 0 || stream.length % IMAGE_SIZE != 0) {
            throw new VfioUserException(Errno.EINVAL, "demo device: migration stream of " + stream.length
                    + " bytes is not a whole number of " + IMAGE_SIZE + "-byte images");
        }
        ByteBuffer b = ByteBuffer.wrap(stream).order(ByteOrder.LITTLE_ENDIAN);
        for (int at = 0; at < stream.length; at += (int) IMAGE_SIZE) {
            if (!Arrays.equals(stream, at, at + MAGIC.length, MAGIC, 0, MAGIC.length)) {
                throw new VfioUserException(Errno.EINVAL, "demo device: bad magic in migration image at " + at);
            }
            int version = b.getInt(at + 8);
            int registers = b.getInt(at + 12);
            long bar2 = b.getLong(at + 16);
            if (version != STREAM_VERSION || registers != REGISTER_BYTES || bar2 != BAR2_SIZE) {
                throw new VfioUserException(Errno.EINVAL, "demo device: migration image at " + at + " has version "
                        + version + ", " + registers + " register bytes, " + bar2 + " BAR2 bytes; expected "
                        + STREAM_VERSION + ", " + REGISTER_BYTES + ", " + BAR2_SIZE);
            }
        }
        int last = stream.length - (int) IMAGE_SIZE;
        b.position(last + HEADER_BYTES);
        for (int i = 0; i < SCRATCH_COUNT; i++) {
            scratch[i] = b.getLong();
        }
        dmaAddress = b.getLong();
        vector = (int) b.getLong();
        counter = b.getLong();
        status = (int) b.getLong();
        MemorySegment.copy(MemorySegment.ofArray(stream), last + HEADER_BYTES + REGISTER_BYTES,
                context.regionMemory(2), 0, BAR2_SIZE);
    }

    @Override
    public long readData(MemorySegment dst) {
        if (outgoing == null || !outgoing.hasRemaining()) {
            return 0;
        }
        int n = (int) Math.min(dst.byteSize(), outgoing.remaining());
        MemorySegment.copy(MemorySegment.ofBuffer(outgoing), 0, dst, 0, n);
        outgoing.position(outgoing.position() + n);
        return n;
    }

    @Override
    public void writeData(MemorySegment src) {
        if (incoming == null) {
            throw VfioUserException.einval("demo device: not loading a migration stream");
        }
        if (incoming.size() + src.byteSize() > 64 * IMAGE_SIZE) {
            throw new VfioUserException(Errno.EFBIG, "demo device: migration stream longer than 64 images");
        }
        incoming.writeBytes(src.toArray(ValueLayout.JAVA_BYTE));
    }

    @Override
    public PrecopyInfo precopyInfo() {
        return new PrecopyInfo(outgoing == null ? 0 : outgoing.remaining(), 0);
    }

    @Override
    public long stopCopySize() {
        return IMAGE_SIZE + (outgoing == null ? 0 : outgoing.remaining());
    }
}
