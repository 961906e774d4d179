package io.vfu.server.pci;

import static io.vfu.server.pci.ConfigSpaceTest.assertEinval;
import static io.vfu.server.pci.Specs.*;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Migration state (save/restore) and reset to power-on values. */
class SaveRestoreResetTest {
    private final Events events = new Events();

    /** Programs a bit of everything: BARs, ROM, command, PM, MSI, MSI-X enable and table, Device Control. */
    private static void program(ConfigSpace cs) {
        write32(cs, 0x10, 0xfebf_0000L);
        write32(cs, 0x14, 0xc000L);
        write32(cs, 0x18, 0);
        write32(cs, 0x1c, 0x4L);
        write32(cs, 0x20, 0xfeb0_0000L);
        write32(cs, 0x30, 0xfea0_0001L);
        write(cs, 0x0c, "10");
        write(cs, 0x3c, "0b");
        write16(cs, 0x04, 0x0406);
        write16(cs, 0x48 + 2, 0x0011);                 // MSI enable, 2 vectors
        write32(cs, 0x48 + 4, 0xfee0_0000L);
        write32(cs, 0x48 + 12, 0x4000);
        write32(cs, 0x48 + 16, 0x2);                    // mask vector 1
        write16(cs, 0x60 + 2, 0xc000);                  // MSI-X enable + function mask
        write16(cs, 0x6c + 8, 0x2030);                  // MPS 256
        cs.signalStatus(0x2000);
        MsixTable t = cs.msixTable();
        t.write(4, 0x50, hex("00 50 e0 fe  00 00 00 00"));
        t.write(4, 0x58, hex("05 00 00 00  00 00 00 00"));  // vector 5 unmasked
    }

    @Test
    void saveLayoutAndExactRoundTrip() {
        ConfigSpace a = new ConfigSpace(full(), null);
        program(a);
        byte[] state = a.save();
        assertThat(state).hasSize(24 + 4096 + 8 * 16);
        assertThat(Specs.norm(java.util.HexFormat.of().formatHex(state, 0, 24))).isEqualTo(norm("""
                56 46 55 50 43 49 43 53  01 00 00 00  00 10 00 00  08 00 00 00  00 00 00 00"""));

        ConfigSpace b = new ConfigSpace(full(), events);
        b.restore(state);
        assertThat(b.save()).isEqualTo(state);
        assertThat(read(b, 0, 4096)).isEqualTo(read(a, 0, 4096));
        assertThat(b.barAddress(0)).isEqualTo(0xfebf_0000L);
        assertThat(b.barAddress(2)).isEqualTo(0x4_0000_0000L);
        assertThat(b.msixTable().address(5)).isEqualTo(0xfee0_5000L);
        assertThat(b.msixTable().data(5)).isEqualTo(5);
        assertThat(b.status()).isEqualTo(0x2010);

        List<String> expected = new ArrayList<>(List.of("command 0000->0406", "power 0->0", "msi true 2",
                "msiMask 0 false", "msiMask 1 true", "msiMask 2 false", "msiMask 3 false", "msix true true"));
        for (int v = 0; v < 8; v++) {
            expected.add("msixMask " + v + " " + (v != 5));
        }
        assertThat(events.take()).containsExactlyElementsOf(expected);
    }

    @Test
    void restoreRejectsMalformedState() {
        ConfigSpace a = new ConfigSpace(full(), null);
        program(a);
        byte[] good = a.save();
        ConfigSpace b = new ConfigSpace(full(), events);
        byte[] before = b.save();

        assertEinval(() -> b.restore(new byte[0]));
        assertEinval(() -> b.restore(java.util.Arrays.copyOf(good, good.length - 1)));
        assertEinval(() -> b.restore(java.util.Arrays.copyOf(good, good.length + 1)));
        assertEinval(() -> b.restore(patched(good, 0, 0x55)));           // marker
        assertEinval(() -> b.restore(patched(good, 8, 2)));              // version
        assertEinval(() -> b.restore(patched(good, 13, 0x01)));          // size 256
        assertEinval(() -> b.restore(patched(good, 16, 7)));             // vector count
        assertEinval(() -> b.restore(patched(good, 24 + 0x00, 0xf5)));   // vendor id (read-only)
        assertEinval(() -> b.restore(patched(good, 24 + 0x10, 0x01)));   // BAR0 type bit
        assertEinval(() -> b.restore(patched(good, 24 + 0x40 + 4, 0x09))); // PM state D1 unsupported
        assertEinval(() -> b.restore(patched(good, 24 + 0x48 + 2, 0xb5))); // MSI MME 3 > MMC 2
        assertEinval(() -> b.restore(patched(good, 24 + 0x6c + 9, 0xa0))); // FLR bit set
        assertEinval(() -> b.restore(patched(good, 24 + 4096 + 12, 0x03))); // MSI-X reserved control bit
        assertEinval(() -> new ConfigSpace(conventional(), null).restore(good));
        assertThat(b.save()).isEqualTo(before);
        assertThat(events.take()).isEmpty();

        // Dynamic and writable bits may differ: interrupt status, W1C status bits.
        b.restore(patched(good, 24 + 0x06, 0x18));
        assertThat(b.status()).isEqualTo(0x2018);
    }

    private static byte[] patched(byte[] state, int offset, int value) {
        byte[] copy = state.clone();
        copy[offset] = (byte) value;
        return copy;
    }

    @Test
    void resetReturnsToPowerOnValues() {
        ConfigSpace fresh = new ConfigSpace(full(), null);
        ConfigSpace cs = new ConfigSpace(full(), events);
        program(cs);
        write16(cs, 0x40 + 4, 0x0003);
        events.take();
        cs.reset();
        assertThat(read(cs, 0, 4096)).isEqualTo(read(fresh, 0, 4096));
        assertThat(cs.save()).isEqualTo(fresh.save());
        assertThat(cs.barAddress(0)).isZero();
        assertThat(cs.command()).isZero();
        assertThat(cs.msiEnabled()).isFalse();
        assertThat(cs.msixTable().enabled()).isFalse();
        assertThat(cs.msixTable().vectorMasked(5)).isTrue();
        assertThat(cs.msixTable().address(5)).isZero();
        assertThat(events.take()).containsExactly("command 0406->0000", "power 3->0", "msi false 1",
                "msiMask 1 false", "msix false false", "msixMask 5 true");
        cs.reset();
        assertThat(events.take()).isEmpty();
    }
}
