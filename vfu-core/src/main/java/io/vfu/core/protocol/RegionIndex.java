package io.vfu.core.protocol;

/**
 * PCI region indexes (protocol reference §8.2): BAR0–BAR5, expansion ROM, config space, VGA. Indexes
 * ≥ {@link #PCI_NUM_REGIONS} are device specific and carry a {@link RegionCapability.RegionType}.
 */
public final class RegionIndex {
    public static final int BAR0 = 0;
    public static final int BAR1 = 1;
    public static final int BAR2 = 2;
    public static final int BAR3 = 3;
    public static final int BAR4 = 4;
    public static final int BAR5 = 5;
    /** Expansion ROM (read-only). */
    public static final int ROM = 6;
    /** PCI configuration space: 256 or 4096 bytes, never mmappable. */
    public static final int CONFIG = 7;
    /** Legacy VGA ranges. */
    public static final int VGA = 8;
    /** The minimum {@code num_regions} of a PCI device. */
    public static final int PCI_NUM_REGIONS = 9;

    private RegionIndex() {
    }

    /** The BAR index {@code n} (0–5). */
    public static int bar(int n) {
        if (n < 0 || n > 5) {
            throw new IllegalArgumentException("BAR " + n);
        }
        return n;
    }

    /** The spec name of an index, e.g. {@code "BAR1"}, {@code "CONFIG"}, or {@code "#n"} for others. */
    public static String name(long index) {
        if (index >= BAR0 && index <= BAR5) {
            return "BAR" + index;
        }
        return switch ((int) Math.min(index, Integer.MAX_VALUE)) {
            case ROM -> "ROM";
            case CONFIG -> "CONFIG";
            case VGA -> "VGA";
            default -> "#" + index;
        };
    }
}
