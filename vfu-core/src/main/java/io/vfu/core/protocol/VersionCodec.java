package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU16;
import static io.vfu.core.protocol.Wire.u16;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/** The VERSION payload shared by {@link VersionRequest} and {@link VersionReply}. */
final class VersionCodec {
    static final int FIXED_SIZE = 4;

    private VersionCodec() {
    }

    record Decoded(int major, int minor, Optional<Capabilities> capabilities) {
    }

    static byte[] json(Optional<Capabilities> capabilities) {
        return capabilities.map(Capabilities::toJsonBytes).orElse(null);
    }

    static int size(Optional<Capabilities> capabilities) {
        byte[] json = json(capabilities);
        return json == null ? FIXED_SIZE : FIXED_SIZE + json.length + 1;
    }

    static void encode(MemorySegment dst, int major, int minor, Optional<Capabilities> capabilities) {
        putU16(dst, 0, major);
        putU16(dst, 2, minor);
        byte[] json = json(capabilities);
        if (json != null) {
            MemorySegment.copy(json, 0, dst, ValueLayout.JAVA_BYTE, FIXED_SIZE, json.length);
            dst.set(ValueLayout.JAVA_BYTE, FIXED_SIZE + json.length, (byte) 0);
        }
    }

    static Decoded decode(MemorySegment payload, String what) {
        Wire.requireAtLeast(payload, FIXED_SIZE, what);
        int major = u16(payload, 0);
        int minor = u16(payload, 2);
        long length = payload.byteSize() - FIXED_SIZE;
        if (length == 0) {
            return new Decoded(major, minor, Optional.empty());
        }
        if (length - 1 > Capabilities.MAX_JSON_LENGTH) {
            throw new VfioUserException(Errno.E2BIG,
                    what + ": JSON text of " + (length - 1) + " bytes > " + Capabilities.MAX_JSON_LENGTH);
        }
        byte[] text = payload.asSlice(FIXED_SIZE).toArray(ValueLayout.JAVA_BYTE);
        if (text[text.length - 1] != 0) {
            throw new VfioUserException(Errno.EINVAL, what + ": JSON text is not NUL-terminated");
        }
        for (int i = 0; i < text.length - 1; i++) {
            if (text[i] == 0) {
                throw new VfioUserException(Errno.EINVAL, what + ": NUL byte at JSON offset " + i + " before the end");
            }
        }
        String json;
        try {
            json = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(text, 0, text.length - 1))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new VfioUserException(Errno.EINVAL, what + ": JSON text is not valid UTF-8", e);
        }
        return new Decoded(major, minor, Optional.of(Capabilities.fromJson(json)));
    }

    static void checkU16(int major, int minor) {
        if ((major & ~0xFFFF) != 0 || (minor & ~0xFFFF) != 0) {
            throw new IllegalArgumentException("major and minor are u16: " + major + ", " + minor);
        }
    }
}
