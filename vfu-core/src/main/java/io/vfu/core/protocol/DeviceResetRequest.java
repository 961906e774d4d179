package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * DEVICE_RESET request (command 13, protocol reference §9.3): no payload (the only header-only
 * request). Payload bytes, if any, are ignored, as libvfio-user does.
 */
public record DeviceResetRequest() implements Request {
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

    /** Never fails: the request has no fields. */
    public static DeviceResetRequest decode(MemorySegment payload) {
        return new DeviceResetRequest();
    }
}
