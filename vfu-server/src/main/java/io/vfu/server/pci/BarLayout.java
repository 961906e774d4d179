package io.vfu.server.pci;

import io.vfu.server.Bar;

/**
 * What config space needs to know about one BAR: its decoding and its size (rounded up to a power of two,
 * at least 16 bytes for memory and 4 for I/O, as BAR sizing requires).
 *
 * @param kind         decoding type
 * @param prefetchable memory BARs only
 * @param size         the decoded size, a power of two
 */
public record BarLayout(Bar.Kind kind, boolean prefetchable, long size) {
    public BarLayout {
        if (size <= 0 || Long.bitCount(size) != 1) {
            throw new IllegalArgumentException("BAR size must be a power of two: " + size);
        }
        if (kind == Bar.Kind.MEMORY32 && size > 0x8000_0000L) {
            throw new IllegalArgumentException("32-bit BAR larger than 2 GiB");
        }
    }

    /** The layout for a BAR whose region has {@code regionSize} bytes. */
    public static BarLayout of(Bar bar) {
        long min = bar.kind() == Bar.Kind.IO ? 4 : 16;
        long size = Math.max(min, Long.highestOneBit(Math.max(1, bar.region().size())));
        if (size < bar.region().size()) {
            size <<= 1;
        }
        return new BarLayout(bar.kind(), bar.prefetchable(), size);
    }
}
