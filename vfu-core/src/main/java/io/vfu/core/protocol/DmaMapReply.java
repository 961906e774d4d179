package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/** DMA_MAP reply (command 2, protocol reference §7.1): header only, no payload. */
public record DmaMapReply() implements Reply {
    @Override
    public Command command() {
        return Command.DMA_MAP;
    }

    @Override
    public int fixedSize() {
        return 0;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
    }

    /** @throws VfioUserException EINVAL if the payload is not empty */
    public static DmaMapReply decode(MemorySegment payload) {
        Wire.requireExactly(payload, 0, "DMA_MAP reply");
        return new DmaMapReply();
    }
}
