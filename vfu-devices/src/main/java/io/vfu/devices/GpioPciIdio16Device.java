package io.vfu.devices;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.Bar;
import io.vfu.server.MigrationHandler;
import io.vfu.server.PciDevice;
import io.vfu.server.Region;
import io.vfu.server.RegionHandler;
import io.vfu.server.pci.PciIdentity;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A toy GPIO card with the external behaviour of libvfio-user's sample {@code gpio-pci-idio-16}
 * ({@code samples/gpio-pci-idio-16.c}, checked at commit 7e7a0a6): a client of either sees the same identity,
 * regions, interrupts, register semantics and migration stream. Built only on vfu-server's public API.
 *
 * <h2>Identity and resources</h2>
 * Vendor 0x494f, device 0x0dc8 (the ids of the ACCES PCI-IDIO-16), subsystem 0000:0000, class 000000,
 * revision 0, conventional PCI (256-byte config space, no capabilities). BAR2: 256 bytes, I/O space,
 * read-write, trapped (the C sample's region lacks {@code VFU_REGION_FLAG_MEM}, so libvfio-user makes it an
 * I/O BAR). IRQs: INTx 1 (never raised), MSI 0, MSI-X 0, ERR 1, REQ 1.
 *
 * <h2>BAR2 registers</h2>
 * The device has 16 output pins, each with a pulse counter (a signed 32-bit int, wrapping). Only the
 * <em>start offset</em> of an access and its first byte matter; accesses of any length inside the BAR
 * succeed:
 * <pre>
 *   write at 0x0   bit i of the first byte set: pulse pin i      (i = 0..7)  → counter[i]++
 *   write at 0x4   bit i of the first byte set: pulse pin 8 + i  (i = 0..7)  → counter[8+i]++
 *   write elsewhere                                              ignored
 *   read at 0x1    first byte bit i = 1 iff counter[i] % 3 == 0        (i = 0..7); other bytes 0
 *   read at 0x5    first byte bit i = 1 iff counter[8+i] % 3 == 0      (i = 0..7); other bytes 0
 *   read elsewhere                                               all bytes 0
 * </pre>
 * So a read at 1 before any write returns 0xff, and a write of 0x01 at 0 clears bit 0 of it until pin 0
 * has been pulsed three times. Every non-empty write, at any offset, marks the state <em>dirty</em>.
 * Counters survive a client disconnect and DEVICE_RESET (the C sample has no reset callback).
 *
 * <h2>Migration (unless disabled): STOP_COPY | PRE_COPY</h2>
 * The stream is a sequence of snapshots, each the 16 counters as 16 × i32 little-endian (64 bytes,
 * {@link #STATE_SIZE}). A MIG_DATA_READ returns one snapshot if the state is dirty (and clears dirty),
 * otherwise 0 bytes (end of data in STOP_COPY, "nothing now" in PRE_COPY). The state starts dirty and
 * every BAR2 write re-dirties it, so a PRE_COPY read gives the current counters, and the STOP_COPY phase
 * gives a final snapshot only if the guest wrote since. A MIG_DATA_WRITE of one snapshot sets the counters
 * at once; the destination thus ends with the last snapshot. The same features as the C sample are
 * reported (libvfio-user always claims PRE_COPY; for this device it is also true).
 *
 * <h2>Deliberate differences from the C sample</h2>
 * <ul>
 *   <li>Chunk size: the C callbacks {@code assert} that every MIG_DATA_READ/WRITE is exactly 64 bytes, so any
 *       other size aborts the C server. Here it fails the message with EINVAL and the device goes on.</li>
 *   <li>Restore: the C write callback copies the counters and then returns 0 instead of 64, so libvfio-user
 *       answers every MIG_DATA_WRITE with EINVAL (after the counters were overwritten) and a restore into the
 *       C sample never succeeds. Here a 64-byte write succeeds.</li>
 *   <li>Repeated migration: the C dirty flag is never reset, so a second save of the same source (after an
 *       aborted migration, with no write in between) would produce an empty stream. Here entering PRE_COPY
 *       or STOP_COPY from a non-saving state marks the state dirty, so every save starts with a snapshot.</li>
 *   <li>Migration off: the C sample's {@code -M} option is {@link #GpioPciIdio16Device(boolean)
 *       new GpioPciIdio16Device(false)}: no migration handler, so DEVICE_FEATURE MIGRATION is refused.</li>
 * </ul>
 * Differences that belong to the libraries, not to the device: libvfio-user sets the I/O bit (reads 0x1) in
 * the unused BAR0, 1, 3, 4, 5 registers, vfu-server leaves unimplemented BARs 0 (as PCI requires); vfu-server
 * reports INTx as EVENTFD|MASKABLE (libvfio-user: EVENTFD), and offers more message fds and WRITE_MULTI.
 *
 * <p>Threading: the library calls every callback on its serving thread; the device needs no locking.
 * {@link #pinCount} is meant for tests and reads the plain field.
 */
public final class GpioPciIdio16Device implements RegionHandler, MigrationHandler {
    /** Vendor id of the C sample (ACCES I/O Products). */
    public static final int VENDOR_ID = 0x494f;
    /** Device id of the C sample (PCI-IDIO-16). */
    public static final int DEVICE_ID = 0x0dc8;
    /** Identity registers: subsystem 0000:0000, class 000000, revision 0, as the C sample's config space. */
    public static final PciIdentity IDENTITY = new PciIdentity(VENDOR_ID, DEVICE_ID, 0, 0, 0x000000, 0);
    /** BAR index of the registers. */
    public static final int BAR = 2;
    /** Size of BAR2. */
    public static final long BAR2_SIZE = 0x100;
    /** Output register for pins 0–7 (write). */
    public static final int REG_OUT_0_7 = 0x0;
    /** Input register for pins 0–7 (read). */
    public static final int REG_IN_0_7 = 0x1;
    /** Output register for pins 8–15 (write). */
    public static final int REG_OUT_8_15 = 0x4;
    /** Input register for pins 8–15 (read). */
    public static final int REG_IN_8_15 = 0x5;
    /** Number of pins. */
    public static final int PINS = 16;
    /** Bytes of one migration snapshot, and the only MIG_DATA chunk size accepted: 16 × i32. */
    public static final int STATE_SIZE = PINS * Integer.BYTES;

    private static final ValueLayout.OfInt I32_LE =
            ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    private final boolean migration;
    private final int[] pins = new int[PINS];
    private boolean dirty = true;

    /** The device with migration, as the C sample without options. */
    public GpioPciIdio16Device() {
        this(true);
    }

    /** @param migration false = no migration support (the C sample's {@code -M}) */
    public GpioPciIdio16Device(boolean migration) {
        this.migration = migration;
    }

    /** The device description to serve (one {@link io.vfu.server.VfioUserServer} per instance). */
    public PciDevice build() {
        return PciDevice.builder()
                .identity(IDENTITY)
                .bar(BAR, Bar.io(Region.trapped(BAR2_SIZE, this)))
                .irqs(IrqIndex.INTX, 1)
                .migration(migration ? this : null)
                .build();
    }

    /** Pulses counted on {@code pin} (0–15) so far. */
    public int pinCount(int pin) {
        return pins[java.util.Objects.checkIndex(pin, PINS)];
    }

    // ------------------------------------------------------------------------------------------------
    // BAR2

    @Override
    public void read(long offset, MemorySegment dst) {
        dst.fill((byte) 0);
        if (dst.byteSize() == 0) {
            return;
        }
        if (offset == REG_IN_0_7) {
            dst.set(ValueLayout.JAVA_BYTE, 0, inputs(0));
        } else if (offset == REG_IN_8_15) {
            dst.set(ValueLayout.JAVA_BYTE, 0, inputs(8));
        }
    }

    private byte inputs(int first) {
        int bits = 0;
        for (int i = 0; i < 8; i++) {
            if (pins[first + i] % 3 == 0) {
                bits |= 1 << i;
            }
        }
        return (byte) bits;
    }

    @Override
    public void write(long offset, MemorySegment src) {
        if (src.byteSize() == 0) {
            return; // libvfio-user does not call the device for an empty access
        }
        int value = src.get(ValueLayout.JAVA_BYTE, 0);
        if (offset == REG_OUT_0_7) {
            pulse(0, value);
        } else if (offset == REG_OUT_8_15) {
            pulse(8, value);
        }
        dirty = true;
    }

    private void pulse(int first, int value) {
        for (int i = 0; i < 8; i++) {
            if ((value & (1 << i)) != 0) {
                pins[first + i]++;
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
        if (to.isSaving() && !from.isSaving()) {
            dirty = true; // every save starts with a snapshot (the C sample's flag is never re-armed)
        }
    }

    private static void checkChunk(long size, String what) {
        if (size != STATE_SIZE) {
            throw new VfioUserException(Errno.EINVAL, "gpio-pci-idio-16: " + what + " of " + size
                    + " bytes; the state is exactly " + STATE_SIZE + " bytes (16 x i32)");
        }
    }

    @Override
    public long readData(MemorySegment dst) {
        checkChunk(dst.byteSize(), "MIG_DATA_READ");
        if (!dirty) {
            return 0;
        }
        for (int i = 0; i < PINS; i++) {
            dst.set(I32_LE, 4L * i, pins[i]);
        }
        dirty = false;
        return STATE_SIZE;
    }

    @Override
    public void writeData(MemorySegment src) {
        checkChunk(src.byteSize(), "MIG_DATA_WRITE");
        for (int i = 0; i < PINS; i++) {
            pins[i] = src.get(I32_LE, 4L * i);
        }
    }

    @Override
    public PrecopyInfo precopyInfo() {
        return new PrecopyInfo(dirty ? STATE_SIZE : 0, 0);
    }

    @Override
    public long stopCopySize() {
        return STATE_SIZE;
    }
}
