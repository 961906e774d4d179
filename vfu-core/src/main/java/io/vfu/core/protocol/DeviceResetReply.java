package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/** DEVICE_RESET reply (command 13, protocol reference §9.3): header only, no payload. */
public record DeviceResetReply() implements Reply {
    @Override
    public Command command() {
        return Command.DEVICE_RESET;
    }

    @Override
    public int fixedSize() {
        return 0;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
    }

    /** @throws VfioUserException EINVAL if the payload is not empty */
    public static DeviceResetReply decode(MemorySegment payload) {
        Wire.requireExactly(payload, 0, "DEVICE_RESET reply");
        return new DeviceResetReply();
    }
}
