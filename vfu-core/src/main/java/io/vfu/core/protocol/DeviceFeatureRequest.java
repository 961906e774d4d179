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
 * @param argsz       the largest reply payload the client accepts (u32)
 * @param flags       feature index | operation bits
 * @param featureData the data after the 8-byte header
 */
public record DeviceFeatureRequest(long argsz, int flags, FeaturePayload featureData) implements Request {
    /** Size of {@code argsz} + {@code flags}. */
    public static final int HEADER_SIZE = 8;

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
        return HEADER_SIZE + featureData.fixedSize();
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        putU32(dst, 0, argsz);
        putU32(dst, 4, flags);
        featureData.encodeFixed(dst.asSlice(HEADER_SIZE));
    }

    @Override
    public MemorySegment data() {
        return featureData.tail();
    }

    /** @throws VfioUserException EINVAL if malformed (see the class comment) */
    public static DeviceFeatureRequest decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, HEADER_SIZE, "DEVICE_FEATURE");
        long argsz = u32(payload, 0);
        int flags = i32(payload, 4);
        String what = "DEVICE_FEATURE " + DeviceFeature.describe(flags);
        checkFlags(flags, what);
        int feature = flags & INDEX_MASK;
        FeaturePayload data = decodeRequestData(flags, payload.asSlice(HEADER_SIZE), what);
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
