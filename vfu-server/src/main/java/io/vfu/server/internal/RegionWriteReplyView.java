package io.vfu.server.internal;

import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.RegionWriteReply;
import io.vfu.core.protocol.Reply;
import io.vfu.core.protocol.Wire;
import java.lang.foreign.MemorySegment;

/**
 * A reusable REGION_WRITE reply (the 16-byte echo of offset, region and count, §9.2) for the server's
 * register-write hot path: one per session, set per reply, sent before the next command is read.
 */
final class RegionWriteReplyView implements Reply {
    private long offset;
    private long region;
    private long count;

    RegionWriteReplyView set(long offset, long region, long count) {
        this.offset = offset;
        this.region = region;
        this.count = count;
        return this;
    }

    @Override
    public Command command() {
        return Command.REGION_WRITE;
    }

    @Override
    public int fixedSize() {
        return RegionWriteReply.SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        Wire.putU64(dst, 0, offset);
        Wire.putU32(dst, 8, region);
        Wire.putU32(dst, 12, count);
    }

    @Override
    public MemorySegment data() {
        return Wire.EMPTY;
    }
}
