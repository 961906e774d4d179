package io.vfu.server.pci;

import io.vfu.server.Bar;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/** Test fixtures: the specs the golden values were written for, hex helpers and a recording listener. */
final class Specs {
    private Specs() {
    }

    static final PciIdentity IDENTITY = new PciIdentity(0x1af4, 0x1234, 0x8086, 0x5678, 0x0c0330, 0x01);

    /**
     * PCI Express endpoint:
     * BAR0 mem32 4 KiB, BAR1 I/O 32 B, BAR2-3 mem64 prefetchable 8 GiB, BAR4-5 mem64 16 KiB (MSI-X),
     * ROM 32 KiB, INTA#; PM, MSI (4 vectors, 64-bit, per-vector mask), MSI-X (8 vectors, table BAR4+0,
     * PBA BAR4+0x2000), PCIe (endpoint, MPS 256, 8 GT/s x4), vendor (aa bb cc); DSN, VSEC.
     */
    static ConfigSpaceSpec full() {
        return full(Capability.PowerManagement.standard());
    }

    static ConfigSpaceSpec full(Capability.PowerManagement pm) {
        BarLayout[] bars = {
                new BarLayout(Bar.Kind.MEMORY32, false, 0x1000),
                new BarLayout(Bar.Kind.IO, false, 0x20),
                new BarLayout(Bar.Kind.MEMORY64, true, 0x2_0000_0000L),
                null,
                new BarLayout(Bar.Kind.MEMORY64, false, 0x4000),
                null};
        return new ConfigSpaceSpec(IDENTITY, bars, 0x8000, 1,
                List.of(pm,
                        new Capability.Msi(4, true, true),
                        new Capability.Msix(8, 4, 0, 4, 0x2000),
                        new Capability.PciExpress(0, 1, 3, 4),
                        new Capability.VendorSpecific(new byte[] {(byte) 0xaa, (byte) 0xbb, (byte) 0xcc})),
                List.of(new ExtendedCapability.DeviceSerialNumber(0x0123_4567_89ab_cdefL),
                        new ExtendedCapability.VendorExtended(0x1234, 2, new byte[] {1, 2, 3, 4, 5})));
    }

    /** Conventional PCI, no capabilities: BAR0 I/O 256 B, BAR2 mem32 prefetchable 16 B, no ROM, no pin. */
    static ConfigSpaceSpec conventional() {
        BarLayout[] bars = {
                new BarLayout(Bar.Kind.IO, false, 0x100), null,
                new BarLayout(Bar.Kind.MEMORY32, true, 0x10), null, null, null};
        return new ConfigSpaceSpec(IDENTITY, bars, 0, 0, List.of(), List.of());
    }

    /** Conventional PCI with one 32-bit MSI capability: 2 vectors, per-vector masking. */
    static ConfigSpaceSpec msi32() {
        return new ConfigSpaceSpec(IDENTITY, new BarLayout[6], 0, 0,
                List.of(new Capability.Msi(2, false, true)), List.of());
    }

    /** PCI Express endpoint without extended capabilities. */
    static ConfigSpaceSpec expressOnly() {
        return new ConfigSpaceSpec(IDENTITY, new BarLayout[6], 0, 0,
                List.of(Capability.PciExpress.endpoint()), List.of());
    }

    static MemorySegment hex(String text) {
        return MemorySegment.ofArray(HexFormat.of().parseHex(text.replaceAll("\\s+", "")));
    }

    static String norm(String text) {
        return HexFormat.ofDelimiter(" ").formatHex(HexFormat.of().parseHex(text.replaceAll("\\s+", "")));
    }

    /** Reads {@code len} config bytes as spaced hex. */
    static String read(ConfigSpace cs, long offset, int len) {
        MemorySegment dst = MemorySegment.ofArray(new byte[len]);
        cs.read(offset, dst);
        return HexFormat.ofDelimiter(" ").formatHex(dst.toArray(ValueLayout.JAVA_BYTE));
    }

    static int read8(ConfigSpace cs, long offset) {
        MemorySegment dst = MemorySegment.ofArray(new byte[1]);
        cs.read(offset, dst);
        return dst.get(ValueLayout.JAVA_BYTE, 0) & 0xff;
    }

    static int read16(ConfigSpace cs, long offset) {
        return read8(cs, offset) | read8(cs, offset + 1) << 8;
    }

    static long read32(ConfigSpace cs, long offset) {
        return (read16(cs, offset) | (long) read16(cs, offset + 2) << 16) & 0xffff_ffffL;
    }

    static void write(ConfigSpace cs, long offset, String hexBytes) {
        cs.write(offset, hex(hexBytes));
    }

    static void write16(ConfigSpace cs, long offset, int value) {
        cs.write(offset, MemorySegment.ofArray(new byte[] {(byte) value, (byte) (value >>> 8)}));
    }

    static void write32(ConfigSpace cs, long offset, long value) {
        cs.write(offset, MemorySegment.ofArray(new byte[] {(byte) value, (byte) (value >>> 8),
                (byte) (value >>> 16), (byte) (value >>> 24)}));
    }

    /** Records listener calls as short strings. */
    static final class Events implements ConfigSpace.Listener {
        final List<String> list = new ArrayList<>();

        List<String> take() {
            List<String> copy = List.copyOf(list);
            list.clear();
            return copy;
        }

        @Override
        public void commandChanged(int oldValue, int newValue) {
            list.add(String.format("command %04x->%04x", oldValue, newValue));
        }

        @Override
        public void msiChanged(boolean enabled, int enabledVectors) {
            list.add("msi " + enabled + " " + enabledVectors);
        }

        @Override
        public void msiMaskChanged(int vector, boolean masked) {
            list.add("msiMask " + vector + " " + masked);
        }

        @Override
        public void msixChanged(boolean enabled, boolean functionMask) {
            list.add("msix " + enabled + " " + functionMask);
        }

        @Override
        public void msixVectorMaskChanged(int vector, boolean masked) {
            list.add("msixMask " + vector + " " + masked);
        }

        @Override
        public void functionLevelReset() {
            list.add("flr");
        }

        @Override
        public void powerStateChanged(int oldState, int newState) {
            list.add("power " + oldState + "->" + newState);
        }
    }
}
