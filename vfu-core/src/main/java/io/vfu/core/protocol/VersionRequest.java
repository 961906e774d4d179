package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;
import java.util.Optional;

/**
 * VERSION request (command 1, protocol reference §5), client → server. Same layout as {@link VersionReply}.
 *
 * <pre>
 *  0        2        4
 * +--------+--------+--------------------------------------------+
 * | major  | minor  | JSON text {"capabilities":{...}} + NUL      |   JSON optional: payload may be 4 bytes
 * +--------+--------+--------------------------------------------+
 * </pre>
 *
 * <p>Decoding checks (EINVAL unless noted): payload ≥ 4; if longer, the JSON text must be at most
 * {@link Capabilities#MAX_JSON_LENGTH} bytes before the NUL (E2BIG otherwise, checked before anything
 * is parsed), end with a NUL and contain no other NUL (libvfio-user and QEMU would silently stop at the
 * first NUL; we refuse the ambiguity), be valid UTF-8 and one JSON object whose {@code capabilities},
 * if present, satisfy {@link Capabilities#fromJson}. The major version is not checked here: see
 * {@link ProtocolVersion#requireMajor}.
 *
 * @param major        major version (u16), {@link ProtocolVersion#MAJOR}
 * @param minor        minor version (u16)
 * @param capabilities the JSON; empty = no JSON text (payload of 4 bytes, every capability at its
 *                     default). Encoded as {@code {"capabilities":{...}}} + NUL.
 */
public record VersionRequest(int major, int minor, Optional<Capabilities> capabilities) implements Request {
    public static final int FIXED_SIZE = VersionCodec.FIXED_SIZE;

    public VersionRequest {
        VersionCodec.checkU16(major, minor);
    }

    public VersionRequest(int major, int minor, Capabilities capabilities) {
        this(major, minor, Optional.of(capabilities));
    }

    /** The capabilities, {@link Capabilities#NONE} when no JSON was sent. */
    public Capabilities capabilitiesOrNone() {
        return capabilities.orElse(Capabilities.NONE);
    }

    @Override
    public Command command() {
        return Command.VERSION;
    }

    @Override
    public int fixedSize() {
        return VersionCodec.size(capabilities);
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        VersionCodec.encode(dst, major, minor, capabilities);
    }

    /** See the class comment for the checks. @throws VfioUserException EINVAL or E2BIG */
    public static VersionRequest decode(MemorySegment payload) {
        VersionCodec.Decoded d = VersionCodec.decode(payload, "VERSION");
        return new VersionRequest(d.major(), d.minor(), d.capabilities());
    }
}
