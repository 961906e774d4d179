package io.vfu.client.pci;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.client.pci.PciConfig.BarType;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/** Config-space bytes written by hand from the PCI / PCI PM / PCI Express register tables. */
class PciConfigTest {

    /** Writes hand-written hex at {@code offset}. */
    private static void put(byte[] cfg, int offset, String hex) {
        byte[] b = HexFormat.of().parseHex(hex.replaceAll("\\s+", ""));
        System.arraycopy(b, 0, cfg, offset, b.length);
    }

    /** A type-0 header: vendor 0x1de5, device 0x0042, command 0x0406, status 0x0010, rev 3, class 0xff0000. */
    private static byte[] header(int size) {
        byte[] cfg = new byte[size];
        put(cfg, 0x00, "e5 1d 42 00  06 04 10 00  03 00 00 ff  00 00 00 00");
        // BAR0 mem32 at 0xfe000000; BAR1 I/O at 0xc000; BAR2/3 mem64 prefetchable at 0x0000_0008_0000_0000;
        // BAR4 unused (0); BAR5 mem32 prefetchable at 0xfd000000.
        put(cfg, 0x10, "00 00 00 fe  01 c0 00 00  0c 00 00 00  08 00 00 00");
        put(cfg, 0x20, "00 00 00 00  08 00 00 fd  00 00 00 00  e5 1d 01 00");
        put(cfg, 0x30, "00 00 00 00  40 00 00 00  00 00 00 00  0b 01 00 00");
        return cfg;
    }

    private static byte[] full() {
        byte[] cfg = header(4096);
        // 0x40 PM: id 01 next 48, PMC 0x0603 (v3, D1, D2), PMCSR 0x0008 (D0, No_Soft_Reset)
        put(cfg, 0x40, "01 48 03 06  08 00 00 00");
        // 0x48 MSI: id 05 next 60, control 0x01a5 (enable, MMC=2 -> 4, MME=2 -> 4, 64-bit, per-vector mask)
        //   address 0x00000001_fee00000, data 0x4021, mask 0x00000002, pending 0x00000001
        put(cfg, 0x48, "05 60 a5 01  00 00 e0 fe  01 00 00 00  21 40 00 00  02 00 00 00  01 00 00 00");
        // 0x60 MSI-X: id 11 next 6c, control 0xc007 (enable, function mask, 8 vectors)
        //   table BIR 4 offset 0, PBA BIR 4 offset 0x2000
        put(cfg, 0x60, "11 6c 07 c0  04 00 00 00  04 20 00 00");
        // 0x6c PCIe: id 10 next a8, flags 0x0002 (v2, endpoint), devcap 0x10008001 (MPS 256),
        //   devctl 0x2830 (bits 7:5 = 1 -> MPS 256, bits 14:12 = 2 -> MRRS 512), devsta 0,
        //   lnkcap 0x00000042 (speed 2 = 5 GT/s, x4), lnkctl 0, lnksta 0x0021 (speed 1 = 2.5 GT/s, x2)
        put(cfg, 0x6c, "10 a8 02 00  01 80 00 10  30 28 00 00  42 00 00 00  00 00 21 00");
        // 0xa8 vendor: id 09 next b4, length 7, data 01 02 03 04
        put(cfg, 0xa8, "09 b4 07 01  02 03 04");
        // 0xb4 an id this decoder does not know (0x0d, bridge subsystem vendor), end of list
        put(cfg, 0xb4, "0d 00 00 00");
        // 0x100 DSN: id 0003 ver 1 next 0x10c; serial 0x0123456789abcdef (lower dword first)
        put(cfg, 0x100, "03 00 c1 10  ef cd ab 89  67 45 23 01");
        // 0x10c VSEC: id 000b ver 1 next 0x120; vsec id 0x1234 rev 2 length 0x00c
        put(cfg, 0x10c, "0b 00 01 12  34 12 c2 00  aa bb cc dd");
        // 0x120 unknown extended id 0x0001 (AER) version 2, end
        put(cfg, 0x120, "01 00 02 00");
        return cfg;
    }

    @Test
    void header_fields() {
        PciConfig c = PciConfig.parse(full());
        assertThat(c.size()).isEqualTo(4096);
        assertThat(c.vendorId()).isEqualTo(0x1de5);
        assertThat(c.deviceId()).isEqualTo(0x0042);
        assertThat(c.command()).isEqualTo(0x0406);
        assertThat(c.status()).isEqualTo(0x0010);
        assertThat(c.revision()).isEqualTo(3);
        assertThat(c.classCode()).isEqualTo(0xff0000);
        assertThat(c.baseClass()).isEqualTo(0xff);
        assertThat(c.subClass()).isZero();
        assertThat(c.headerType()).isZero();
        assertThat(c.subsystemVendorId()).isEqualTo(0x1de5);
        assertThat(c.subsystemId()).isEqualTo(0x0001);
        assertThat(c.interruptLine()).isEqualTo(0x0b);
        assertThat(c.interruptPin()).isEqualTo(1);
        assertThat(c.problems()).isEmpty();
    }

    @Test
    void bars() {
        PciConfig c = PciConfig.parse(full());
        assertThat(c.bars()).containsExactly(
                new PciConfig.Bar(0, BarType.MEM32, false, 0xfe00_0000L, 0xfe00_0000),
                new PciConfig.Bar(1, BarType.IO, false, 0xc000, 0xc001),
                new PciConfig.Bar(2, BarType.MEM64, true, 0x8_0000_0000L, 0x0c),
                new PciConfig.Bar(4, BarType.MEM32, false, 0, 0),
                new PciConfig.Bar(5, BarType.MEM32, true, 0xfd00_0000L, 0xfd00_0008));
    }

    @Test
    void standard_capabilities() {
        PciConfig c = PciConfig.parse(full());
        assertThat(c.capabilities()).hasSize(6);

        PciConfig.PowerManagement pm = (PciConfig.PowerManagement) c.capabilities().get(0);
        assertThat(pm.offset()).isEqualTo(0x40);
        assertThat(pm.version()).isEqualTo(3);
        assertThat(pm.d1Support()).isTrue();
        assertThat(pm.d2Support()).isTrue();
        assertThat(pm.pmeSupport()).isZero();
        assertThat(pm.powerState()).isZero();
        assertThat(pm.noSoftReset()).isTrue();
        assertThat(pm.pmeEnable()).isFalse();

        PciConfig.Msi msi = (PciConfig.Msi) c.capabilities().get(1);
        assertThat(msi.offset()).isEqualTo(0x48);
        assertThat(msi.enabled()).isTrue();
        assertThat(msi.vectorsCapable()).isEqualTo(4);
        assertThat(msi.vectorsEnabled()).isEqualTo(4);
        assertThat(msi.address64()).isTrue();
        assertThat(msi.perVectorMask()).isTrue();
        assertThat(msi.address()).isEqualTo(0x1_fee0_0000L);
        assertThat(msi.data()).isEqualTo(0x4021);
        assertThat(msi.mask()).isEqualTo(2);
        assertThat(msi.pending()).isEqualTo(1);

        PciConfig.Msix msix = (PciConfig.Msix) c.capabilities().get(2);
        assertThat(msix.offset()).isEqualTo(0x60);
        assertThat(msix.tableSize()).isEqualTo(8);
        assertThat(msix.enabled()).isTrue();
        assertThat(msix.functionMask()).isTrue();
        assertThat(msix.tableBir()).isEqualTo(4);
        assertThat(msix.tableOffset()).isZero();
        assertThat(msix.pbaBir()).isEqualTo(4);
        assertThat(msix.pbaOffset()).isEqualTo(0x2000);

        PciConfig.PciExpress exp = (PciConfig.PciExpress) c.capabilities().get(3);
        assertThat(exp.offset()).isEqualTo(0x6c);
        assertThat(exp.version()).isEqualTo(2);
        assertThat(exp.portType()).isZero();
        assertThat(exp.portTypeName()).isEqualTo("Endpoint");
        assertThat(exp.maxPayloadSupported()).isEqualTo(256);
        assertThat(exp.maxPayload()).isEqualTo(256);
        assertThat(exp.maxReadRequest()).isEqualTo(512);
        assertThat(exp.maxLinkSpeed()).isEqualTo(2);
        assertThat(PciConfig.PciExpress.speedName(exp.maxLinkSpeed())).isEqualTo("5GT/s");
        assertThat(exp.maxLinkWidth()).isEqualTo(4);
        assertThat(exp.linkSpeed()).isEqualTo(1);
        assertThat(exp.linkWidth()).isEqualTo(2);

        assertThat(c.capabilities().get(4)).isEqualTo(new PciConfig.VendorSpecific(0xa8, 7, new byte[] {1, 2, 3, 4}));
        assertThat(c.capabilities().get(5)).isEqualTo(new PciConfig.Unknown(0xb4, 0x0d));
        assertThat(c.capability(PciConfig.Msix.class)).containsSame(msix);
    }

    @Test
    void extended_capabilities() {
        PciConfig c = PciConfig.parse(full());
        assertThat(c.extendedCapabilities()).containsExactly(
                new PciConfig.DeviceSerialNumber(0x100, 1, 0x0123_4567_89ab_cdefL),
                new PciConfig.VendorExtended(0x10c, 1, 0x1234, 2, 12),
                new PciConfig.UnknownExtended(0x120, 0x0001, 2));
        assertThat(((PciConfig.DeviceSerialNumber) c.extendedCapabilities().get(0)).serialString())
                .isEqualTo("01-23-45-67-89-ab-cd-ef");
    }

    @Test
    void msi_32bit_without_mask() {
        byte[] cfg = header(256);
        // control 0x0000: disabled, 1 vector, 32-bit; address 0xfee01000, data 0x0030
        put(cfg, 0x40, "05 00 00 00  00 10 e0 fe  30 00");
        PciConfig.Msi msi = (PciConfig.Msi) PciConfig.parse(cfg).capabilities().getFirst();
        assertThat(msi.enabled()).isFalse();
        assertThat(msi.vectorsCapable()).isEqualTo(1);
        assertThat(msi.address64()).isFalse();
        assertThat(msi.perVectorMask()).isFalse();
        assertThat(msi.address()).isEqualTo(0xfee0_1000L);
        assertThat(msi.data()).isEqualTo(0x30);
    }

    @Test
    void conventional_256_bytes_has_no_extended_list() {
        byte[] cfg = header(256);
        put(cfg, 0x40, "01 00 03 00  00 00 00 00");
        PciConfig c = PciConfig.parse(cfg);
        assertThat(c.capabilities()).hasSize(1);
        assertThat(c.extendedCapabilities()).isEmpty();
        assertThat(c.problems()).isEmpty();
    }

    @Test
    void no_list_when_status_bit_clear() {
        byte[] cfg = header(256);
        put(cfg, 0x06, "00 00");
        put(cfg, 0x40, "01 00 03 00  00 00 00 00");
        assertThat(PciConfig.parse(cfg).capabilities()).isEmpty();
    }

    @Test
    void loop_is_cut_and_reported() {
        byte[] cfg = header(256);
        put(cfg, 0x40, "01 50 03 00  00 00 00 00");
        put(cfg, 0x50, "09 40 03");
        PciConfig c = PciConfig.parse(cfg);
        assertThat(c.capabilities()).extracting(PciConfig.Capability::offset).containsExactly(0x40, 0x50);
        assertThat(c.problems()).containsExactly("capability list loops back to 0x40");
    }

    @Test
    void self_loop_and_pointer_into_header() {
        byte[] cfg = header(256);
        put(cfg, 0x40, "01 40 03 00  00 00 00 00");
        assertThat(PciConfig.parse(cfg).problems()).containsExactly("capability list loops back to 0x40");
        put(cfg, 0x40, "01 10 03 00  00 00 00 00");
        assertThat(PciConfig.parse(cfg).problems()).containsExactly("capability pointer 0x10 outside 0x40..0xfe");
    }

    @Test
    void truncated_capability_becomes_unknown() {
        byte[] cfg = header(256);
        put(cfg, 0x34, "fc");
        put(cfg, 0xfc, "11 00 07 00"); // MSI-X needs 12 bytes, only 4 left
        PciConfig c = PciConfig.parse(cfg);
        assertThat(c.capabilities()).containsExactly(new PciConfig.Unknown(0xfc, 0x11));
        assertThat(c.problems()).containsExactly("MSI-X capability at 0xfc needs 12 bytes, beyond 0x100");
    }

    @Test
    void vendor_length_beyond_space_is_clipped() {
        byte[] cfg = header(256);
        put(cfg, 0x34, "f8");
        put(cfg, 0xf8, "09 00 20 01 02 03 04 05");
        PciConfig c = PciConfig.parse(cfg);
        PciConfig.VendorSpecific v = (PciConfig.VendorSpecific) c.capabilities().getFirst();
        assertThat(v.length()).isEqualTo(0x20);
        assertThat(v.data()).containsExactly(1, 2, 3, 4, 5);
        assertThat(c.problems()).containsExactly("Vendor-specific capability at 0xf8: length 32 does not fit");
    }

    @Test
    void extended_loop_and_bad_pointer() {
        byte[] cfg = header(4096);
        put(cfg, 0x100, "03 00 01 10  00 00 00 00  00 00 00 00"); // next 0x100: itself
        PciConfig c = PciConfig.parse(cfg);
        assertThat(c.extendedCapabilities()).hasSize(1);
        assertThat(c.problems()).containsExactly("extended capability list loops back to 0x100");

        put(cfg, 0x100, "03 00 41 00  00 00 00 00  00 00 00 00"); // next 0x004: below 0x100
        c = PciConfig.parse(cfg);
        assertThat(c.extendedCapabilities()).hasSize(1);
        assertThat(c.problems()).containsExactly("extended capability pointer 0x004 outside 0x100..0xffc");
    }

    @Test
    void empty_extended_space() {
        byte[] cfg = header(4096);
        put(cfg, 0x100, "ff ff ff ff");
        assertThat(PciConfig.parse(cfg).extendedCapabilities()).isEmpty();
    }

    @Test
    void dsn_at_end_of_space_does_not_fit() {
        byte[] cfg = header(4096);
        put(cfg, 0x100, "01 00 01 ff"); // AER v1, next 0xff0
        put(cfg, 0xff0, "03 00 01 00  11 22 33 44  55 66 77 88"); // fits exactly at 0xff0..0xffb
        PciConfig c = PciConfig.parse(cfg);
        assertThat(c.extendedCapabilities()).containsExactly(new PciConfig.UnknownExtended(0x100, 1, 1),
                new PciConfig.DeviceSerialNumber(0xff0, 1, 0x8877_6655_4433_2211L));

        put(cfg, 0x100, "01 00 c1 ff"); // next 0xffc: a DSN header fits, the serial does not
        put(cfg, 0xffc, "03 00 01 00");
        c = PciConfig.parse(cfg);
        assertThat(c.extendedCapabilities()).last().isEqualTo(new PciConfig.UnknownExtended(0xffc, 3, 1));
        assertThat(c.problems()).containsExactly("Device Serial Number capability at 0xffc does not fit");
    }

    @Test
    void bridge_header_decodes_two_bars() {
        byte[] cfg = header(256);
        put(cfg, 0x0e, "01");
        PciConfig c = PciConfig.parse(cfg);
        assertThat(c.bars()).extracting(PciConfig.Bar::index).containsExactly(0, 1);
        assertThat(c.subsystemVendorId()).isZero();
        assertThat(c.problems()).containsExactly("header type 0x01 is not 0: only BAR0-1 decoded, no subsystem ids");
    }

    @Test
    void mem64_in_bar5_has_no_upper_half() {
        byte[] cfg = header(256);
        put(cfg, 0x24, "04 00 00 e0");
        PciConfig c = PciConfig.parse(cfg);
        assertThat(c.bars().getLast()).isEqualTo(new PciConfig.Bar(5, BarType.MEM64, false, 0xe000_0000L, 0xe000_0004));
        assertThat(c.problems()).containsExactly("BAR5 is 64-bit but has no upper register");
    }

    @Test
    void size_bounds() {
        assertThatThrownBy(() -> PciConfig.parse(new byte[63])).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> PciConfig.parse(new byte[4097])).isInstanceOf(IllegalArgumentException.class);
        assertThat(PciConfig.parse(new byte[64]).bars()).hasSize(6);
    }

    @Test
    void random_bytes_never_throw() {
        java.util.Random random = new java.util.Random(42);
        for (int i = 0; i < 2000; i++) {
            byte[] cfg = new byte[random.nextBoolean() ? 256 : 4096];
            random.nextBytes(cfg);
            PciConfig c = PciConfig.parse(cfg);
            assertThat(c.capabilities().size()).isLessThanOrEqualTo(48);
        }
    }
}
