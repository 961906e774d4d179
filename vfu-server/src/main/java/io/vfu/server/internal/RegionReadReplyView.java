package io.vfu.server.internal;

import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.RegionReadReply;
import io.vfu.core.protocol.Reply;
import io.vfu.core.protocol.Wire;
import java.lang.foreign.MemorySegment;

/**
 * The REGION_READ reply, encoded exactly like {@link RegionReadReply} (offset u64, region u32, count u32,
 * data), but mutable and reused by its {@link Session} for every REGION_READ: the register-access hot path
 * allocates no reply object. Safe because a session answers one command at a time and the reply is sent
 * before the next command is handled.
 */
final class RegionReadReplyView implements Reply {
    private long offset;
    private long region;
    private MemorySegment data = Wire.EMPTY;

    RegionReadReplyView set(long offset, long region, MemorySegment data) {
        this.offset = offset;
        this.region = region;
        this.data = data;
        return this;
    }

    @Override
    public Command command() {
        return Command.REGION_READ;
    }

    @Override
    public int fixedSize() {
        return RegionReadReply.FIXED_SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        Wire.putU64(dst, 0, offset);
        Wire.putU32(dst, 8, region);
        Wire.putU32(dst, 12, data.byteSize());
    }

    @Override
    public MemorySegment data() {
        return data;
    }
}
