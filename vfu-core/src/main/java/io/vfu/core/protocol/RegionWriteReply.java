package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.putU64;
import static io.vfu.core.protocol.Wire.u32;
import static io.vfu.core.protocol.Wire.u64;

import java.lang.foreign.MemorySegment;

/**
 * REGION_WRITE reply (command 10, protocol reference §9.1): the request's 16 bytes echoed, with
 * {@code count} = bytes written; no data.
 *
 * <pre>
 *  0                               8               12              16
 * +-------------------------------+---------------+---------------+
 * |        offset (u64)           |  region (u32) |  count (u32)  |
 * +-------------------------------+---------------+---------------+
 * </pre>
 *
 * @param offset echo of the request's offset
 * @param region echo of the request's region index (u32)
 * @param count  bytes written (u32)
 */
public record RegionWriteReply(long offset, long region, long count) implements Reply {
    public static final int SIZE = 16;

    public RegionWriteReply {
        Fields.requireU32(region, "region");
        Fields.requireU32(count, "count");
    }

    @Override
    public Command command() {
        return Command.REGION_WRITE;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        putU64(dst, 0, offset);
        putU32(dst, 8, region);
        putU32(dst, 12, count);
    }

    /** @throws VfioUserException EINVAL if the payload is not 16 bytes or offset + count overflows u64 */
    public static RegionWriteReply decode(MemorySegment payload) {
        Wire.requireExactly(payload, SIZE, "REGION_WRITE reply");
        long offset = u64(payload, 0);
        long count = u32(payload, 12);
        Fields.requireNoOverflow(offset, count, "REGION_WRITE reply: offset");
        return new RegionWriteReply(offset, u32(payload, 8), count);
    }
}
