package io.vfu.server.pci;

import static io.vfu.server.pci.Specs.*;
import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Capability control registers and their listener events (PCI PM 1.2, PCI 3.0 §6.8, PCIe Base §7.5.3). */
class CapabilitiesTest {
    private static final int PM = 0x40;
    private static final int MSI = 0x48;
    private static final int MSIX = 0x60;
    private static final int EXP = 0x6c;

    private final Events events = new Events();

    @Test
    void powerStateD0AndD3hot() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        write16(cs, PM + 4, 0xffff);                    // D3hot; PME_En, data select … hardwired 0
        assertThat(read16(cs, PM + 4)).isEqualTo(0x000b);
        assertThat(cs.powerState()).isEqualTo(3);
        assertThat(events.take()).containsExactly("power 0->3");
        write16(cs, PM + 4, 0x0001);                    // D1 not supported: discarded
        assertThat(read16(cs, PM + 4)).isEqualTo(0x000b);
        assertThat(events.take()).isEmpty();
        write16(cs, PM + 2, 0xffff);                    // PMC is read-only
        assertThat(read16(cs, PM + 2)).isEqualTo(0x0003);
        write16(cs, 0x04, 0x0002);
        write16(cs, PM + 4, 0x0000);                    // D0, No_Soft_Reset set: state kept
        assertThat(read16(cs, PM + 4)).isEqualTo(0x0008);
        assertThat(cs.command()).isEqualTo(0x0002);
        assertThat(events.take()).containsExactly("command 0000->0002", "power 3->0");
    }

    @Test
    void d1AndD2WhenDeclared() {
        ConfigSpace cs = new ConfigSpace(full(new Capability.PowerManagement(true, true, true)), events);
        assertThat(read16(cs, PM + 2)).isEqualTo(0x0603);   // D1 0x200, D2 0x400, version 3
        write16(cs, PM + 4, 0x0002);
        assertThat(cs.powerState()).isEqualTo(2);
    }

    @Test
    void d3hotToD0WithoutNoSoftResetResetsConfigSpace() {
        ConfigSpace cs = new ConfigSpace(full(new Capability.PowerManagement(false, false, false)), events);
        assertThat(read16(cs, PM + 4)).isZero();
        write32(cs, 0x10, 0xfebf_0000L);
        write16(cs, 0x04, 0x0006);
        write16(cs, PM + 4, 0x0003);
        events.take();
        write16(cs, PM + 4, 0x0000);
        assertThat(cs.command()).isZero();
        assertThat(read32(cs, 0x10)).isZero();
        assertThat(events.take()).containsExactly("command 0006->0000", "power 3->0");
    }

    @Test
    void msiEnableMultipleMessageAndMasks() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        write16(cs, MSI + 2, 0x0021);                   // enable, MME = 2 (4 vectors)
        assertThat(read16(cs, MSI + 2)).isEqualTo(0x01a5);
        assertThat(cs.msiEnabled()).isTrue();
        assertThat(cs.msiVectors()).isEqualTo(4);
        assertThat(events.take()).containsExactly("msi true 4");
        write16(cs, MSI + 2, 0xfffe);                   // MME 7 > MMC 2: clamped; disable
        assertThat(read16(cs, MSI + 2)).isEqualTo(0x01a4);
        assertThat(events.take()).containsExactly("msi false 4");
        write16(cs, MSI + 2, 0x0001);                   // enable with 1 vector
        assertThat(events.take()).containsExactly("msi true 1");

        write32(cs, MSI + 4, 0xfee0_1003L);             // address bits 1:0 reserved
        write32(cs, MSI + 8, 0x0000_0001L);
        write32(cs, MSI + 12, 0xffff_4321L);            // data is 16 bits
        assertThat(read(cs, MSI + 4, 12)).isEqualTo(norm("00 10 e0 fe  01 00 00 00  21 43 00 00"));
        assertThat(cs.msiAddress()).isEqualTo(0x1_fee0_1000L);
        write16(cs, MSI + 2, 0x0021);
        assertThat(cs.msiData(0)).isEqualTo(0x4320);
        assertThat(cs.msiData(3)).isEqualTo(0x4323);
        events.take();

        write32(cs, MSI + 16, 0xffff_ffffL);            // mask bits exist for 4 vectors
        assertThat(read32(cs, MSI + 16)).isEqualTo(0x0000_000fL);
        assertThat(events.take()).containsExactly("msiMask 0 true", "msiMask 1 true", "msiMask 2 true",
                "msiMask 3 true");
        write(cs, MSI + 16, "0a");
        assertThat(events.take()).containsExactly("msiMask 0 false", "msiMask 2 false");
        assertThat(cs.msiMasked(1)).isTrue();
        assertThat(cs.msiMasked(2)).isFalse();

        cs.msiPendingSource(v -> v == 0 || v == 2 || v == 5);
        assertThat(read32(cs, MSI + 20)).isEqualTo(0x0000_0005L);  // vector 5 does not exist
        write32(cs, MSI + 20, 0);                       // pending bits are read-only
        assertThat(read32(cs, MSI + 20)).isEqualTo(0x0000_0005L);
        assertThat(read(cs, MSI + 16, 8)).isEqualTo(norm("0a 00 00 00  05 00 00 00"));
        assertThat(events.take()).isEmpty();
    }

    @Test
    void msi32BitLayout() {
        ConfigSpace cs = new ConfigSpace(msi32(), events);
        // MMC 2 vectors (001b), per-vector masking, 32-bit; address 0x44, data 0x48, mask 0x4c, pending 0x50
        assertThat(read(cs, 0x40, 0x14)).isEqualTo(norm("05 00 02 01" + " 00".repeat(0x10)));
        write(cs, 0x44, "04 00 e0 fe  34 12 ff ff  ff ff ff ff  ff ff ff ff");
        assertThat(read(cs, 0x44, 16)).isEqualTo(norm("04 00 e0 fe  34 12 00 00  03 00 00 00  00 00 00 00"));
        assertThat(cs.msiAddress()).isEqualTo(0xfee0_0004L);
        assertThat(events.take()).containsExactly("msiMask 0 true", "msiMask 1 true");
    }

    @Test
    void msixEnableAndFunctionMask() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        MsixTable t = cs.msixTable();
        write16(cs, MSIX + 2, 0xffff);
        assertThat(read16(cs, MSIX + 2)).isEqualTo(0xc007);
        assertThat(t.enabled()).isTrue();
        assertThat(t.functionMasked()).isTrue();
        assertThat(events.take()).containsExactly("msix true true");
        write(cs, MSIX + 3, "80");                      // clear function mask only
        assertThat(events.take()).containsExactly("msix true false");
        write(cs, MSIX + 3, "80");
        assertThat(events.take()).isEmpty();
        write(cs, MSIX + 4, "ff ff ff ff  ff ff ff ff");  // table/PBA offset and BIR read-only
        assertThat(read(cs, MSIX + 4, 8)).isEqualTo(norm("04 00 00 00  04 20 00 00"));
        write16(cs, MSIX + 2, 0);
        assertThat(events.take()).containsExactly("msix false false");
    }

    @Test
    void expressDeviceControlAndStatus() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        write16(cs, EXP + 8, 0x7fff);
        assertThat(read16(cs, EXP + 8)).isEqualTo(0x78ff);
        write16(cs, EXP + 8, 0x0000);
        assertThat(read16(cs, EXP + 8)).isZero();
        write16(cs, EXP + 4, 0);                        // Device Capabilities read-only
        assertThat(read32(cs, EXP + 4)).isEqualTo(0x1000_8001L);
        cs.signalDeviceStatus(0xffff);
        assertThat(read16(cs, EXP + 10)).isEqualTo(0x000f);
        write16(cs, EXP + 10, 0x0005);
        assertThat(read16(cs, EXP + 10)).isEqualTo(0x000a);
        write16(cs, EXP + 0x10, 0xffff);                // Link Control
        assertThat(read16(cs, EXP + 0x10)).isEqualTo(0x00c3);
        write16(cs, EXP + 0x12, 0xffff);                // Link Status read-only
        assertThat(read16(cs, EXP + 0x12)).isEqualTo(0x0043);
        assertThat(events.take()).isEmpty();
    }

    @Test
    void initiateFunctionLevelReset() {
        ConfigSpace cs = new ConfigSpace(full(), events);
        write16(cs, 0x04, 0x0006);
        write16(cs, MSIX + 2, 0x8000);
        cs.msixTable().write(4, 0x1c, hex("00 00 00 00"));   // unmask vector 1
        write16(cs, EXP + 8, 0x0000);
        assertThat(events.take()).containsExactly("command 0000->0006", "msix true false", "msixMask 1 false");

        write(cs, EXP + 9, "80");                       // Initiate FLR
        assertThat(events.take()).containsExactly("command 0006->0000", "msix false false", "msixMask 1 true",
                "flr");
        assertThat(read16(cs, EXP + 8)).isEqualTo(0x2810);  // bit 15 reads 0, power-on defaults
        assertThat(cs.command()).isZero();
        assertThat(cs.msixTable().vectorMasked(1)).isTrue();
    }
}
