package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU64;
import static io.vfu.core.protocol.Wire.u64;

import java.lang.foreign.MemorySegment;

/**
 * REGION_WRITE_MULTI reply (command 15, protocol reference §9.2).
 *
 * <pre>
 *  0                               8
 * +-------------------------------+
 * |         wr_cnt (u64)          |   number of writes completed
 * +-------------------------------+
 * </pre>
 *
 * <p>Rarely seen: QEMU always sends the request with No_reply.
 *
 * @param wrCnt writes completed (u64, unsigned)
 */
public record RegionWriteMultiReply(long wrCnt) implements Reply {
    public static final int SIZE = 8;

    @Override
    public Command command() {
        return Command.REGION_WRITE_MULTI;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        putU64(dst, 0, wrCnt);
    }

    /** @throws VfioUserException EINVAL if the payload is not 8 bytes */
    public static RegionWriteMultiReply decode(MemorySegment payload) {
        Wire.requireExactly(payload, SIZE, "REGION_WRITE_MULTI reply");
        return new RegionWriteMultiReply(u64(payload, 0));
    }
}
