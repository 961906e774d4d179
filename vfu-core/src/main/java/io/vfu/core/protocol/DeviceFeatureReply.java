package io.vfu.core.protocol;

import static io.vfu.core.protocol.DeviceFeature.GET;
import static io.vfu.core.protocol.DeviceFeature.INDEX_MASK;
import static io.vfu.core.protocol.DeviceFeature.PROBE;
import static io.vfu.core.protocol.DeviceFeature.SET;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * DEVICE_FEATURE reply (command 16, protocol reference §10): same layout as {@link DeviceFeatureRequest}.
 *
 * <pre>
 *  0               4               8
 * +---------------+---------------+-----------------...
 * |  argsz (u32)  |  flags (u32)  | feature data (FeaturePayload)
 * +---------------+---------------+-----------------...
 * </pre>
 *
 * <p>SET and PROBE: the request payload echoed (argsz included), so {@code argsz ≥ payload length}.
 * GET: {@code argsz} = the full reply payload size (8 + data), flags as in the request, then the data:
 * {@link FeaturePayload.MigrationFlags}, {@link FeaturePayload.MigDeviceState},
 * {@link FeaturePayload.DmaLoggingReport}, {@link FeaturePayload.MigDataSize},
 * {@link FeaturePayload.PrecopyInfo}, or {@link FeaturePayload.Raw} for an unknown index.
 *
 * <p>The decoder applies the flag rules of the request and rejects (EINVAL): a payload shorter than 8, a
 * GET reply whose argsz is not its payload size, a SET/PROBE echo whose argsz is below its payload size,
 * data of the wrong size for the feature, and a DMA_LOGGING_REPORT bitmap of the wrong length. Whether
 * the reply matches the request sent is the caller's check.
 *
 * <p>The header's encoding, the flag rules and the request-data decoding shared by both directions live
 * in the package-private {@code DeviceFeatureLayout}.
 *
 * @param argsz       see above (u32)
 * @param flags       feature index | operation bits, as in the request
 * @param featureData the data after the 8-byte header
 */
public record DeviceFeatureReply(long argsz, int flags, FeaturePayload featureData) implements Reply {
    public static final int HEADER_SIZE = DeviceFeatureRequest.HEADER_SIZE;

    public DeviceFeatureReply {
        Fields.requireU32(argsz, "argsz");
        Objects.requireNonNull(featureData, "featureData");
    }

    /** The reply to a SET or PROBE: the request echoed. */
    public static DeviceFeatureReply echo(DeviceFeatureRequest request) {
        return new DeviceFeatureReply(request.argsz(), request.flags(), request.featureData());
    }

    /** A GET reply for {@code feature} with argsz = 8 + data size. */
    public static DeviceFeatureReply get(int feature, FeaturePayload data) {
        long argsz = HEADER_SIZE + data.byteSize();
        if (argsz > Fields.U32_MAX) {
            throw new IllegalArgumentException("GET reply of " + argsz + " bytes does not fit a u32 argsz");
        }
        return new DeviceFeatureReply(argsz, (feature & INDEX_MASK) | GET, data);
    }

    /** The feature index (flags bits 0–15). */
    public int feature() {
        return flags & INDEX_MASK;
    }

    @Override
    public Command command() {
        return Command.DEVICE_FEATURE;
    }

    @Override
    public int fixedSize() {
        return DeviceFeatureLayout.fixedSize(featureData);
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        DeviceFeatureLayout.encode(dst, argsz, flags, featureData);
    }

    @Override
    public MemorySegment data() {
        return featureData.tail();
    }

    /** @throws VfioUserException EINVAL if malformed (see the class comment) */
    public static DeviceFeatureReply decode(MemorySegment payload) {
        DeviceFeatureLayout.Fixed fixed = DeviceFeatureLayout.decode(payload, "DEVICE_FEATURE reply");
        long argsz = fixed.argsz();
        int flags = fixed.flags();
        String what = fixed.what();
        MemorySegment data = payload.asSlice(HEADER_SIZE);
        if ((flags & (SET | PROBE)) != 0) {
            if (argsz < payload.byteSize()) {
                throw VfioUserException.einval(what + ": argsz " + argsz + " < payload " + payload.byteSize());
            }
            return new DeviceFeatureReply(argsz, flags, DeviceFeatureLayout.decodeRequestData(flags, data, what));
        }
        if (argsz != payload.byteSize()) {
            throw VfioUserException.einval(what + ": argsz " + argsz + " != payload " + payload.byteSize());
        }
        FeaturePayload typed = switch (flags & INDEX_MASK) {
            case DeviceFeature.MIGRATION -> FeaturePayload.MigrationFlags.decode(data, what);
            case DeviceFeature.MIG_DEVICE_STATE -> FeaturePayload.MigDeviceState.decode(data, what);
            case DeviceFeature.DMA_LOGGING_REPORT -> FeaturePayload.DmaLoggingReport.decode(data, what);
            case DeviceFeature.MIG_DATA_SIZE -> FeaturePayload.MigDataSize.decode(data, what);
            case DeviceFeature.VFU_PRECOPY_INFO -> FeaturePayload.PrecopyInfo.decode(data, what);
            default -> FeaturePayload.Raw.of(data);
        };
        return new DeviceFeatureReply(argsz, flags, typed);
    }
}
