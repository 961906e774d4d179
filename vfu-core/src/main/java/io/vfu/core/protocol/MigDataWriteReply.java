package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * MIG_DATA_WRITE reply (command 18, protocol reference §11.6): header only, no payload.
 *
 * <p>The decoder requires an empty payload. (The libvfio-user sample client would also accept 8 bytes,
 * but no server sends them.)
 */
public record MigDataWriteReply() implements Reply {
    public static final int SIZE = 0;

    @Override
    public Command command() {
        return Command.MIG_DATA_WRITE;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
    }

    /** @throws VfioUserException EINVAL if the payload is not empty */
    public static MigDataWriteReply decode(MemorySegment payload) {
        Wire.requireExactly(payload, SIZE, "MIG_DATA_WRITE reply");
        return new MigDataWriteReply();
    }
}
