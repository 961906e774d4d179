package io.vfu.core.protocol;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;

/** Checks shared by the message records of this package (package-private). */
final class Fields {
    static final long U32_MAX = 0xFFFF_FFFFL;

    private Fields() {
    }

    /** For record constructors: a u32 component kept in a {@code long} must be in 0..2³²−1. */
    static long requireU32(long value, String name) {
        if (value < 0 || value > U32_MAX) {
            throw new IllegalArgumentException(name + " is a u32: " + value);
        }
        return value;
    }

    /** True if {@code base + length} does not wrap around 2⁶⁴ (both unsigned). */
    static boolean fitsU64(long base, long length) {
        return Long.compareUnsigned(base, -1L - length) <= 0;
    }

    /**
     * Fails with EINVAL if {@code base + length} overflows u64.
     *
     * @param what command and field names for the message, e.g. {@code "REGION_READ: offset"}
     */
    static void requireNoOverflow(long base, long length, String what) {
        if (!fitsU64(base, length)) {
            throw VfioUserException.einval(what + " " + Long.toUnsignedString(base) + " + "
                    + Long.toUnsignedString(length) + " overflows u64");
        }
    }

    /**
     * As {@link #requireNoOverflow(long, long, String)} with the error text {@code what + ": " + field}, built
     * only on failure (no string per message on the hot paths).
     */
    static void requireNoOverflow(long base, long length, String what, String field) {
        if (!fitsU64(base, length)) {
            requireNoOverflow(base, length, what + ": " + field);
        }
    }

    /**
     * Fails with EINVAL if a VFIO-style {@code argsz} is below the struct size {@code min}.
     *
     * @param what the message name (and context) for the error text, e.g. {@code "DMA_MAP"}
     */
    static void requireArgszAtLeast(long argsz, long min, String what) {
        if (argsz < min) {
            throw new VfioUserException(Errno.EINVAL, what + ": argsz " + argsz + " < " + min);
        }
    }

    /** Fails with EINVAL unless {@code data} holds exactly {@code count} bytes ({@code count} unsigned). */
    static void requireDataLength(MemorySegment data, long count, String what) {
        if (data.byteSize() != count) {
            throw VfioUserException.einval(what + ": count " + Long.toUnsignedString(count) + " but "
                    + data.byteSize() + " data bytes");
        }
    }

    /** Content equality of two data tails (records compare tails by bytes, not by segment identity). */
    static boolean sameBytes(MemorySegment a, MemorySegment b) {
        return a.byteSize() == b.byteSize() && a.mismatch(b) == -1;
    }
}
