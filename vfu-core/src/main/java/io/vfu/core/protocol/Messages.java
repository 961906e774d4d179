package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * Decodes any payload by command: the single entry point receivers use after framing (protocol
 * reference §3.3, step 4). Malformed input fails with a {@link VfioUserException}, never another exception.
 */
public final class Messages {
    private Messages() {
    }

    /** Decodes the payload of a command. */
    public static Request decodeRequest(Command command, MemorySegment payload) {
        return switch (command) {
            case DEVICE_GET_INFO -> DeviceInfoRequest.decode(payload);
            default -> throw VfioUserException.einval(command + ": not decodable yet");
        };
    }

    /** Decodes the payload of a success reply. */
    public static Reply decodeReply(Command command, MemorySegment payload) {
        return switch (command) {
            case DEVICE_GET_INFO -> DeviceInfoReply.decode(payload);
            default -> throw VfioUserException.einval(command + ": not decodable yet");
        };
    }
}
