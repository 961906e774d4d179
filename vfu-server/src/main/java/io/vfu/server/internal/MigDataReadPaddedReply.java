package io.vfu.server.internal;

import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.MigDataReadReply;
import io.vfu.core.protocol.Reply;
import io.vfu.core.protocol.Wire;
import java.lang.foreign.MemorySegment;

/**
 * MIG_DATA_READ reply as libvfio-user sends it (protocol reference §11.5): argsz = 8 + bytes returned,
 * size = bytes returned, then the whole requested length of data (valid bytes first, zero padding after).
 * libvfio-user's sample client reads exactly 8 + requested bytes, so an unpadded reply would desynchronise it.
 *
 * <p>Mutable and reused by its {@link Session} for every MIG_DATA_READ (a session answers one command at a
 * time, and the reply is sent before the next one is handled): the hot path allocates no reply object.
 */
final class MigDataReadPaddedReply implements Reply {
    private long size;
    private MemorySegment padded;

    /**
     * @param size   valid bytes
     * @param padded a segment of the requested length whose first {@code size} bytes are the data, the rest zero
     * @return this
     */
    MigDataReadPaddedReply set(long size, MemorySegment padded) {
        this.size = size;
        this.padded = padded;
        return this;
    }

    long size() {
        return size;
    }

    @Override
    public Command command() {
        return Command.MIG_DATA_READ;
    }

    @Override
    public int fixedSize() {
        return MigDataReadReply.FIXED_SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        Wire.putU32(dst, 0, MigDataReadReply.FIXED_SIZE + size);
        Wire.putU32(dst, 4, size);
    }

    @Override
    public MemorySegment data() {
        return padded;
    }
}
