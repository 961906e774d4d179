package io.vfu.core.protocol;

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
 * <p>Encoding and decoding checks live in the package-private {@code RegionAccessLayout}, shared by the four
 * REGION_READ/WRITE messages.
 *
 * @param offset echo of the request's offset
 * @param region echo of the request's region index (u32)
 * @param count  bytes written (u32)
 */
public record RegionWriteReply(long offset, long region, long count) implements Reply {
    public static final int SIZE = RegionAccessLayout.SIZE;

    public RegionWriteReply {
        RegionAccessLayout.checkComponents(region, count);
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
        RegionAccessLayout.encode(dst, offset, region, count);
    }

    /** @throws VfioUserException EINVAL if the payload is not 16 bytes or offset + count overflows u64 */
    public static RegionWriteReply decode(MemorySegment payload) {
        return RegionAccessLayout.decode(payload, "REGION_WRITE reply", RegionWriteReply::new);
    }
}
