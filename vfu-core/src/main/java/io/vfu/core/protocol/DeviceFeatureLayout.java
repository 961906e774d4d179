package io.vfu.core.protocol;

import static io.vfu.core.protocol.DeviceFeature.GET;
import static io.vfu.core.protocol.DeviceFeature.INDEX_MASK;
import static io.vfu.core.protocol.DeviceFeature.OPS;
import static io.vfu.core.protocol.DeviceFeature.PROBE;
import static io.vfu.core.protocol.DeviceFeature.SET;
import static io.vfu.core.protocol.Wire.i32;
import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.u32;

import java.lang.foreign.MemorySegment;

/**
 * The DEVICE_FEATURE payload (command 16, protocol reference §10, §11.4), shared by
 * {@link DeviceFeatureRequest} and {@link DeviceFeatureReply}: an 8-byte {@code argsz, flags} header and the
 * feature data ({@link FeaturePayload}).
 *
 * <pre>
 *  0               4               8
 * +---------------+---------------+-----------------...
 * |  argsz (u32)  |  flags (u32)  | feature data (FeaturePayload)
 * +---------------+---------------+-----------------...
 * flags: bits 0-15 feature index, bit 16 GET, bit 17 SET, bit 18 PROBE, bits 19-31 undefined.
 * </pre>
 *
 * <p>Holds the header's encoding and the checks both directions share: the flag rules and the decoding of
 * request data (a SET/PROBE reply echoes the request). The argsz rules differ by direction and stay in the
 * records. Package-private: the records are the API.
 */
final class DeviceFeatureLayout {
    static final int ARGSZ_OFFSET = 0;
    static final int FLAGS_OFFSET = 4;
    /** Size of {@code argsz} + {@code flags}. */
    static final int HEADER_SIZE = 8;

    private DeviceFeatureLayout() {
    }

    /**
     * The decoded header.
     *
     * @param what the command name and the described flags, for error messages
     */
    record Fixed(long argsz, int flags, String what) {
    }

    /** The size of the fixed part: header plus the feature data's fixed part. */
    static int fixedSize(FeaturePayload featureData) {
        return HEADER_SIZE + featureData.fixedSize();
    }

    static void encode(MemorySegment dst, long argsz, int flags, FeaturePayload featureData) {
        putU32(dst, ARGSZ_OFFSET, argsz);
        putU32(dst, FLAGS_OFFSET, flags);
        featureData.encodeFixed(dst.asSlice(HEADER_SIZE));
    }

    /**
     * Reads the header and applies the flag rules ({@link #checkFlags}).
     *
     * @param command {@code "DEVICE_FEATURE"} or {@code "DEVICE_FEATURE reply"}
     * @throws VfioUserException EINVAL if the payload is shorter than 8 bytes or the flags are invalid
     */
    static Fixed decode(MemorySegment payload, String command) {
        Wire.requireAtLeast(payload, HEADER_SIZE, command);
        long argsz = u32(payload, ARGSZ_OFFSET);
        int flags = i32(payload, FLAGS_OFFSET);
        String what = command + " " + DeviceFeature.describe(flags);
        checkFlags(flags, what);
        return new Fixed(argsz, flags, what);
    }

    /**
     * The flag rules shared by requests and replies: no undefined bits, at least one operation, GET and
     * SET only together with PROBE, and for a known feature only operations it defines.
     */
    static void checkFlags(int flags, String what) {
        if ((flags & ~(INDEX_MASK | OPS)) != 0) {
            throw VfioUserException.einval(what + ": undefined flag bits " + Wire.hex(flags & ~(INDEX_MASK | OPS) & 0xFFFF_FFFFL));
        }
        int ops = flags & OPS;
        if (ops == 0) {
            throw VfioUserException.einval(what + ": none of GET, SET, PROBE");
        }
        if ((ops & (GET | SET)) == (GET | SET) && (ops & PROBE) == 0) {
            throw VfioUserException.einval(what + ": GET and SET without PROBE");
        }
        int supported = DeviceFeature.supportedOps(flags & INDEX_MASK);
        if (supported != 0 && (ops & ~supported) != 0) {
            throw VfioUserException.einval(what + ": operation not defined for this feature");
        }
    }

    /** The feature data of a request (and of a SET/PROBE echo), by operation and feature. */
    static FeaturePayload decodeRequestData(int flags, MemorySegment data, String what) {
        int feature = flags & INDEX_MASK;
        if ((flags & PROBE) != 0 || !DeviceFeature.isKnown(feature)) {
            return FeaturePayload.Raw.of(data);
        }
        if ((flags & SET) != 0) {
            return switch (feature) {
                case DeviceFeature.MIG_DEVICE_STATE -> FeaturePayload.MigDeviceState.decode(data, what);
                case DeviceFeature.DMA_LOGGING_START -> FeaturePayload.DmaLoggingControl.decode(data, what);
                // DMA_LOGGING_STOP, the only other SET feature, has no input. libvfio-user ignores whatever
                // follows and echoes it: its sample client sends the 16-byte START control here and expects
                // the 24-byte echo back. So any data is accepted, kept and echoed.
                default -> FeaturePayload.Raw.of(data);
            };
        }
        return feature == DeviceFeature.DMA_LOGGING_REPORT
                ? FeaturePayload.DmaLoggingReportQuery.decode(data, what)
                : FeaturePayload.EMPTY; // GET without input: extra bytes (a kernel-style output buffer) ignored
    }
}
