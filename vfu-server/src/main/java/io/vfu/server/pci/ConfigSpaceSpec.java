package io.vfu.server.pci;

import io.vfu.server.Bar;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Everything {@link ConfigSpace} is built from.
 *
 * @param identity      ids, class and revision
 * @param bars          six entries, {@code null} for an unused BAR; a 64-bit BAR's upper half is {@code null}
 * @param romSize       expansion ROM size (power of two in 2 KiB .. 2 GiB), 0 for none
 * @param interruptPin  0 none, 1 INTA# … 4 INTD#
 * @param capabilities  standard capabilities, laid out from 0x40 in this order
 * @param extended      extended capabilities, laid out from 0x100 (needs PCI Express)
 */
public record ConfigSpaceSpec(PciIdentity identity, BarLayout[] bars, long romSize, int interruptPin,
                              List<Capability> capabilities, List<ExtendedCapability> extended) {
    public ConfigSpaceSpec {
        Objects.requireNonNull(identity);
        if (bars.length != 6) {
            throw new IllegalArgumentException("six BAR slots");
        }
        bars = bars.clone();
        for (int i = 0; i < 6; i++) {
            if (bars[i] != null && bars[i].kind() == Bar.Kind.MEMORY64) {
                if (i == 5 || bars[i + 1] != null) {
                    throw new IllegalArgumentException("64-bit BAR " + i + " needs BAR " + (i + 1) + " free");
                }
            }
        }
        capabilities = List.copyOf(capabilities);
        extended = List.copyOf(extended);
        if (romSize != 0 && (romSize < 2048 || romSize > 0x8000_0000L || Long.bitCount(romSize) != 1)) {
            throw new IllegalArgumentException("ROM size must be a power of two in 2 KiB .. 2 GiB");
        }
        if (interruptPin < 0 || interruptPin > 4) {
            throw new IllegalArgumentException("interrupt pin 0..4");
        }
        if (!extended.isEmpty() && !express(capabilities)) {
            throw new IllegalArgumentException("extended capabilities need a PCI Express capability");
        }
    }

    @Override
    public BarLayout[] bars() {
        return bars.clone();
    }

    /** True when a PCI Express capability is present: config space is then 4096 bytes. */
    public boolean express() {
        return express(capabilities);
    }

    /** 4096 for PCI Express devices, else 256. */
    public int size() {
        return express() ? 4096 : 256;
    }

    private static boolean express(List<Capability> caps) {
        return caps.stream().anyMatch(c -> c instanceof Capability.PciExpress);
    }

    @Override
    public String toString() {
        return "ConfigSpaceSpec[" + identity + ", bars=" + Arrays.toString(bars) + ", rom=" + romSize
                + ", pin=" + interruptPin + ", caps=" + capabilities + ", ext=" + extended + "]";
    }
}
