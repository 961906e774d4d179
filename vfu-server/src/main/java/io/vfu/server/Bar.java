package io.vfu.server;

import java.util.Objects;

/**
 * A Base Address Register: how it is decoded (memory 32/64-bit or I/O, prefetchable) and the region behind it.
 *
 * <p>A 64-bit BAR occupies its index and the next one (protocol reference §8.2). The size is rounded up to
 * a power of two in config space (BAR sizing needs it); the region keeps its real size.
 *
 * @param kind         decoding type
 * @param prefetchable memory BARs only
 * @param region       the region served at this BAR
 */
public record Bar(Kind kind, boolean prefetchable, Region region) {
    /** BAR decoding types. */
    public enum Kind { MEMORY32, MEMORY64, IO }

    public Bar {
        Objects.requireNonNull(kind);
        Objects.requireNonNull(region);
        if (kind == Kind.IO && prefetchable) {
            throw new IllegalArgumentException("I/O BARs are not prefetchable");
        }
    }

    public static Bar mem32(Region region) {
        return new Bar(Kind.MEMORY32, false, region);
    }

    public static Bar mem64(Region region) {
        return new Bar(Kind.MEMORY64, false, region);
    }

    public static Bar io(Region region) {
        return new Bar(Kind.IO, false, region);
    }

    public Bar asPrefetchable() {
        return new Bar(kind, true, region);
    }
}
