package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * REGION_READ reply (command 9, protocol reference §9.1): the request's 16 bytes echoed, with
 * {@code count} = bytes read, followed by the data.
 *
 * <pre>
 *  0                               8               12              16
 * +-------------------------------+---------------+---------------+---------------...
 * |        offset (u64)           |  region (u32) |  count (u32)  | data (count bytes)
 * +-------------------------------+---------------+---------------+---------------...
 * </pre>
 *
 * <p>The decoder checks internal consistency only ({@code count} equals the data length, no u64
 * overflow). Whether {@code count} may be smaller than requested is the client's decision: QEMU's client
 * accepts a short read, libvfio-user's never sends one.
 *
 * <p>{@link #data()} is a slice of the decoded input (no copy): valid as long as the input segment.
 * Records compare data by content.
 *
 * <p>Encoding and decoding checks live in the package-private {@code RegionAccessLayout}, shared by the four
 * REGION_READ/WRITE messages.
 *
 * @param offset echo of the request's offset
 * @param region echo of the request's region index (u32)
 * @param count  bytes read (u32) = {@code data.byteSize()}
 * @param data   the bytes read
 */
public record RegionReadReply(long offset, long region, long count, MemorySegment data) implements Reply {
    /** Size of the part before the data. */
    public static final int FIXED_SIZE = RegionAccessLayout.SIZE;

    public RegionReadReply {
        RegionAccessLayout.checkComponents(region, count, data);
    }

    /** A reply whose count is the data length. */
    public RegionReadReply(long offset, long region, MemorySegment data) {
        this(offset, region, data.byteSize(), data);
    }

    @Override
    public Command command() {
        return Command.REGION_READ;
    }

    @Override
    public int fixedSize() {
        return FIXED_SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        RegionAccessLayout.encode(dst, offset, region, count);
    }

    /** @throws VfioUserException EINVAL if shorter than 16 bytes or inconsistent (see {@link #decode(MemorySegment, MemorySegment)}) */
    public static RegionReadReply decode(MemorySegment payload) {
        return DataTail.split(payload, FIXED_SIZE, "REGION_READ reply", RegionReadReply::decode);
    }

    /**
     * Checks a whole reply payload exactly as {@link #decode(MemorySegment)} does, without creating a record or
     * a slice (the register-access hot path); read the fields with {@link RegionAccess}; the data is the
     * {@code count} bytes at {@link #FIXED_SIZE}.
     *
     * @throws VfioUserException as {@link #decode(MemorySegment)}
     */
    public static void check(MemorySegment payload) {
        RegionAccessLayout.checkWithData(payload, "REGION_READ reply");
    }

    /**
     * Decodes a reply whose fixed part and data were received into separate segments.
     *
     * @throws VfioUserException EINVAL if {@code fixed} is not 16 bytes, {@code count} differs from the
     *                           data length, or offset + count overflows u64
     */
    public static RegionReadReply decode(MemorySegment fixed, MemorySegment data) {
        return RegionAccessLayout.decode(fixed, data, "REGION_READ reply", RegionReadReply::new);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RegionReadReply r && r.offset == offset && r.region == region && r.count == count
                && Fields.sameBytes(r.data, data);
    }

    @Override
    public int hashCode() {
        return DataTail.hash(offset, region, count);
    }
}
