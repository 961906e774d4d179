package io.vfu.core.protocol;

/**
 * Constants of DEVICE_FEATURE (command 16, protocol reference §10): feature indexes, operation flags and
 * which operations each known feature defines.
 *
 * <p>The flags word of a DEVICE_FEATURE message is {@code feature index (bits 0–15) | GET | SET | PROBE}.
 * Bits 19–31 are undefined and rejected with EINVAL by {@link DeviceFeatureRequest#decode}.
 *
 * <p><b>Project extensions</b> (reference §11.8, not part of vfio-user 0.9.2): {@link #MIG_DATA_SIZE}
 * uses the kernel's index 9; {@link #VFU_PRECOPY_INFO} is a project-local index taken from the top of the
 * 16-bit space, {@code 0xF000–0xFFFF}, which vfu-java reserves for its own features so they can never
 * collide with a future kernel/spec index. Peers must only send these after learning from the VERSION
 * capabilities that the other side knows them (libvfio-user answers both with EINVAL).
 */
public final class DeviceFeature {
    /** Mask of the feature index in the flags word. */
    public static final int INDEX_MASK = 0xFFFF;
    /** {@code VFIO_DEVICE_FEATURE_GET}: read the feature (reply carries its data). */
    public static final int GET = 0x10000;
    /** {@code VFIO_DEVICE_FEATURE_SET}: write the feature (reply echoes the request). */
    public static final int SET = 0x20000;
    /** {@code VFIO_DEVICE_FEATURE_PROBE}: ask whether the named operations are supported; does no work. */
    public static final int PROBE = 0x40000;
    /** All operation bits. */
    public static final int OPS = GET | SET | PROBE;

    /** Feature 1 {@code MIGRATION}: GET → migration flags ({@link FeaturePayload.MigrationFlags}). */
    public static final int MIGRATION = 1;
    /** Feature 2 {@code MIG_DEVICE_STATE}: GET/SET the migration state ({@link FeaturePayload.MigDeviceState}). */
    public static final int MIG_DEVICE_STATE = 2;
    /** Feature 6 {@code DMA_LOGGING_START}: SET ({@link FeaturePayload.DmaLoggingControl}). */
    public static final int DMA_LOGGING_START = 6;
    /** Feature 7 {@code DMA_LOGGING_STOP}: SET, no data. */
    public static final int DMA_LOGGING_STOP = 7;
    /** Feature 8 {@code DMA_LOGGING_REPORT}: GET ({@link FeaturePayload.DmaLoggingReportQuery} → {@link FeaturePayload.DmaLoggingReport}). */
    public static final int DMA_LOGGING_REPORT = 8;
    /** Feature 9 {@code MIG_DATA_SIZE} (kernel index; extension in vfio-user): GET → {@link FeaturePayload.MigDataSize}. */
    public static final int MIG_DATA_SIZE = 9;
    /** Project-local feature {@code 0xF001}: GET → {@link FeaturePayload.PrecopyInfo} (the kernel's PRECOPY_INFO ioctl as a feature). */
    public static final int VFU_PRECOPY_INFO = 0xF001;

    /** {@code data_fd} value sent in MIG_DEVICE_STATE: no fd (vfio-user moves data with commands 17/18). */
    public static final long DATA_FD_NONE = 0xFFFF_FFFFL;

    private DeviceFeature() {
    }

    /** The operations (GET/SET/PROBE bits) a known feature defines, or 0 for an unknown index. */
    public static int supportedOps(int feature) {
        return switch (feature) {
            case MIGRATION, DMA_LOGGING_REPORT, MIG_DATA_SIZE, VFU_PRECOPY_INFO -> GET | PROBE;
            case MIG_DEVICE_STATE -> GET | SET | PROBE;
            case DMA_LOGGING_START, DMA_LOGGING_STOP -> SET | PROBE;
            default -> 0;
        };
    }

    /** True for the features this package has typed payloads for. */
    public static boolean isKnown(int feature) {
        return supportedOps(feature) != 0;
    }

    /**
     * Size of the GET reply data (after the 8-byte feature header) of a known fixed-size feature, or -1
     * for {@link #DMA_LOGGING_REPORT} (depends on the query), features without GET, and unknown indexes.
     */
    public static int getReplyDataSize(int feature) {
        return switch (feature) {
            case MIGRATION, MIG_DEVICE_STATE, MIG_DATA_SIZE -> 8;
            case VFU_PRECOPY_INFO -> 16;
            default -> -1;
        };
    }

    /** The spec name of a feature index, or {@code "#n"}. */
    public static String name(int feature) {
        return switch (feature) {
            case MIGRATION -> "MIGRATION";
            case MIG_DEVICE_STATE -> "MIG_DEVICE_STATE";
            case DMA_LOGGING_START -> "DMA_LOGGING_START";
            case DMA_LOGGING_STOP -> "DMA_LOGGING_STOP";
            case DMA_LOGGING_REPORT -> "DMA_LOGGING_REPORT";
            case MIG_DATA_SIZE -> "MIG_DATA_SIZE";
            case VFU_PRECOPY_INFO -> "VFU_PRECOPY_INFO";
            default -> "#" + feature;
        };
    }

    /** Flags as text, e.g. {@code "MIG_DEVICE_STATE SET"}. */
    public static String describe(int flags) {
        StringBuilder sb = new StringBuilder(name(flags & INDEX_MASK));
        if ((flags & GET) != 0) {
            sb.append(" GET");
        }
        if ((flags & SET) != 0) {
            sb.append(" SET");
        }
        if ((flags & PROBE) != 0) {
            sb.append(" PROBE");
        }
        return sb.toString();
    }
}
