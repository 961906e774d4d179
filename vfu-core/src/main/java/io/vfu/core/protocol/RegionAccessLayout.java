package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.putU64;
import static io.vfu.core.protocol.Wire.u32;
import static io.vfu.core.protocol.Wire.u64;

import java.lang.foreign.MemorySegment;

/**
 * The 16-byte header of REGION_READ and REGION_WRITE (commands 9 and 10, protocol reference §9.1), shared
 * by all four messages: {@link RegionReadRequest} and {@link RegionWriteReply} are the header alone,
 * {@link RegionReadReply} and {@link RegionWriteRequest} the header followed by {@code count} data bytes.
 *
 * <pre>
 *  0                               8               12              16
 * +-------------------------------+---------------+---------------+---------------...
 * |        offset (u64)           |  region (u32) |  count (u32)  | data (count bytes, if any)
 * +-------------------------------+---------------+---------------+---------------...
 * </pre>
 *
 * <p>The decoders check what the header itself can tell: its size (exactly 16), that the data, if any,
 * is {@code count} bytes, and that {@code offset + count} does not overflow u64 (all EINVAL).
 * Package-private: the records are the API.
 */
final class RegionAccessLayout {
    static final int OFFSET_OFFSET = 0;
    static final int REGION_OFFSET = 8;
    static final int COUNT_OFFSET = 12;
    /** Size of the header (the part before the data). */
    static final int SIZE = 16;

    private RegionAccessLayout() {
    }

    /** Builds a header-only record. */
    @FunctionalInterface
    interface Factory<T> {
        T of(long offset, long region, long count);
    }

    /** Builds a record with data. */
    @FunctionalInterface
    interface DataFactory<T> {
        T of(long offset, long region, long count, MemorySegment data);
    }

    /** For record constructors: region and count are u32 (IllegalArgumentException otherwise). */
    static void checkComponents(long region, long count) {
        Fields.requireU32(region, "region");
        Fields.requireU32(count, "count");
    }

    /** For record constructors with data: as {@link #checkComponents(long, long)}, and count = data length. */
    static void checkComponents(long region, long count, MemorySegment data) {
        checkComponents(region, count);
        DataTail.requireLength(data, count, "count");
    }

    static void encode(MemorySegment dst, long offset, long region, long count) {
        putU64(dst, OFFSET_OFFSET, offset);
        putU32(dst, REGION_OFFSET, region);
        putU32(dst, COUNT_OFFSET, count);
    }

    /**
     * Decodes a header-only message.
     *
     * @param what the message name for errors, e.g. {@code "REGION_READ"}
     * @throws VfioUserException EINVAL if the payload is not 16 bytes or offset + count overflows u64
     */
    static <T> T decode(MemorySegment payload, String what, Factory<T> factory) {
        Wire.requireExactly(payload, SIZE, what);
        long offset = u64(payload, OFFSET_OFFSET);
        long count = u32(payload, COUNT_OFFSET);
        Fields.requireNoOverflow(offset, count, what, "offset");
        return factory.of(offset, u32(payload, REGION_OFFSET), count);
    }

    /**
     * Checks a header-only payload as {@link #decode(MemorySegment, String, Factory)} does, without a record.
     *
     * @throws VfioUserException EINVAL as that decoder
     */
    static void check(MemorySegment payload, String what) {
        Wire.requireExactly(payload, SIZE, what);
        Fields.requireNoOverflow(u64(payload, OFFSET_OFFSET), u32(payload, COUNT_OFFSET), what, "offset");
    }

    /**
     * Checks a header-plus-data payload as {@link #decode(MemorySegment, MemorySegment, String, DataFactory)}
     * does on its split halves, without a record or a slice.
     *
     * @throws VfioUserException EINVAL as that decoder
     */
    static void checkWithData(MemorySegment payload, String what) {
        Wire.requireAtLeast(payload, SIZE, what);
        long count = u32(payload, COUNT_OFFSET);
        if (count != payload.byteSize() - SIZE) {
            Fields.requireDataLength(payload.asSlice(SIZE), count, what); // throws with the details
        }
        Fields.requireNoOverflow(u64(payload, OFFSET_OFFSET), count, what, "offset");
    }

    /**
     * Decodes a message whose header and data were received into separate segments.
     *
     * @param what the message name for errors, e.g. {@code "REGION_WRITE"}
     * @throws VfioUserException EINVAL if {@code fixed} is not 16 bytes, {@code count} differs from the
     *                           data length, or offset + count overflows u64
     */
    static <T> T decode(MemorySegment fixed, MemorySegment data, String what, DataFactory<T> factory) {
        Wire.requireExactly(fixed, SIZE, what);
        long offset = u64(fixed, OFFSET_OFFSET);
        long count = u32(fixed, COUNT_OFFSET);
        Fields.requireDataLength(data, count, what);
        Fields.requireNoOverflow(offset, count, what, "offset");
        return factory.of(offset, u32(fixed, REGION_OFFSET), count, data);
    }
}
