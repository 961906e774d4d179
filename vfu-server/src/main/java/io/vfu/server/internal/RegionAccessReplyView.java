package io.vfu.server.internal;

import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.RegionAccess;
import io.vfu.core.protocol.RegionReadReply;
import io.vfu.core.protocol.Reply;
import io.vfu.core.protocol.Wire;
import java.lang.foreign.MemorySegment;

/**
 * A REGION_READ or REGION_WRITE reply (§9.1: offset u64, region u32, count u32, then the data of a read),
 * encoded exactly like the {@code RegionReadReply}/{@code RegionWriteReply} records but mutable and reused by
 * its {@link Session}: the register-access hot paths allocate no reply object. Safe because a session answers
 * one command at a time and the reply is sent before the next command is handled.
 */
final class RegionAccessReplyView implements Reply {
    private final Command command;
    private long offset;
    private long region;
    private long count;
    private MemorySegment data = Wire.EMPTY;

    RegionAccessReplyView(Command command) {
        this.command = command;
    }

    /** A read's reply: count is the data length. */
    RegionAccessReplyView read(long offset, long region, MemorySegment data) {
        return set(offset, region, data.byteSize(), data);
    }

    /** A write's reply: the echo of the request's header, no data. */
    RegionAccessReplyView write(long offset, long region, long count) {
        return set(offset, region, count, Wire.EMPTY);
    }

    private RegionAccessReplyView set(long offset, long region, long count, MemorySegment data) {
        this.offset = offset;
        this.region = region;
        this.count = count;
        this.data = data;
        return this;
    }

    @Override
    public Command command() {
        return command;
    }

    @Override
    public int fixedSize() {
        return RegionReadReply.FIXED_SIZE; // = RegionWriteReply.SIZE: the shared 16-byte header
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        RegionAccess.encode(dst, offset, region, count);
    }

    @Override
    public MemorySegment data() {
        return data;
    }
}
