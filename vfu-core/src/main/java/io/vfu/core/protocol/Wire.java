package io.vfu.core.protocol;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Little-endian, unaligned value layouts and the bounds checks every decoder shares (protocol
 * reference §1: all structs are packed, all integers little-endian).
 */
public final class Wire {
    public static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;
    public static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** An empty segment for messages without a data tail. */
    public static final MemorySegment EMPTY = MemorySegment.ofArray(new byte[0]);

    private Wire() {
    }

    public static int u16(MemorySegment s, long offset) {
        return Short.toUnsignedInt(s.get(U16, offset));
    }

    /** A u32 field widened to an unsigned {@code long}. */
    public static long u32(MemorySegment s, long offset) {
        return Integer.toUnsignedLong(s.get(U32, offset));
    }

    /** A u32 field as the raw {@code int} bits (for flags and small counts checked by the caller). */
    public static int i32(MemorySegment s, long offset) {
        return s.get(U32, offset);
    }

    public static long u64(MemorySegment s, long offset) {
        return s.get(U64, offset);
    }

    public static void putU16(MemorySegment s, long offset, int value) {
        s.set(U16, offset, (short) value);
    }

    public static void putU32(MemorySegment s, long offset, long value) {
        s.set(U32, offset, (int) value);
    }

    public static void putU64(MemorySegment s, long offset, long value) {
        s.set(U64, offset, value);
    }

    /**
     * Fails with EINVAL unless the payload holds at least {@code min} bytes.
     *
     * @param what the message name for the error text, e.g. {@code "DMA_MAP"}
     */
    public static void requireAtLeast(MemorySegment payload, long min, String what) {
        if (payload.byteSize() < min) {
            throw new VfioUserException(Errno.EINVAL,
                    what + ": payload " + payload.byteSize() + " bytes, need at least " + min);
        }
    }

    /** Fails with EINVAL unless the payload holds exactly {@code size} bytes. */
    public static void requireExactly(MemorySegment payload, long size, String what) {
        if (payload.byteSize() != size) {
            throw new VfioUserException(Errno.EINVAL,
                    what + ": payload " + payload.byteSize() + " bytes, expected " + size);
        }
    }

    /** Hex text for error messages. */
    public static String hex(long value) {
        return "0x" + Long.toHexString(value);
    }
}
