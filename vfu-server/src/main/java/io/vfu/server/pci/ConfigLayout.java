package io.vfu.server.pci;

import static io.vfu.server.pci.PciRegs.*;

import io.vfu.server.Bar;
import java.util.HashMap;
import java.util.Map;

/**
 * The power-on image of a config space built from a {@link ConfigSpaceSpec}: register values, the per-byte
 * read-write mask, the per-byte write-1-to-clear mask, and where each capability landed.
 *
 * <p>Validates what the spec records cannot check alone (capabilities fit, no duplicate singleton
 * capabilities, MSI-X table and PBA inside a memory BAR); failures are {@link IllegalArgumentException}s
 * because they are programming errors of the device author.
 */
final class ConfigLayout {
    final ConfigSpaceSpec spec;
    final int size;
    final byte[] init;
    final byte[] wmask;
    final byte[] w1c;
    /** Bits whose saved value must equal the power-on value (read-only, not dynamic). */
    final byte[] cmask;

    final Map<Integer, Integer> capOffsets = new HashMap<>();
    final Map<Integer, Integer> extCapOffsets = new HashMap<>();

    int pm = -1;
    Capability.PowerManagement pmCap;
    int msi = -1;
    Capability.Msi msiCap;
    int msiAddressHi = -1;
    int msiData = -1;
    int msiMask = -1;
    int msiPending = -1;
    int msix = -1;
    Capability.Msix msixCap;
    int exp = -1;

    ConfigLayout(ConfigSpaceSpec spec) {
        this.spec = spec;
        this.size = spec.size();
        this.init = new byte[size];
        this.wmask = new byte[size];
        this.w1c = new byte[size];
        this.cmask = new byte[size];
        header();
        bars();
        capabilities();
        extendedCapabilities();
        for (int i = 0; i < size; i++) {
            cmask[i] = (byte) ~(wmask[i] | w1c[i]);
        }
        // The interrupt status bit follows the device's INTx state, not the power-on image.
        cmask[STATUS] &= (byte) ~STATUS_INTERRUPT;
    }

    // ---- header ----

    private void header() {
        PciIdentity id = spec.identity();
        put16(VENDOR_ID, id.vendorId());
        put16(DEVICE_ID, id.deviceId());
        put8(REVISION_ID, id.revision());
        put8(CLASS_PROG, id.classCode() & 0xff);
        put8(CLASS_PROG + 1, (id.classCode() >>> 8) & 0xff);
        put8(CLASS_PROG + 2, (id.classCode() >>> 16) & 0xff);
        put16(SUBSYSTEM_VENDOR_ID, id.subsystemVendorId());
        put16(SUBSYSTEM_ID, id.subsystemId());
        put8(INTERRUPT_PIN, spec.interruptPin());
        if (!spec.capabilities().isEmpty()) {
            put16(STATUS, STATUS_CAP_LIST);
            put8(CAPABILITY_LIST, CAP_START);
        }
        mask16(COMMAND, COMMAND_WRITABLE);
        w1c16(STATUS, STATUS_W1C);
        mask8(CACHE_LINE_SIZE, 0xff);
        // PCI Express Base §7.5.1.1.5: the latency timer does not apply to PCI Express and is hardwired to 0.
        if (!spec.express()) {
            mask8(LATENCY_TIMER, 0xff);
        }
        mask8(INTERRUPT_LINE, 0xff);
    }

    private void bars() {
        BarLayout[] bars = spec.bars();
        for (int i = 0; i < 6; i++) {
            BarLayout b = bars[i];
            if (b == null) {
                continue;
            }
            int reg = BASE_ADDRESS_0 + 4 * i;
            switch (b.kind()) {
                case IO -> {
                    put32(reg, BAR_SPACE_IO);
                    mask32(reg, (int) (~(b.size() - 1) & BAR_IO_MASK));
                }
                case MEMORY32 -> {
                    put32(reg, b.prefetchable() ? BAR_MEM_PREFETCH : 0);
                    mask32(reg, (int) (~(b.size() - 1) & BAR_MEM_MASK));
                }
                case MEMORY64 -> {
                    put32(reg, BAR_MEM_TYPE_64 | (b.prefetchable() ? BAR_MEM_PREFETCH : 0));
                    long m = ~(b.size() - 1) & BAR_MEM_MASK;
                    mask32(reg, (int) m);
                    mask32(reg + 4, (int) (m >>> 32));
                }
            }
        }
        if (spec.romSize() != 0) {
            mask32(ROM_ADDRESS, (int) ((~(spec.romSize() - 1) & ROM_ADDRESS_MASK) | ROM_ENABLE));
        }
    }

    // ---- standard capabilities ----

    private void capabilities() {
        int off = CAP_START;
        int prevNext = -1;
        for (Capability c : spec.capabilities()) {
            int len = switch (c) {
                case Capability.PowerManagement p -> PM_SIZEOF;
                case Capability.Msi m -> msiLength(m);
                case Capability.Msix x -> MSIX_SIZEOF;
                case Capability.PciExpress e -> EXP_SIZEOF_V2;
                case Capability.VendorSpecific v -> 3 + v.data().length;
            };
            if (off + len > EXT_CAP_START) {
                throw new IllegalArgumentException("capabilities do not fit in config space 0x40-0xff: " + c);
            }
            int id = switch (c) {
                case Capability.PowerManagement p -> pm(off, p);
                case Capability.Msi m -> msi(off, m);
                case Capability.Msix x -> msix(off, x);
                case Capability.PciExpress e -> express(off, e);
                case Capability.VendorSpecific v -> vendor(off, v);
            };
            put8(off, id);
            capOffsets.putIfAbsent(id, off);
            if (prevNext >= 0) {
                put8(prevNext, off);
            }
            prevNext = off + CAP_NEXT;
            off = (off + len + 3) & ~3;
        }
    }

    private static int msiLength(Capability.Msi m) {
        return (m.address64() ? 0x0e : 0x0a) + (m.perVectorMask() ? 0x0a : 0);
    }

    private void single(int existing, String what) {
        if (existing >= 0) {
            throw new IllegalArgumentException("more than one " + what + " capability");
        }
    }

    private int pm(int off, Capability.PowerManagement p) {
        single(pm, "Power Management");
        pm = off;
        pmCap = p;
        put16(off + PM_PMC, PM_CAP_VER_3 | (p.d1() ? PM_CAP_D1 : 0) | (p.d2() ? PM_CAP_D2 : 0));
        put16(off + PM_CTRL, p.noSoftReset() ? PM_CTRL_NO_SOFT_RESET : 0);
        // Only the power state field is writable: no PME support, so PME_En and PME_Status are hardwired 0,
        // and the Data register is not implemented.
        mask16(off + PM_CTRL, PM_CTRL_STATE_MASK);
        return CAP_ID_PM;
    }

    private int msi(int off, Capability.Msi m) {
        single(msi, "MSI");
        msi = off;
        msiCap = m;
        int mmc = Integer.numberOfTrailingZeros(m.vectors());
        put16(off + MSI_FLAGS, (mmc << 1) | (m.address64() ? MSI_FLAGS_64BIT : 0)
                | (m.perVectorMask() ? MSI_FLAGS_MASKBIT : 0));
        mask16(off + MSI_FLAGS, MSI_FLAGS_ENABLE | MSI_FLAGS_QSIZE);
        mask32(off + MSI_ADDRESS_LO, 0xffff_fffc);
        int next = off + 8;
        if (m.address64()) {
            msiAddressHi = next;
            mask32(next, 0xffff_ffff);
            next += 4;
        }
        msiData = next;
        mask16(next, 0xffff);
        if (m.perVectorMask()) {
            msiMask = next + 4;
            msiPending = next + 8;
            mask32(msiMask, m.vectors() == 32 ? -1 : (1 << m.vectors()) - 1);
        }
        return CAP_ID_MSI;
    }

    private int msix(int off, Capability.Msix x) {
        single(msix, "MSI-X");
        BarLayout[] bars = spec.bars();
        checkMsixBar(bars, x.tableBar(), x.tableOffset(), x.tableSize(), "table");
        checkMsixBar(bars, x.pbaBar(), x.pbaOffset(), x.pbaSize(), "PBA");
        if (x.tableBar() == x.pbaBar() && x.tableOffset() < x.pbaOffset() + x.pbaSize()
                && x.pbaOffset() < x.tableOffset() + x.tableSize()) {
            throw new IllegalArgumentException("MSI-X table and PBA overlap");
        }
        msix = off;
        msixCap = x;
        put16(off + MSIX_FLAGS, x.vectors() - 1);
        mask16(off + MSIX_FLAGS, MSIX_FLAGS_ENABLE | MSIX_FLAGS_MASKALL);
        put32(off + MSIX_TABLE, (int) x.tableOffset() | x.tableBar());
        put32(off + MSIX_PBA, (int) x.pbaOffset() | x.pbaBar());
        return CAP_ID_MSIX;
    }

    private static void checkMsixBar(BarLayout[] bars, int bar, long offset, long length, String what) {
        BarLayout b = bars[bar];
        if (b == null || b.kind() == Bar.Kind.IO) {
            throw new IllegalArgumentException("MSI-X " + what + " BAR " + bar + " is not a memory BAR");
        }
        if (offset + length > b.size()) {
            throw new IllegalArgumentException("MSI-X " + what + " beyond BAR " + bar + " size " + b.size());
        }
    }

    private int express(int off, Capability.PciExpress e) {
        single(exp, "PCI Express");
        exp = off;
        put16(off + EXP_FLAGS, EXP_FLAGS_VERS_2 | (e.portType() << 4));
        put32(off + EXP_DEVCAP, e.maxPayloadSize() | EXP_DEVCAP_RBER | EXP_DEVCAP_FLR);
        put16(off + EXP_DEVCTL, EXP_DEVCTL_DEFAULT);
        mask16(off + EXP_DEVCTL, EXP_DEVCTL_WRITABLE);
        w1c16(off + EXP_DEVSTA, EXP_DEVSTA_W1C);
        put32(off + EXP_LNKCAP, e.linkSpeed() | (e.linkWidth() << 4));
        mask16(off + EXP_LNKCTL, EXP_LNKCTL_WRITABLE);
        put16(off + EXP_LNKSTA, e.linkSpeed() | (e.linkWidth() << 4));
        // Supported Link Speeds Vector: bit n (1-based) for every speed up to the maximum.
        put32(off + EXP_LNKCAP2, ((1 << (e.linkSpeed() + 1)) - 2) & 0xfe);
        return CAP_ID_EXP;
    }

    private int vendor(int off, Capability.VendorSpecific v) {
        byte[] data = v.data();
        put8(off + 2, 3 + data.length);
        System.arraycopy(data, 0, init, off + 3, data.length);
        return CAP_ID_VNDR;
    }

    // ---- extended capabilities ----

    private void extendedCapabilities() {
        int off = EXT_CAP_START;
        int prev = -1;
        for (ExtendedCapability c : spec.extended()) {
            int len = switch (c) {
                case ExtendedCapability.DeviceSerialNumber d -> DSN_SIZEOF;
                case ExtendedCapability.VendorExtended v -> VSEC_DATA + v.data().length;
            };
            if (off + len > size) {
                throw new IllegalArgumentException("extended capabilities do not fit in config space: " + c);
            }
            int id = switch (c) {
                case ExtendedCapability.DeviceSerialNumber d -> {
                    put32(off + 4, (int) d.serial());
                    put32(off + 8, (int) (d.serial() >>> 32));
                    yield EXT_CAP_ID_DSN;
                }
                case ExtendedCapability.VendorExtended v -> {
                    byte[] data = v.data();
                    put32(off + VSEC_HEADER, v.vsecId() | (v.vsecRev() << 16) | ((VSEC_DATA + data.length) << 20));
                    System.arraycopy(data, 0, init, off + VSEC_DATA, data.length);
                    yield EXT_CAP_ID_VNDR;
                }
            };
            if (id == EXT_CAP_ID_DSN && extCapOffsets.containsKey(id)) {
                throw new IllegalArgumentException("more than one Device Serial Number capability");
            }
            // Header: id 15:0, version 19:16 (1 for both), next 31:20 (patched when the next one is laid out).
            put32(off, id | (1 << 16));
            extCapOffsets.putIfAbsent(id, off);
            if (prev >= 0) {
                put32(prev, get32(prev) | (off << 20));
            }
            prev = off;
            off = (off + len + 3) & ~3;
        }
    }

    // ---- byte helpers (little-endian) ----

    private void put8(int off, int v) {
        init[off] = (byte) v;
    }

    private void put16(int off, int v) {
        init[off] = (byte) v;
        init[off + 1] = (byte) (v >>> 8);
    }

    private void put32(int off, int v) {
        put16(off, v);
        put16(off + 2, v >>> 16);
    }

    private int get32(int off) {
        return (init[off] & 0xff) | (init[off + 1] & 0xff) << 8 | (init[off + 2] & 0xff) << 16
                | (init[off + 3] & 0xff) << 24;
    }

    private void mask8(int off, int m) {
        wmask[off] = (byte) m;
    }

    private void mask16(int off, int m) {
        wmask[off] = (byte) m;
        wmask[off + 1] = (byte) (m >>> 8);
    }

    private void mask32(int off, int m) {
        mask16(off, m);
        mask16(off + 2, m >>> 16);
    }

    private void w1c16(int off, int m) {
        w1c[off] = (byte) m;
        w1c[off + 1] = (byte) (m >>> 8);
    }
}
