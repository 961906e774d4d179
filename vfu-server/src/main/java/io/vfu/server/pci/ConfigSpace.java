package io.vfu.server.pci;

import static io.vfu.server.pci.PciRegs.*;

import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.protocol.Wire;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.IntPredicate;

/**
 * Emulated PCI configuration space of one type-0 function, built from a {@link ConfigSpaceSpec}: the
 * header (PCI Local Bus 3.0 §6.1), BARs and expansion ROM with sizing, the standard capability list from
 * 0x40 (Power Management, MSI, MSI-X, PCI Express v2, vendor-specific) and, for PCI Express functions, the
 * extended capability list from 0x100 (Device Serial Number, Vendor-Specific Extended). Pure Java, no I/O:
 * the server routes config-space region accesses (vfio-user region 7, VFIO_PCI_CONFIG_REGION_INDEX) here.
 *
 * <h2>Write semantics</h2>
 * Every byte has a read-write mask and a write-1-to-clear mask; a write of any length at any offset is
 * applied byte by byte: {@code new = (old & ~rw) | (val & rw)}, then {@code new &= ~(val & w1c)}. Bits in
 * neither mask are read-only and <b>writes to them are silently ignored</b>, as real hardware and QEMU do.
 * This deliberately differs from libvfio-user's generic header logic, which rejects writes to registers it
 * does not know (e.g. a write to the vendor ID) with EINVAL: a guest driver probing a read-only register
 * must not see a bus error. Only accesses outside {@code [0, size())} fail (EINVAL).
 *
 * <p>Writable: command (I/O space, memory space, bus master, parity error response, SERR# enable, INTx
 * disable), cache line size, latency timer (conventional PCI only: PCI Express hardwires it to 0), BAR
 * address bits ({@code ~(size - 1)}, so writing all-ones reads back the size mask with the type bits), ROM
 * address bits 31:11 and enable, interrupt line, PM power state (D0, D3hot, D1/D2 when declared; other
 * values are discarded as PCI PM 1.2 §3.2.4 requires), MSI enable / multiple message enable (clamped to the
 * capable count, as QEMU does) / address / data / mask bits, MSI-X enable and function mask, PCI Express
 * Device Control (error reporting enables, relaxed ordering, max payload size, no snoop, max read request
 * size) and Link Control (ASPM control, common clock, extended synch). Write-1-to-clear: status bits
 * 8, 11–15 and Device Status bits 0–3. Unused BARs read 0 and ignore writes (libvfio-user's sample shows
 * 0x1 in unused BARs; real hardware reads 0).
 *
 * <h2>Side effects</h2>
 * The {@link Listener} hears about command, power state, MSI and MSI-X changes after each write. Writing
 * 1 to PCI Express Device Control "Initiate Function Level Reset" resets this config space to its power-on
 * values (like QEMU's FLR), notifies the resulting changes, then calls {@link Listener#functionLevelReset()};
 * the bit always reads 0. A D3hot→D0 transition with No_Soft_Reset clear resets config space the same way
 * (PCI PM 1.2 §5.4); {@link Listener#powerStateChanged} reports it.
 *
 * <h2>Threading</h2>
 * Thread-safe: accesses from the connection thread and queries from device threads (interrupt delivery)
 * serialise on this object, which the {@link MsixTable} shares. Listener methods run on the accessing
 * thread while the lock is held: they must not block nor wait for another thread that uses this object.
 * Pending-bit sources are called without the lock.
 */
public final class ConfigSpace {
    private static final Listener NO_LISTENER = new Listener() {
    };
    private static final byte[] MAGIC = "VFUPCICS".getBytes(StandardCharsets.US_ASCII);
    private static final int SAVE_VERSION = 1;
    private static final int SAVE_HEADER = 24;

    final ConfigLayout layout;
    final Listener listener;
    private final byte[] cfg;
    private final MemorySegment cfgSegment;
    private final MsixTable msixTable;
    private volatile IntPredicate msiPending = v -> false;

    /**
     * Builds config space in its power-on state.
     *
     * @param spec     what to emulate
     * @param listener told about guest-visible state changes; {@code null} for none
     * @throws IllegalArgumentException when the capabilities do not fit, a singleton capability is repeated,
     *                                  or the MSI-X table/PBA is not inside a memory BAR
     */
    public ConfigSpace(ConfigSpaceSpec spec, Listener listener) {
        Objects.requireNonNull(spec);
        this.layout = new ConfigLayout(spec);
        this.listener = listener == null ? NO_LISTENER : listener;
        this.cfg = layout.init.clone();
        this.cfgSegment = MemorySegment.ofArray(cfg);
        this.msixTable = layout.msixCap == null ? null : new MsixTable(this, layout.msixCap);
    }

    /** The spec this config space was built from. */
    public ConfigSpaceSpec spec() {
        return layout.spec;
    }

    /** 4096 for PCI Express functions, else 256. */
    public int size() {
        return layout.size;
    }

    /**
     * Copies {@code dst.byteSize()} bytes from {@code offset} into {@code dst}. Any alignment and length is
     * allowed; MSI pending bits are read live from the {@link #msiPendingSource pending source}.
     *
     * @throws VfioUserException EINVAL when the access is not inside {@code [0, size())}
     */
    public void read(long offset, MemorySegment dst) {
        int off = check(offset, dst.byteSize(), "read");
        int len = (int) dst.byteSize();
        int pendingReg = layout.msiPending;
        boolean overlapsPending = pendingReg >= 0 && off < pendingReg + 4 && pendingReg < off + len;
        int pending = overlapsPending ? msiPendingBits() : 0;
        synchronized (this) {
            MemorySegment.copy(cfgSegment, off, dst, 0, len);
        }
        if (overlapsPending) {
            for (int i = 0; i < 4; i++) {
                int a = pendingReg + i;
                if (a >= off && a < off + len) {
                    dst.set(ValueLayout.JAVA_BYTE, a - off, (byte) (pending >>> (8 * i)));
                }
            }
        }
    }

    /**
     * Writes {@code src} at {@code offset} through the per-byte masks, then applies side effects and notifies
     * the listener (see the class description).
     *
     * @throws VfioUserException EINVAL when the access is not inside {@code [0, size())}
     */
    public void write(long offset, MemorySegment src) {
        int off = check(offset, src.byteSize(), "write");
        int len = (int) src.byteSize();
        synchronized (this) {
            State before = state();
            int flrByte = layout.exp >= 0 ? layout.exp + EXP_DEVCTL + 1 : -1;
            boolean flr = false;
            for (int i = 0; i < len; i++) {
                int a = off + i;
                int v = src.get(ValueLayout.JAVA_BYTE, i) & 0xff;
                int rw = layout.wmask[a] & 0xff;
                int nv = (cfg[a] & ~rw) | (v & rw);
                nv &= ~(v & layout.w1c[a]);
                cfg[a] = (byte) nv;
                if (a == flrByte && (v & (EXP_DEVCTL_BCR_FLR >>> 8)) != 0) {
                    flr = true;
                }
            }
            fixups(before);
            boolean softReset = layout.pm >= 0 && before.powerState == D3HOT && powerStateRaw() == D0
                    && !layout.pmCap.noSoftReset();
            if (flr || softReset) {
                boolean[] masks = msixTable == null ? null : msixTable.masks();
                powerOn();
                notifyChanges(before, false);
                if (masks != null) {
                    msixTable.notifyMaskChanges(masks, false);
                }
                if (flr) {
                    listener.functionLevelReset();
                }
            } else {
                notifyChanges(before, false);
            }
        }
    }

    /** Returns config space to its power-on values (BARs 0, command 0, MSI/MSI-X disabled, vectors masked). */
    public synchronized void reset() {
        State before = state();
        boolean[] masks = msixTable == null ? null : msixTable.masks();
        powerOn();
        notifyChanges(before, false);
        if (masks != null) {
            msixTable.notifyMaskChanges(masks, false);
        }
    }

    // ---- queries ----

    /** The command register. */
    public synchronized int command() {
        return u16(COMMAND);
    }

    /** The status register (error bits, capability list, interrupt status). */
    public synchronized int status() {
        return u16(STATUS);
    }

    /**
     * The address programmed into BAR {@code bar}: address bits only (type bits stripped), both halves for a
     * 64-bit BAR. After a sizing write and before the real address is written back this is the size mask.
     *
     * @return the address, or -1 when {@code bar} is out of 0..5, unused, or the upper half of a 64-bit BAR
     */
    public synchronized long barAddress(int bar) {
        if (bar < 0 || bar > 5) {
            return -1;
        }
        BarLayout b = layout.spec.bars()[bar];
        if (b == null) {
            return -1;
        }
        long lo = u32(BASE_ADDRESS_0 + 4 * bar);
        return switch (b.kind()) {
            case IO -> lo & BAR_IO_MASK & 0xffff_ffffL;
            case MEMORY32 -> lo & BAR_MEM_MASK & 0xffff_ffffL;
            case MEMORY64 -> ((u32(BASE_ADDRESS_0 + 4 * bar + 4) << 32) | lo) & BAR_MEM_MASK;
        };
    }

    /** The expansion ROM address (bits 31:11), or -1 without a ROM. */
    public synchronized long romAddress() {
        return layout.spec.romSize() == 0 ? -1 : u32(ROM_ADDRESS) & ROM_ADDRESS_MASK;
    }

    /** Whether the expansion ROM address decoder is enabled (bit 0 of 0x30). */
    public synchronized boolean romEnabled() {
        return (u32(ROM_ADDRESS) & ROM_ENABLE) != 0;
    }

    /** The PM power state (0 = D0 … 3 = D3hot); 0 without a Power Management capability. */
    public synchronized int powerState() {
        return powerStateRaw();
    }

    /** Offset of the first standard capability with id {@code capId}, or -1. */
    public int capabilityOffset(int capId) {
        return layout.capOffsets.getOrDefault(capId, -1);
    }

    /** Offset of the first extended capability with id {@code extCapId}, or -1. */
    public int extendedCapabilityOffset(int extCapId) {
        return layout.extCapOffsets.getOrDefault(extCapId, -1);
    }

    /** The MSI-X table and PBA, or {@code null} without an MSI-X capability. */
    public MsixTable msixTable() {
        return msixTable;
    }

    /** Whether MSI is enabled (false without an MSI capability). */
    public synchronized boolean msiEnabled() {
        return layout.msi >= 0 && (u16(layout.msi + MSI_FLAGS) & MSI_FLAGS_ENABLE) != 0;
    }

    /** The number of MSI vectors the guest allocated (multiple message enable); 0 without MSI. */
    public synchronized int msiVectors() {
        return layout.msi < 0 ? 0 : 1 << ((u16(layout.msi + MSI_FLAGS) & MSI_FLAGS_QSIZE) >>> 4);
    }

    /** The MSI message address (both halves when 64-bit); 0 without MSI. */
    public synchronized long msiAddress() {
        if (layout.msi < 0) {
            return 0;
        }
        long lo = u32(layout.msi + MSI_ADDRESS_LO);
        return layout.msiAddressHi < 0 ? lo : (u32(layout.msiAddressHi) << 32) | lo;
    }

    /**
     * The MSI message data for {@code vector}: the programmed data with the low bits replaced by the vector
     * number, as multiple-message MSI requires (PCI 3.0 §6.8.1.8); 0 without MSI.
     */
    public synchronized int msiData(int vector) {
        if (layout.msi < 0) {
            return 0;
        }
        int data = u16(layout.msiData);
        int n = msiVectorsLocked();
        return (data & ~(n - 1)) | (vector & (n - 1));
    }

    /** Whether MSI vector {@code vector} is masked by its per-vector mask bit (false without mask bits). */
    public synchronized boolean msiMasked(int vector) {
        return layout.msiMask >= 0 && vector >= 0 && vector < 32 && (u32(layout.msiMask) & (1L << vector)) != 0;
    }

    /** Where the MSI pending bits register reads from: bit n reads {@code pending.test(n)}. */
    public void msiPendingSource(IntPredicate pending) {
        msiPending = Objects.requireNonNull(pending);
    }

    /** Sets or clears the status register's Interrupt Status bit (the device's INTx assertion state). */
    public synchronized void setInterruptStatus(boolean asserted) {
        int s = u16(STATUS);
        put16(STATUS, asserted ? s | STATUS_INTERRUPT : s & ~STATUS_INTERRUPT);
    }

    /** Sets status register error bits (only the write-1-to-clear ones: 8, 11–15); the guest clears them. */
    public synchronized void signalStatus(int bits) {
        put16(STATUS, u16(STATUS) | (bits & STATUS_W1C));
    }

    /** Sets PCI Express Device Status error bits 0–3; ignored without a PCI Express capability. */
    public synchronized void signalDeviceStatus(int bits) {
        if (layout.exp >= 0) {
            int reg = layout.exp + EXP_DEVSTA;
            put16(reg, u16(reg) | (bits & EXP_DEVSTA_W1C));
        }
    }

    // ---- migration ----

    /**
     * The whole config state for migration:
     * <pre>
     *  0  "VFUPCICS"                 marker (8 bytes)
     *  8  u32 version = 1
     * 12  u32 config space size (256 or 4096)
     * 16  u32 MSI-X vectors (0 without MSI-X)
     * 20  u32 reserved = 0
     * 24  config space bytes
     * ..  MSI-X table, 16 bytes per vector
     * </pre>
     * All integers little-endian.
     */
    public synchronized byte[] save() {
        int vectors = msixTable == null ? 0 : msixTable.vectors();
        byte[] out = new byte[SAVE_HEADER + cfg.length + 16 * vectors];
        MemorySegment s = MemorySegment.ofArray(out);
        System.arraycopy(MAGIC, 0, out, 0, MAGIC.length);
        Wire.putU32(s, 8, SAVE_VERSION);
        Wire.putU32(s, 12, cfg.length);
        Wire.putU32(s, 16, vectors);
        System.arraycopy(cfg, 0, out, SAVE_HEADER, cfg.length);
        if (msixTable != null) {
            msixTable.saveTo(out, SAVE_HEADER + cfg.length);
        }
        return out;
    }

    /**
     * Loads a state produced by {@link #save()} of an identical config space, then notifies the listener of
     * the whole resulting state (command, power state, MSI enable and every mask bit, MSI-X enable/function
     * mask and every vector mask), changed or not, so a migration destination can program its interrupts.
     *
     * @throws VfioUserException EINVAL when the state is malformed: wrong length, marker, version, size or
     *                           vector count, a read-only bit differing from this device's, an impossible
     *                           power state or MSI multiple message enable, or reserved MSI-X control bits
     */
    public synchronized void restore(byte[] state) {
        Objects.requireNonNull(state);
        int vectors = msixTable == null ? 0 : msixTable.vectors();
        if (state.length < SAVE_HEADER || !Arrays.equals(state, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
            throw VfioUserException.einval("config space state: bad marker");
        }
        MemorySegment s = MemorySegment.ofArray(state);
        if (Wire.u32(s, 8) != SAVE_VERSION || Wire.u32(s, 12) != cfg.length || Wire.u32(s, 16) != vectors
                || Wire.u32(s, 20) != 0) {
            throw VfioUserException.einval("config space state: version/size/vectors mismatch");
        }
        if (state.length != SAVE_HEADER + cfg.length + 16 * vectors) {
            throw VfioUserException.einval("config space state: length " + state.length);
        }
        for (int i = 0; i < cfg.length; i++) {
            if (((state[SAVE_HEADER + i] ^ layout.init[i]) & layout.cmask[i]) != 0) {
                throw VfioUserException.einval("config space state: read-only byte 0x"
                        + Integer.toHexString(i) + " differs");
            }
        }
        if (layout.pm >= 0 && !powerStateSupported(state[SAVE_HEADER + layout.pm + PM_CTRL] & PM_CTRL_STATE_MASK)) {
            throw VfioUserException.einval("config space state: unsupported power state");
        }
        if (layout.msi >= 0) {
            int flags = state[SAVE_HEADER + layout.msi + MSI_FLAGS] & 0xff;
            if (((flags & MSI_FLAGS_QSIZE) >>> 4) > ((flags & MSI_FLAGS_QMASK) >>> 1)) {
                throw VfioUserException.einval("config space state: MSI multiple message enable above capable");
            }
        }
        if (msixTable != null) {
            msixTable.validate(state, SAVE_HEADER + cfg.length);
        }
        State before = state();
        boolean[] masks = msixTable == null ? null : msixTable.masks();
        System.arraycopy(state, SAVE_HEADER, cfg, 0, cfg.length);
        if (msixTable != null) {
            msixTable.loadFrom(state, SAVE_HEADER + cfg.length);
        }
        notifyChanges(before, true);
        if (masks != null) {
            msixTable.notifyMaskChanges(masks, true);
        }
    }

    // ---- internals ----

    /** Guest-visible state whose changes the listener hears about. */
    private record State(int command, int powerState, boolean msiEnabled, int msiVectors, int msiMask,
                         boolean msixEnabled, boolean msixFunctionMask) {
    }

    private State state() {
        int msixFlags = layout.msix >= 0 ? u16(layout.msix + MSIX_FLAGS) : 0;
        return new State(u16(COMMAND), powerStateRaw(),
                layout.msi >= 0 && (u16(layout.msi + MSI_FLAGS) & MSI_FLAGS_ENABLE) != 0,
                layout.msi >= 0 ? msiVectorsLocked() : 0,
                layout.msiMask >= 0 ? (int) u32(layout.msiMask) : 0,
                (msixFlags & MSIX_FLAGS_ENABLE) != 0, (msixFlags & MSIX_FLAGS_MASKALL) != 0);
    }

    private void notifyChanges(State b, boolean force) {
        State a = state();
        if (force || a.command != b.command) {
            listener.commandChanged(b.command, a.command);
        }
        if (layout.pm >= 0 && (force || a.powerState != b.powerState)) {
            listener.powerStateChanged(b.powerState, a.powerState);
        }
        if (layout.msi >= 0) {
            if (force || a.msiEnabled != b.msiEnabled || a.msiVectors != b.msiVectors) {
                listener.msiChanged(a.msiEnabled, a.msiVectors);
            }
            if (layout.msiMask >= 0) {
                for (int v = 0; v < layout.msiCap.vectors(); v++) {
                    boolean m = (a.msiMask & (1 << v)) != 0;
                    if (force || m != ((b.msiMask & (1 << v)) != 0)) {
                        listener.msiMaskChanged(v, m);
                    }
                }
            }
        }
        if (layout.msix >= 0 && (force || a.msixEnabled != b.msixEnabled
                || a.msixFunctionMask != b.msixFunctionMask)) {
            listener.msixChanged(a.msixEnabled, a.msixFunctionMask);
        }
    }

    /** Undoes writes the hardware would discard. */
    private void fixups(State before) {
        if (layout.pm >= 0 && !powerStateSupported(powerStateRaw())) {
            int reg = layout.pm + PM_CTRL;
            put16(reg, (u16(reg) & ~PM_CTRL_STATE_MASK) | before.powerState);
        }
        if (layout.msi >= 0) {
            int reg = layout.msi + MSI_FLAGS;
            int flags = u16(reg);
            int mmc = (flags & MSI_FLAGS_QMASK) >>> 1;
            if (((flags & MSI_FLAGS_QSIZE) >>> 4) > mmc) {
                put16(reg, (flags & ~MSI_FLAGS_QSIZE) | (mmc << 4));
            }
        }
    }

    private void powerOn() {
        System.arraycopy(layout.init, 0, cfg, 0, cfg.length);
        if (msixTable != null) {
            msixTable.resetEntries();
        }
    }

    private boolean powerStateSupported(int state) {
        return switch (state) {
            case D0, D3HOT -> true;
            case 1 -> layout.pmCap.d1();
            default -> layout.pmCap.d2();
        };
    }

    private int powerStateRaw() {
        return layout.pm < 0 ? D0 : u16(layout.pm + PM_CTRL) & PM_CTRL_STATE_MASK;
    }

    private int msiVectorsLocked() {
        return 1 << ((u16(layout.msi + MSI_FLAGS) & MSI_FLAGS_QSIZE) >>> 4);
    }

    private int msiPendingBits() {
        IntPredicate p = msiPending;
        int bits = 0;
        for (int v = 0; v < layout.msiCap.vectors(); v++) {
            if (p.test(v)) {
                bits |= 1 << v;
            }
        }
        return bits;
    }

    /** MSI-X control, for the table. */
    synchronized int msixFlags() {
        return layout.msix < 0 ? 0 : u16(layout.msix + MSIX_FLAGS);
    }

    private int check(long offset, long length, String what) {
        if (offset < 0 || length < 0 || offset >= cfg.length || length > cfg.length - offset) {
            throw VfioUserException.einval("config space " + what + " at " + Wire.hex(offset) + " + " + length
                    + " beyond size " + Wire.hex(cfg.length));
        }
        return (int) offset;
    }

    private int u16(int off) {
        return (cfg[off] & 0xff) | (cfg[off + 1] & 0xff) << 8;
    }

    private long u32(int off) {
        return (u16(off) | (long) u16(off + 2) << 16) & 0xffff_ffffL;
    }

    private void put16(int off, int v) {
        cfg[off] = (byte) v;
        cfg[off + 1] = (byte) (v >>> 8);
    }

    @Override
    public String toString() {
        return "ConfigSpace[" + layout.spec.identity() + ", size " + cfg.length + "]";
    }

    /**
     * Told about guest-visible state changes, after the access that caused them (with the config-space lock
     * held: do not block). Every method has an empty default.
     */
    public interface Listener {
        /** The command register changed (memory/I/O decoding, bus master, INTx disable …). */
        default void commandChanged(int oldValue, int newValue) {
        }

        /**
         * MSI enable or multiple message enable changed.
         *
         * @param enabled        the MSI enable bit
         * @param enabledVectors vectors allocated by multiple message enable (1, 2, 4 … 32), also when disabled
         */
        default void msiChanged(boolean enabled, int enabledVectors) {
        }

        /** A per-vector MSI mask bit changed. */
        default void msiMaskChanged(int vector, boolean masked) {
        }

        /** MSI-X enable or function mask changed. */
        default void msixChanged(boolean enabled, boolean functionMask) {
        }

        /** An MSI-X table entry's vector-control mask bit changed. */
        default void msixVectorMaskChanged(int vector, boolean masked) {
        }

        /**
         * The guest wrote 1 to PCI Express Device Control "Initiate Function Level Reset". Config space has
         * already returned to its power-on values (and the changes were notified); the device must reset too.
         */
        default void functionLevelReset() {
        }

        /**
         * The PM power state changed (0 = D0, 1 = D1, 2 = D2, 3 = D3hot). When {@code oldState == 3},
         * {@code newState == 0} and the capability has No_Soft_Reset clear, config space was reset to
         * power-on values and the device should reset its internal state as well.
         */
        default void powerStateChanged(int oldState, int newState) {
        }
    }
}
