package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.putU64;
import static io.vfu.core.protocol.Wire.u32;
import static io.vfu.core.protocol.Wire.u64;

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
 * @param offset echo of the request's offset
 * @param region echo of the request's region index (u32)
 * @param count  bytes read (u32) = {@code data.byteSize()}
 * @param data   the bytes read
 */
public record RegionReadReply(long offset, long region, long count, MemorySegment data) implements Reply {
    /** Size of the part before the data. */
    public static final int FIXED_SIZE = 16;

    public RegionReadReply {
        Fields.requireU32(region, "region");
        Fields.requireU32(count, "count");
        if (data.byteSize() != count) {
            throw new IllegalArgumentException("count " + count + " != data length " + data.byteSize());
        }
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
        putU64(dst, 0, offset);
        putU32(dst, 8, region);
        putU32(dst, 12, count);
    }

    /** @throws VfioUserException EINVAL if shorter than 16 bytes or inconsistent (see {@link #decode(MemorySegment, MemorySegment)}) */
    public static RegionReadReply decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, FIXED_SIZE, "REGION_READ reply");
        return decode(payload.asSlice(0, FIXED_SIZE), payload.asSlice(FIXED_SIZE));
    }

    /**
     * Decodes a reply whose fixed part and data were received into separate segments.
     *
     * @throws VfioUserException EINVAL if {@code fixed} is not 16 bytes, {@code count} differs from the
     *                           data length, or offset + count overflows u64
     */
    public static RegionReadReply decode(MemorySegment fixed, MemorySegment data) {
        Wire.requireExactly(fixed, FIXED_SIZE, "REGION_READ reply");
        long offset = u64(fixed, 0);
        long count = u32(fixed, 12);
        Fields.requireDataLength(data, count, "REGION_READ reply");
        Fields.requireNoOverflow(offset, count, "REGION_READ reply: offset");
        return new RegionReadReply(offset, u32(fixed, 8), count, data);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RegionReadReply r && r.offset == offset && r.region == region && r.count == count
                && Fields.sameBytes(r.data, data);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(offset) * 31 + Long.hashCode(region) * 17 + Long.hashCode(count);
    }
}
