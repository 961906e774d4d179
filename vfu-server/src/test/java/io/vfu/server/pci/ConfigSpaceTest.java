package io.vfu.server.pci;

import static io.vfu.server.pci.Specs.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.VfioUserException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Header, BARs, ROM, command/status, capability lists, bounds. Golden values written from PCI 3.0 §6.1/§6.2. */
class ConfigSpaceTest {
    private final Events events = new Events();

    @Test
    void headerOfPciExpressFunction() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        assertThat(cs.size()).isEqualTo(4096);
        assertThat(read(cs, 0, 0x40)).isEqualTo(norm("""
                f4 1a 34 12  00 00 10 00  01 30 03 0c  00 00 00 00
                00 00 00 00  01 00 00 00  0c 00 00 00  00 00 00 00
                04 00 00 00  00 00 00 00  00 00 00 00  86 80 78 56
                00 00 00 00  40 00 00 00  00 00 00 00  00 01 00 00
                """));
        assertThat(cs.command()).isZero();
        assertThat(cs.status()).isEqualTo(0x0010);
    }

    @Test
    void conventionalFunctionWithoutCapabilities() {
        ConfigSpace cs = new ConfigSpace(conventional(), events);
        assertThat(cs.size()).isEqualTo(256);
        assertThat(read(cs, 0, 0x40)).isEqualTo(norm("""
                f4 1a 34 12  00 00 00 00  01 30 03 0c  00 00 00 00
                01 00 00 00  00 00 00 00  08 00 00 00  00 00 00 00
                00 00 00 00  00 00 00 00  00 00 00 00  86 80 78 56
                00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
                """));
        assertThat(read(cs, 0x40, 0xc0)).isEqualTo(norm("00".repeat(0xc0)));
        assertThat(cs.capabilityOffset(0x01)).isEqualTo(-1);
    }

    @Test
    void identityAndOtherReadOnlyRegistersIgnoreWrites() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        write(cs, 0x00, "ff ff ff ff");                 // vendor, device
        write(cs, 0x08, "ff ff ff ff");                 // revision, class
        write(cs, 0x0e, "ff ff");                       // header type, BIST
        write(cs, 0x28, "ff ff ff ff ff ff ff ff");     // CardBus CIS, subsystem ids
        write(cs, 0x34, "ff ff ff ff ff ff ff ff");     // capabilities pointer, reserved
        write(cs, 0x3d, "ff ff ff");                    // interrupt pin, min_gnt, max_lat
        assertThat(read(cs, 0, 0x10)).isEqualTo(norm("f4 1a 34 12  00 00 10 00  01 30 03 0c  00 00 00 00"));
        assertThat(read(cs, 0x28, 0x18)).isEqualTo(norm("""
                00 00 00 00  86 80 78 56  00 00 00 00  40 00 00 00  00 00 00 00  00 01 00 00"""));
        assertThat(events.take()).isEmpty();
    }

    @Test
    void cacheLineLatencyTimerAndInterruptLine() {
        ConfigSpace conv = new ConfigSpace(conventional(), events);
        write(conv, 0x0c, "10 20");
        write(conv, 0x3c, "0b");
        assertThat(read(conv, 0x0c, 2)).isEqualTo("10 20");
        assertThat(read8(conv, 0x3c)).isEqualTo(0x0b);

        // PCI Express: the latency timer is hardwired to 0.
        ConfigSpace exp = new ConfigSpace(full(), events);
        write(exp, 0x0c, "10 20");
        write(exp, 0x3c, "0b ff");
        assertThat(read(exp, 0x0c, 2)).isEqualTo("10 00");
        assertThat(read(exp, 0x3c, 2)).isEqualTo("0b 01");
    }

    @Test
    void commandRegisterWritableBits() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        write16(cs, 0x04, 0xffff);
        // I/O 0x1, memory 0x2, bus master 0x4, parity 0x40, SERR 0x100, INTx disable 0x400
        assertThat(read16(cs, 0x04)).isEqualTo(0x0547);
        assertThat(cs.command()).isEqualTo(0x0547);
        assertThat(events.take()).containsExactly("command 0000->0547");
        write16(cs, 0x04, 0x0547);
        assertThat(events.take()).isEmpty();
        write(cs, 0x05, "00");                          // high byte only
        assertThat(cs.command()).isEqualTo(0x0047);
        assertThat(events.take()).containsExactly("command 0547->0047");
    }

    @Test
    void statusErrorBitsAreWriteOneToClear() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        write16(cs, 0x06, 0xffff);
        assertThat(read16(cs, 0x06)).isEqualTo(0x0010);     // read-only, nothing to clear
        cs.signalStatus(0xffff);
        assertThat(read16(cs, 0x06)).isEqualTo(0xf910);     // only the W1C bits can be signalled
        cs.setInterruptStatus(true);
        assertThat(read16(cs, 0x06)).isEqualTo(0xf918);
        // dword write over command and status: command 0x0002, clear master data parity and master abort
        write(cs, 0x04, "02 00 00 21");
        assertThat(read(cs, 0x04, 4)).isEqualTo(norm("02 00 18 d8"));
        write(cs, 0x07, "00");
        assertThat(read16(cs, 0x06)).isEqualTo(0xd818);
        write(cs, 0x06, "ff ff");
        assertThat(read16(cs, 0x06)).isEqualTo(0x0018);     // interrupt status and cap list stay
        cs.setInterruptStatus(false);
        assertThat(read16(cs, 0x06)).isEqualTo(0x0010);
        assertThat(events.take()).containsExactly("command 0000->0002");
    }

    @Test
    void memory32BarSizing() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        write32(cs, 0x10, 0xffff_ffffL);
        assertThat(read(cs, 0x10, 4)).isEqualTo("00 f0 ff ff");    // ~(0x1000 - 1), type 0
        write32(cs, 0x10, 0xfebf_1234L);
        assertThat(read32(cs, 0x10)).isEqualTo(0xfebf_1000L);
        assertThat(cs.barAddress(0)).isEqualTo(0xfebf_1000L);
    }

    @Test
    void prefetchableMemory32BarKeepsTypeBits() {
        ConfigSpace cs = new ConfigSpace(conventional(), events);
        write32(cs, 0x18, 0xffff_ffffL);
        assertThat(read(cs, 0x18, 4)).isEqualTo("f8 ff ff ff");    // ~(0x10 - 1) | prefetchable
        write32(cs, 0x18, 0xe000_0000L);
        assertThat(read32(cs, 0x18)).isEqualTo(0xe000_0008L);
        assertThat(cs.barAddress(2)).isEqualTo(0xe000_0000L);
    }

    @Test
    void ioBarSizing() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        write32(cs, 0x14, 0xffff_ffffL);
        assertThat(read(cs, 0x14, 4)).isEqualTo("e1 ff ff ff");    // ~(0x20 - 1) | I/O space
        write32(cs, 0x14, 0xc040L);
        assertThat(read32(cs, 0x14)).isEqualTo(0xc041L);
        assertThat(cs.barAddress(1)).isEqualTo(0xc040L);

        ConfigSpace conv = new ConfigSpace(conventional(), events);
        write32(conv, 0x10, 0xffff_ffffL);
        assertThat(read(conv, 0x10, 4)).isEqualTo("01 ff ff ff");  // 256-byte I/O BAR
    }

    @Test
    void memory64BarSizingBothHalves() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        // BAR4-5: 16 KiB, not prefetchable
        write32(cs, 0x20, 0xffff_ffffL);
        write32(cs, 0x24, 0xffff_ffffL);
        assertThat(read(cs, 0x20, 8)).isEqualTo(norm("04 c0 ff ff  ff ff ff ff"));
        // BAR2-3: 8 GiB prefetchable: the low half has no address bits, the high half loses bit 0
        write32(cs, 0x18, 0xffff_ffffL);
        write32(cs, 0x1c, 0xffff_ffffL);
        assertThat(read(cs, 0x18, 8)).isEqualTo(norm("0c 00 00 00  fe ff ff ff"));

        write32(cs, 0x20, 0xf000_4000L);
        write32(cs, 0x24, 0x0000_0012L);
        assertThat(read(cs, 0x20, 8)).isEqualTo(norm("04 40 00 f0  12 00 00 00"));
        assertThat(cs.barAddress(4)).isEqualTo(0x12_f000_4000L);
        write(cs, 0x18, "00 00 00 00  03 00 00 00");               // 8-byte write over both halves
        assertThat(cs.barAddress(2)).isEqualTo(0x2_0000_0000L);
        assertThat(cs.barAddress(3)).isEqualTo(-1);                 // upper half
        assertThat(cs.barAddress(5)).isEqualTo(-1);
        assertThat(cs.barAddress(6)).isEqualTo(-1);
    }

    @Test
    void unusedBarsReadZeroAndIgnoreWrites() {
        ConfigSpace cs = new ConfigSpace(conventional(), events);
        for (int bar : new int[] {1, 3, 4, 5}) {
            write32(cs, 0x10 + 4 * bar, 0xffff_ffffL);
            assertThat(read32(cs, 0x10 + 4 * bar)).isZero();
            assertThat(cs.barAddress(bar)).isEqualTo(-1);
        }
    }

    @Test
    void expansionRomSizingAndEnable() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        write32(cs, 0x30, 0xffff_ffffL);
        assertThat(read(cs, 0x30, 4)).isEqualTo("01 80 ff ff");    // ~(32 KiB - 1) | enable
        write32(cs, 0x30, 0xfeb0_07feL);
        assertThat(read32(cs, 0x30)).isEqualTo(0xfeb0_0000L);
        assertThat(cs.romAddress()).isEqualTo(0xfeb0_0000L);
        assertThat(cs.romEnabled()).isFalse();
        write(cs, 0x30, "01");
        assertThat(cs.romEnabled()).isTrue();

        ConfigSpace none = new ConfigSpace(conventional(), events);
        write32(none, 0x30, 0xffff_ffffL);
        assertThat(read32(none, 0x30)).isZero();
        assertThat(none.romAddress()).isEqualTo(-1);
    }

    @Test
    void capabilityChain() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        List<String> chain = new ArrayList<>();
        int seen = 0;
        for (int p = read8(cs, 0x34); p != 0; p = read8(cs, p + 1)) {
            chain.add(String.format("%02x@%02x", read8(cs, p), p));
            assertThat(++seen).isLessThan(48);
        }
        assertThat(chain).containsExactly("01@40", "05@48", "11@60", "10@6c", "09@a8");
        assertThat(cs.capabilityOffset(0x01)).isEqualTo(0x40);
        assertThat(cs.capabilityOffset(0x05)).isEqualTo(0x48);
        assertThat(cs.capabilityOffset(0x11)).isEqualTo(0x60);
        assertThat(cs.capabilityOffset(0x10)).isEqualTo(0x6c);
        assertThat(cs.capabilityOffset(0x09)).isEqualTo(0xa8);
        assertThat(cs.capabilityOffset(0x12)).isEqualTo(-1);
        // Power Management: PMC version 3, PMCSR No_Soft_Reset
        assertThat(read(cs, 0x40, 8)).isEqualTo(norm("01 48 03 00  08 00 00 00"));
        // MSI: MMC 4 vectors (010b), 64-bit, per-vector masking; address, upper, data, mask, pending
        assertThat(read(cs, 0x48, 0x18)).isEqualTo(norm("05 60 84 01" + " 00".repeat(0x14)));
        // MSI-X: table size 8 (N-1 = 7), table BIR 4 offset 0, PBA BIR 4 offset 0x2000
        assertThat(read(cs, 0x60, 12)).isEqualTo(norm("11 6c 07 00  04 00 00 00  04 20 00 00"));
        // PCI Express v2 endpoint: DevCap MPS 256 + RBER + FLR; DevCtl RO+NS+MRRS 512;
        // LnkCap 8 GT/s x4; LnkSta 8 GT/s x4; LnkCap2 speeds 2.5/5/8
        assertThat(read(cs, 0x6c, 0x3c)).isEqualTo(norm("""
                10 a8 02 00  01 80 00 10  10 28 00 00  43 00 00 00
                00 00 43 00  00 00 00 00  00 00 00 00  00 00 00 00
                00 00 00 00  00 00 00 00  00 00 00 00  0e 00 00 00
                00 00 00 00  00 00 00 00  00 00 00 00
                """));
        // Vendor specific: length 3 + 3
        assertThat(read(cs, 0xa8, 6)).isEqualTo(norm("09 00 06 aa bb cc"));
        assertThat(read(cs, 0xae, 0x52)).isEqualTo(norm("00".repeat(0x52)));
    }

    @Test
    void extendedCapabilityChain() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        // DSN: id 3, version 1, next 0x10c; serial low dword, high dword
        assertThat(read(cs, 0x100, 12)).isEqualTo(norm("03 00 c1 10  ef cd ab 89  67 45 23 01"));
        // VSEC: id 0xb, version 1, next 0; VSEC id 0x1234 rev 2 length 13; data
        assertThat(read(cs, 0x10c, 13)).isEqualTo(norm("0b 00 01 00  34 12 d2 00  01 02 03 04 05"));
        List<String> chain = new ArrayList<>();
        for (int p = 0x100; p != 0; p = (int) (read32(cs, p) >>> 20)) {
            long h = read32(cs, p);
            chain.add(String.format("%04x v%d @%03x", h & 0xffff, (h >>> 16) & 0xf, p));
        }
        assertThat(chain).containsExactly("0003 v1 @100", "000b v1 @10c");
        assertThat(cs.extendedCapabilityOffset(0x0003)).isEqualTo(0x100);
        assertThat(cs.extendedCapabilityOffset(0x000b)).isEqualTo(0x10c);
        assertThat(cs.extendedCapabilityOffset(0x0001)).isEqualTo(-1);
        write(cs, 0x100, "ff".repeat(29));
        assertThat(read(cs, 0x100, 4)).isEqualTo("03 00 c1 10");

        ConfigSpace bare = new ConfigSpace(expressOnly(), events);
        assertThat(bare.size()).isEqualTo(4096);
        assertThat(read32(bare, 0x100)).isZero();
        assertThat(read(bare, 0xff0, 16)).isEqualTo(norm("00".repeat(16)));
    }

    @Test
    void accessesOutsideConfigSpaceFailWithEinval() {
        ConfigSpace exp = new ConfigSpace(full(), events);
        ConfigSpace conv = new ConfigSpace(conventional(), events);
        assertEinval(() -> exp.read(-1, MemorySegment.ofArray(new byte[1])));
        assertEinval(() -> exp.read(4095, MemorySegment.ofArray(new byte[2])));
        assertEinval(() -> exp.read(4096, MemorySegment.ofArray(new byte[1])));
        assertEinval(() -> exp.write(4094, MemorySegment.ofArray(new byte[4])));
        assertEinval(() -> exp.read(Long.MAX_VALUE, MemorySegment.ofArray(new byte[4])));
        assertEinval(() -> conv.read(256, MemorySegment.ofArray(new byte[1])));
        assertEinval(() -> conv.write(0xfc, MemorySegment.ofArray(new byte[8])));
        assertThat(read(exp, 4095, 1)).isEqualTo("00");
        assertThat(read(conv, 0, 256)).startsWith("f4 1a");
    }

    static void assertEinval(org.assertj.core.api.ThrowableAssert.ThrowingCallable call) {
        assertThatThrownBy(call).isInstanceOfSatisfying(VfioUserException.class,
                e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
    }

    @Test
    void specRejectsImpossibleLayouts() {
        BarLayout mem64 = new BarLayout(io.vfu.server.Bar.Kind.MEMORY64, false, 0x1000);
        assertThatThrownBy(() -> new ConfigSpaceSpec(IDENTITY, new BarLayout[] {null, null, null, null, null, mem64},
                0, 0, List.of(), List.of())).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new ConfigSpaceSpec(IDENTITY, new BarLayout[] {mem64, mem64, null, null, null, null},
                0, 0, List.of(), List.of())).isInstanceOf(IllegalArgumentException.class);
        // MSI-X table in an unused BAR
        ConfigSpaceSpec noBar = new ConfigSpaceSpec(IDENTITY, new BarLayout[6], 0, 0,
                List.of(new Capability.Msix(4, 0, 0, 0, 0x100)), List.of());
        assertThatThrownBy(() -> new ConfigSpace(noBar, null)).isInstanceOf(IllegalArgumentException.class);
        // table and PBA overlapping
        BarLayout[] bars = {new BarLayout(io.vfu.server.Bar.Kind.MEMORY32, false, 0x1000), null, null, null, null, null};
        ConfigSpaceSpec overlap = new ConfigSpaceSpec(IDENTITY, bars, 0, 0,
                List.of(new Capability.Msix(4, 0, 0, 0, 0x38)), List.of());
        assertThatThrownBy(() -> new ConfigSpace(overlap, null)).isInstanceOf(IllegalArgumentException.class);
        // two MSI capabilities
        ConfigSpaceSpec twice = new ConfigSpaceSpec(IDENTITY, new BarLayout[6], 0, 0,
                List.of(new Capability.Msi(1, false, false), new Capability.Msi(1, false, false)), List.of());
        assertThatThrownBy(() -> new ConfigSpace(twice, null)).isInstanceOf(IllegalArgumentException.class);
        // standard capabilities beyond 0xff
        byte[] big = new byte[250];
        ConfigSpaceSpec tooBig = new ConfigSpaceSpec(IDENTITY, new BarLayout[6], 0, 0,
                List.of(new Capability.VendorSpecific(big), new Capability.VendorSpecific(big)), List.of());
        assertThatThrownBy(() -> new ConfigSpace(tooBig, null)).isInstanceOf(IllegalArgumentException.class);
    }
}
