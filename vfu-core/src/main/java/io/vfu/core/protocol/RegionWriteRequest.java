package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.putU64;
import static io.vfu.core.protocol.Wire.u32;
import static io.vfu.core.protocol.Wire.u64;

import java.lang.foreign.MemorySegment;

/**
 * REGION_WRITE request (command 10, protocol reference §9.1).
 *
 * <pre>
 *  0                               8               12              16
 * +-------------------------------+---------------+---------------+---------------...
 * |        offset (u64)           |  region (u32) |  count (u32)  | data (count bytes)
 * +-------------------------------+---------------+---------------+---------------...
 * </pre>
 *
 * <p>{@code msg_size − 32} (= payload − 16) must equal {@code count}, as libvfio-user requires (EINVAL).
 * QEMU's client may send this command with No_reply ("posted writes"); that is a header matter.
 * Region index, bounds, size limits and device state are the server's checks.
 *
 * <p>{@link #data()} is a slice of the decoded input (no copy): valid as long as the input segment.
 * Records compare data by content.
 *
 * @param offset byte offset inside the region (u64)
 * @param region region index (u32)
 * @param count  bytes to write (u32) = {@code data.byteSize()}
 * @param data   the bytes to write
 */
public record RegionWriteRequest(long offset, long region, long count, MemorySegment data) implements Request {
    /** Size of the part before the data. */
    public static final int FIXED_SIZE = 16;

    public RegionWriteRequest {
        Fields.requireU32(region, "region");
        Fields.requireU32(count, "count");
        if (data.byteSize() != count) {
            throw new IllegalArgumentException("count " + count + " != data length " + data.byteSize());
        }
    }

    /** A request whose count is the data length. */
    public RegionWriteRequest(long offset, long region, MemorySegment data) {
        this(offset, region, data.byteSize(), data);
    }

    @Override
    public Command command() {
        return Command.REGION_WRITE;
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
    public static RegionWriteRequest decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, FIXED_SIZE, "REGION_WRITE");
        return decode(payload.asSlice(0, FIXED_SIZE), payload.asSlice(FIXED_SIZE));
    }

    /**
     * Decodes a request whose fixed part and data were received into separate segments.
     *
     * @throws VfioUserException EINVAL if {@code fixed} is not 16 bytes, {@code count} differs from the
     *                           data length, or offset + count overflows u64
     */
    public static RegionWriteRequest decode(MemorySegment fixed, MemorySegment data) {
        Wire.requireExactly(fixed, FIXED_SIZE, "REGION_WRITE");
        long offset = u64(fixed, 0);
        long count = u32(fixed, 12);
        Fields.requireDataLength(data, count, "REGION_WRITE");
        Fields.requireNoOverflow(offset, count, "REGION_WRITE: offset");
        return new RegionWriteRequest(offset, u32(fixed, 8), count, data);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RegionWriteRequest r && r.offset == offset && r.region == region && r.count == count
                && Fields.sameBytes(r.data, data);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(offset) * 31 + Long.hashCode(region) * 17 + Long.hashCode(count);
    }
}
