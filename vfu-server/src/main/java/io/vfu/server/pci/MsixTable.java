package io.vfu.server.pci;

import static io.vfu.server.pci.PciRegs.*;

import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.protocol.Wire;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.IntPredicate;

/**
 * The MSI-X table and Pending Bit Array (PCI 3.0 §6.8.2) of a {@link ConfigSpace}. Both live in memory BARs;
 * the server routes BAR accesses that {@link #covers} reports here instead of to the device's region.
 *
 * <pre>
 * Table entry n at tableOffset + 16 n:     PBA at pbaOffset, one bit per vector in QWORDs:
 *   +0  Message Address (lower 32, RW)       QWORD k bit b = vector 64 k + b pending (read-only)
 *   +4  Message Upper Address (RW)
 *   +8  Message Data (RW)
 *   +12 Vector Control: bit 0 Mask (RW), bits 31:1 reserved (read 0, writes ignored)
 * </pre>
 *
 * Accesses must be 4 or 8 bytes, naturally aligned, and entirely inside the table or the PBA (PCI 3.0
 * §6.8.2: software must use aligned full DWORD or QWORD transactions); others fail with EINVAL. PBA writes
 * are ignored. At power-on and reset every entry is zero with its mask bit set.
 *
 * <p>Thread-safe; shares the lock of its config space (see {@link ConfigSpace} on listeners).
 */
public final class MsixTable {
    private final ConfigSpace owner;
    private final Capability.Msix cap;
    private final byte[] table;
    private volatile IntPredicate pending = v -> false;

    MsixTable(ConfigSpace owner, Capability.Msix cap) {
        this.owner = owner;
        this.cap = cap;
        this.table = new byte[(int) cap.tableSize()];
        resetEntries();
    }

    /** Table size in vectors. */
    public int vectors() {
        return cap.vectors();
    }

    public int tableBar() {
        return cap.tableBar();
    }

    public long tableOffset() {
        return cap.tableOffset();
    }

    /** Table length in bytes (16 per vector). */
    public long tableSize() {
        return cap.tableSize();
    }

    public int pbaBar() {
        return cap.pbaBar();
    }

    public long pbaOffset() {
        return cap.pbaOffset();
    }

    /** PBA length in bytes (one QWORD per 64 vectors). */
    public long pbaSize() {
        return cap.pbaSize();
    }

    /** Whether an access of {@code length} bytes at {@code offset} in BAR {@code bar} touches the table or PBA. */
    public boolean covers(int bar, long offset, long length) {
        if (offset < 0 || length <= 0) {
            return false;
        }
        long end = offset + length < 0 ? Long.MAX_VALUE : offset + length;
        return bar == cap.tableBar() && offset < cap.tableOffset() + cap.tableSize() && cap.tableOffset() < end
                || bar == cap.pbaBar() && offset < cap.pbaOffset() + cap.pbaSize() && cap.pbaOffset() < end;
    }

    /**
     * Reads table entries or PBA bits (the latter live from the {@link #pendingSource pending source}).
     *
     * @throws VfioUserException EINVAL unless a 4- or 8-byte aligned access inside the table or the PBA
     */
    public void read(int bar, long offset, MemorySegment dst) {
        long len = dst.byteSize();
        if (inTable(bar, offset, len)) {
            int rel = (int) (offset - cap.tableOffset());
            synchronized (owner) {
                MemorySegment.copy(MemorySegment.ofArray(table), rel, dst, 0, len);
            }
        } else if (inPba(bar, offset, len)) {
            int firstBit = (int) (offset - cap.pbaOffset()) * 8;
            IntPredicate p = pending;
            long bits = 0;
            for (int b = 0; b < 8 * len; b++) {
                int v = firstBit + b;
                if (v < cap.vectors() && p.test(v)) {
                    bits |= 1L << b;
                }
            }
            if (len == 8) {
                Wire.putU64(dst, 0, bits);
            } else {
                Wire.putU32(dst, 0, bits);
            }
        } else {
            throw badAccess("read", bar, offset, len);
        }
    }

    /**
     * Writes table entries (address, data, mask bit; reserved vector-control bits ignored) and notifies
     * {@link ConfigSpace.Listener#msixVectorMaskChanged} for each mask bit that changed. PBA writes are
     * ignored.
     *
     * @throws VfioUserException EINVAL unless a 4- or 8-byte aligned access inside the table or the PBA
     */
    public void write(int bar, long offset, MemorySegment src) {
        long len = src.byteSize();
        if (inTable(bar, offset, len)) {
            int rel = (int) (offset - cap.tableOffset());
            synchronized (owner) {
                int firstEntry = rel / MSIX_ENTRY_SIZE;
                int lastEntry = (rel + (int) len - 1) / MSIX_ENTRY_SIZE;
                boolean[] before = new boolean[lastEntry - firstEntry + 1];
                for (int e = firstEntry; e <= lastEntry; e++) {
                    before[e - firstEntry] = maskedLocked(e);
                }
                for (int i = 0; i < len; i++) {
                    int a = rel + i;
                    int field = a % MSIX_ENTRY_SIZE;
                    int mask = field < MSIX_ENTRY_VECTOR_CTRL ? 0xff
                            : field == MSIX_ENTRY_VECTOR_CTRL ? MSIX_ENTRY_CTRL_MASKBIT : 0;
                    int v = src.get(ValueLayout.JAVA_BYTE, i);
                    table[a] = (byte) ((table[a] & ~mask) | (v & mask));
                }
                for (int e = firstEntry; e <= lastEntry; e++) {
                    boolean now = maskedLocked(e);
                    if (now != before[e - firstEntry]) {
                        owner.listener.msixVectorMaskChanged(e, now);
                    }
                }
            }
        } else if (!inPba(bar, offset, len)) {
            throw badAccess("write", bar, offset, len);
        }
    }

    /** The entry's own mask bit (the function mask and enable are separate: {@link #functionMasked()}). */
    public boolean vectorMasked(int vector) {
        checkVector(vector);
        synchronized (owner) {
            return maskedLocked(vector);
        }
    }

    /** The entry's 64-bit message address. */
    public long address(int vector) {
        checkVector(vector);
        synchronized (owner) {
            return Wire.u64(MemorySegment.ofArray(table), (long) vector * MSIX_ENTRY_SIZE);
        }
    }

    /** The entry's message data. */
    public int data(int vector) {
        checkVector(vector);
        synchronized (owner) {
            return Wire.i32(MemorySegment.ofArray(table), (long) vector * MSIX_ENTRY_SIZE + 8);
        }
    }

    /** The MSI-X Enable bit of the capability's message control. */
    public boolean enabled() {
        return (owner.msixFlags() & MSIX_FLAGS_ENABLE) != 0;
    }

    /** The Function Mask bit of the capability's message control. */
    public boolean functionMasked() {
        return (owner.msixFlags() & MSIX_FLAGS_MASKALL) != 0;
    }

    /** Where the PBA reads from: bit n reads {@code pending.test(n)}; called without the lock held. */
    public void pendingSource(IntPredicate pending) {
        this.pending = Objects.requireNonNull(pending);
    }

    @Override
    public String toString() {
        return "MsixTable[" + cap + "]";
    }

    // ---- package-private, called by ConfigSpace with its lock held ----

    void resetEntries() {
        Arrays.fill(table, (byte) 0);
        for (int v = 0; v < cap.vectors(); v++) {
            table[v * MSIX_ENTRY_SIZE + MSIX_ENTRY_VECTOR_CTRL] = MSIX_ENTRY_CTRL_MASKBIT;
        }
    }

    boolean[] masks() {
        boolean[] m = new boolean[cap.vectors()];
        for (int v = 0; v < m.length; v++) {
            m[v] = maskedLocked(v);
        }
        return m;
    }

    void notifyMaskChanges(boolean[] before, boolean force) {
        for (int v = 0; v < before.length; v++) {
            boolean now = maskedLocked(v);
            if (force || now != before[v]) {
                owner.listener.msixVectorMaskChanged(v, now);
            }
        }
    }

    void saveTo(byte[] out, int at) {
        System.arraycopy(table, 0, out, at, table.length);
    }

    void validate(byte[] state, int at) {
        for (int v = 0; v < cap.vectors(); v++) {
            int ctrl = at + v * MSIX_ENTRY_SIZE + MSIX_ENTRY_VECTOR_CTRL;
            if ((state[ctrl] & ~MSIX_ENTRY_CTRL_MASKBIT) != 0 || state[ctrl + 1] != 0 || state[ctrl + 2] != 0
                    || state[ctrl + 3] != 0) {
                throw VfioUserException.einval("config space state: MSI-X vector " + v
                        + " has reserved vector control bits");
            }
        }
    }

    void loadFrom(byte[] state, int at) {
        System.arraycopy(state, at, table, 0, table.length);
    }

    // ---- internals ----

    private boolean maskedLocked(int vector) {
        return (table[vector * MSIX_ENTRY_SIZE + MSIX_ENTRY_VECTOR_CTRL] & MSIX_ENTRY_CTRL_MASKBIT) != 0;
    }

    private boolean inTable(int bar, long offset, long len) {
        return bar == cap.tableBar() && aligned(offset, len) && offset >= cap.tableOffset()
                && offset - cap.tableOffset() <= cap.tableSize() - len;
    }

    private boolean inPba(int bar, long offset, long len) {
        return bar == cap.pbaBar() && aligned(offset, len) && offset >= cap.pbaOffset()
                && offset - cap.pbaOffset() <= cap.pbaSize() - len;
    }

    private static boolean aligned(long offset, long len) {
        return (len == 4 || len == 8) && (offset & (len - 1)) == 0;
    }

    private void checkVector(int vector) {
        if (vector < 0 || vector >= cap.vectors()) {
            throw new IndexOutOfBoundsException("MSI-X vector " + vector + " of " + cap.vectors());
        }
    }

    private static VfioUserException badAccess(String what, int bar, long offset, long len) {
        return VfioUserException.einval("MSI-X " + what + " of " + len + " bytes at BAR " + bar + " offset "
                + Wire.hex(offset) + ": not an aligned DWORD/QWORD inside the table or PBA");
    }
}
