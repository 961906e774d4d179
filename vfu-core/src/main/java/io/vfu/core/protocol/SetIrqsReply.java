package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/** DEVICE_SET_IRQS reply (command 8, protocol reference §8.6): header only, no payload. */
public record SetIrqsReply() implements Reply {
    @Override
    public Command command() {
        return Command.DEVICE_SET_IRQS;
    }

    @Override
    public int fixedSize() {
        return 0;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
    }

    /** @throws VfioUserException EINVAL if the payload is not empty */
    public static SetIrqsReply decode(MemorySegment payload) {
        Wire.requireExactly(payload, 0, "DEVICE_SET_IRQS reply");
        return new SetIrqsReply();
    }
}
