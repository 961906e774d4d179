package io.vfu.core.protocol;

import static io.vfu.core.protocol.DeviceFeature.GET;
import static io.vfu.core.protocol.DeviceFeature.INDEX_MASK;
import static io.vfu.core.protocol.DeviceFeature.PROBE;
import static io.vfu.core.protocol.DeviceFeature.SET;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * DEVICE_FEATURE request (command 16, protocol reference §10, §11.4): the kernel's
 * {@code VFIO_DEVICE_FEATURE} ioctl with all data inline.
 *
 * <pre>
 *  0               4               8
 * +---------------+---------------+-----------------...
 * |  argsz (u32)  |  flags (u32)  | feature data (FeaturePayload)
 * +---------------+---------------+-----------------...
 * flags: bits 0-15 feature index, bit 16 GET, bit 17 SET, bit 18 PROBE, bits 19-31 undefined.
 * </pre>
 *
 * <p>Decoding rules (all EINVAL, as libvfio-user answers them):
 * <ul>
 * <li>payload shorter than 8 bytes;</li>
 * <li>flags: any of bits 19–31 set, no operation bit, GET and SET together without PROBE;</li>
 * <li>a known feature ({@link DeviceFeature#isKnown}) named with an operation it does not define
 *     (e.g. SET MIGRATION) — also for PROBE, whose answer "not supported" is exactly EINVAL;</li>
 * <li>SET or PROBE with {@code argsz} below the request payload length (their reply echoes the
 *     request); GET of a known feature with {@code argsz < 8 + reply data} (libvfio-user sends no
 *     partial GET reply and no size hint, so there is no "too small" retry dance here);</li>
 * <li>malformed feature data (see each {@link FeaturePayload} record).</li>
 * </ul>
 *
 * <p>Feature data by operation: SET carries the typed input and must have exactly its size
 * ({@link FeaturePayload.MigDeviceState}, {@link FeaturePayload.DmaLoggingControl}, {@link FeaturePayload#EMPTY}
 * for DMA_LOGGING_STOP). GET carries no input except DMA_LOGGING_REPORT's
 * {@link FeaturePayload.DmaLoggingReportQuery}; bytes after the input are ignored, because kernel-style
 * callers send the whole {@code argsz} buffer including room for the answer. PROBE data is kept as
 * {@link FeaturePayload.Raw} (or EMPTY) for the echo. <b>Unknown feature indexes</b> are not rejected here:
 * their data is kept as {@link FeaturePayload.Raw} and no GET argsz rule is applied, so the server decides
 * the errno (libvfio-user: EINVAL; the kernel: ENOTTY).
 *
 * <p>The header's encoding, the flag rules and the request-data decoding shared by both directions live
 * in the package-private {@code DeviceFeatureLayout}.
 *
 * @param argsz       the largest reply payload the client accepts (u32)
 * @param flags       feature index | operation bits
 * @param featureData the data after the 8-byte header
 */
public record DeviceFeatureRequest(long argsz, int flags, FeaturePayload featureData) implements Request {
    /** Size of {@code argsz} + {@code flags}. */
    public static final int HEADER_SIZE = DeviceFeatureLayout.HEADER_SIZE;

    public DeviceFeatureRequest {
        Fields.requireU32(argsz, "argsz");
        Objects.requireNonNull(featureData, "featureData");
    }

    /**
     * GET of a fixed-size known feature (MIGRATION, MIG_DEVICE_STATE, MIG_DATA_SIZE, VFU_PRECOPY_INFO),
     * argsz = 8 + its reply data size.
     */
    public static DeviceFeatureRequest get(int feature) {
        int size = DeviceFeature.getReplyDataSize(feature);
        if (size < 0) {
            throw new IllegalArgumentException("no fixed-size GET for feature " + DeviceFeature.name(feature));
        }
        return new DeviceFeatureRequest(HEADER_SIZE + size, feature | GET, FeaturePayload.EMPTY);
    }

    /** GET DMA_LOGGING_REPORT for a range, argsz = 8 + 24 + bitmap size. */
    public static DeviceFeatureRequest report(FeaturePayload.DmaLoggingReportQuery query) {
        long argsz = HEADER_SIZE + FeaturePayload.DmaLoggingReportQuery.SIZE + query.bitmapSize();
        if (argsz > Fields.U32_MAX) {
            throw new IllegalArgumentException("DMA_LOGGING_REPORT: bitmap of " + query.bitmapSize()
                    + " bytes does not fit a u32 argsz; report a smaller range");
        }
        return new DeviceFeatureRequest(argsz, DeviceFeature.DMA_LOGGING_REPORT | GET, query);
    }

    /** SET of a feature, argsz = the request payload length (the echo's size). */
    public static DeviceFeatureRequest set(int feature, FeaturePayload data) {
        return new DeviceFeatureRequest(HEADER_SIZE + data.byteSize(), feature | SET, data);
    }

    /** PROBE whether {@code ops} (GET and/or SET, or 0) are supported for {@code feature}; argsz 8. */
    public static DeviceFeatureRequest probe(int feature, int ops) {
        return new DeviceFeatureRequest(HEADER_SIZE, feature | PROBE | (ops & (GET | SET)), FeaturePayload.EMPTY);
    }

    /** The feature index (flags bits 0–15). */
    public int feature() {
        return flags & INDEX_MASK;
    }

    public boolean isGet() {
        return (flags & GET) != 0;
    }

    public boolean isSet() {
        return (flags & SET) != 0;
    }

    public boolean isProbe() {
        return (flags & PROBE) != 0;
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
    public static DeviceFeatureRequest decode(MemorySegment payload) {
        DeviceFeatureLayout.Fixed fixed = DeviceFeatureLayout.decode(payload, "DEVICE_FEATURE");
        long argsz = fixed.argsz();
        int flags = fixed.flags();
        String what = fixed.what();
        int feature = flags & INDEX_MASK;
        FeaturePayload data = DeviceFeatureLayout.decodeRequestData(flags, payload.asSlice(HEADER_SIZE), what);
        if ((flags & (SET | PROBE)) != 0) {
            if (argsz < payload.byteSize()) {
                throw VfioUserException.einval(what + ": argsz " + argsz + " < request size " + payload.byteSize());
            }
        } else if (DeviceFeature.isKnown(feature)) {
            long needed = HEADER_SIZE + (data instanceof FeaturePayload.DmaLoggingReportQuery q
                    ? FeaturePayload.DmaLoggingReportQuery.SIZE + q.bitmapSize()
                    : DeviceFeature.getReplyDataSize(feature));
            if (argsz < needed) {
                throw VfioUserException.einval(what + ": argsz " + argsz + " < reply size " + needed);
            }
        }
        return new DeviceFeatureRequest(argsz, flags, data);
    }
}
