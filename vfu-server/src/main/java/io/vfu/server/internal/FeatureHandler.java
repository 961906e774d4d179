package io.vfu.server.internal;

import static io.vfu.core.protocol.DeviceFeature.DMA_LOGGING_REPORT;
import static io.vfu.core.protocol.DeviceFeature.DMA_LOGGING_START;
import static io.vfu.core.protocol.DeviceFeature.DMA_LOGGING_STOP;
import static io.vfu.core.protocol.DeviceFeature.GET;
import static io.vfu.core.protocol.DeviceFeature.MIGRATION;
import static io.vfu.core.protocol.DeviceFeature.MIG_DATA_SIZE;
import static io.vfu.core.protocol.DeviceFeature.MIG_DEVICE_STATE;
import static io.vfu.core.protocol.DeviceFeature.PROBE;
import static io.vfu.core.protocol.DeviceFeature.SET;
import static io.vfu.core.protocol.DeviceFeature.VFU_PRECOPY_INFO;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.DeviceFeature;
import io.vfu.core.protocol.DeviceFeatureReply;
import io.vfu.core.protocol.DeviceFeatureRequest;
import io.vfu.core.protocol.DirtyBitmap;
import io.vfu.core.protocol.FeaturePayload;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.transport.Response;
import io.vfu.core.transport.SpareBuffer;
import io.vfu.server.MigrationHandler;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;

/**
 * DEVICE_FEATURE (protocol reference §10): migration features 1/2, DMA logging 6/7/8 and the extensions of
 * §11.8 (9 MIG_DATA_SIZE, {@link DeviceFeature#VFU_PRECOPY_INFO}).
 *
 * <p>Unlike libvfio-user: feature 1 reports what the device's handler really supports (not always PRE_COPY);
 * DMA logging works for every device (it is the library's job, not the device's), and an unknown feature or
 * an operation the device lacks is EINVAL (libvfio-user's choice; the kernel says ENOTTY), so a PROBE tells the
 * truth.
 */
final class FeatureHandler {
    private final DeviceRuntime runtime;
    /**
     * The DMA_LOGGING_REPORT bitmap, kept from one report to the next until DMA_LOGGING_STOP (a migration reports
     * the same range every round): a fresh native bitmap per report (512 KiB for 16 GiB at 4 KiB pages) would be
     * zeroed and faulted in each time, and freed only when a GC happens to run, which in a server making little
     * garbage is rarely.
     */
    private final SpareBuffer reportBuffer = new SpareBuffer(0);

    FeatureHandler(DeviceRuntime runtime) {
        this.runtime = runtime;
    }

    /** The operations this device supports for {@code feature}. */
    int supportedOps(int feature) {
        MigrationHandler m = runtime.migration().handler();
        return switch (feature) {
            case MIGRATION -> m != null ? GET : 0;
            case MIG_DEVICE_STATE -> m != null ? GET | SET : 0;
            case DMA_LOGGING_START, DMA_LOGGING_STOP -> SET;
            case DMA_LOGGING_REPORT -> GET;
            case MIG_DATA_SIZE -> m != null ? GET : 0;
            case VFU_PRECOPY_INFO -> m != null && m.features().hasPreCopy() ? GET : 0;
            default -> 0;
        };
    }

    /** The answer to {@code request}; a report's bitmap buffer is kept again once the reply is out. */
    Response handle(DeviceFeatureRequest request) {
        if (request.feature() != DMA_LOGGING_REPORT) {
            return Response.of(reply(request, null));
        }
        ReportBitmap bitmap = new ReportBitmap();
        try {
            return Response.of(reply(request, bitmap)).andThen(bitmap::giveBack);
        } catch (RuntimeException e) {
            bitmap.giveBack();
            throw e;
        }
    }

    /** @param reportBitmap where a DMA_LOGGING_REPORT's bitmap goes */
    private DeviceFeatureReply reply(DeviceFeatureRequest request, SegmentAllocator reportBitmap) {
        int feature = request.feature();
        int ops = request.flags() & (GET | SET);
        int supported = supportedOps(feature);
        if (supported == 0 || (ops & ~supported) != 0) {
            throw new VfioUserException(Errno.EINVAL, "DEVICE_FEATURE: " + DeviceFeature.describe(request.flags())
                    + " is not supported by this device");
        }
        if (request.isProbe()) {
            return DeviceFeatureReply.echo(request);
        }
        FeaturePayload data = request.featureData();
        return switch (feature) {
            case MIGRATION -> DeviceFeatureReply.get(feature,
                    new FeaturePayload.MigrationFlags(runtime.migration().features().flags()));
            case MIG_DEVICE_STATE -> {
                if (request.isGet()) {
                    yield DeviceFeatureReply.get(feature,
                            new FeaturePayload.MigDeviceState(runtime.migration().state().wireValue()));
                }
                FeaturePayload.MigDeviceState set = (FeaturePayload.MigDeviceState) data;
                runtime.migration().setState(MigrationState.fromWire(set.deviceState()));
                yield DeviceFeatureReply.echo(request);
            }
            case DMA_LOGGING_START -> {
                FeaturePayload.DmaLoggingControl chosen =
                        runtime.dmaController().startLogging((FeaturePayload.DmaLoggingControl) data);
                yield new DeviceFeatureReply(request.argsz(), request.flags(), chosen);
            }
            case DMA_LOGGING_STOP -> {
                runtime.dmaController().stopLogging();
                reportBuffer.clear(); // up to 256 MiB: kept while reports come, not for the rest of the session
                yield DeviceFeatureReply.echo(request);
            }
            case DMA_LOGGING_REPORT -> {
                FeaturePayload.DmaLoggingReportQuery q = (FeaturePayload.DmaLoggingReportQuery) data;
                // The report clears what it returns: refuse a too-small argsz before reading, not after.
                if (DirtyBitmap.isPowerOfTwo(q.pageSize()) && q.length() > 0) {
                    long needed = DeviceFeatureRequest.HEADER_SIZE + 24 + DirtyBitmap.byteSize(q.length(), q.pageSize());
                    if (request.argsz() < needed) {
                        throw new VfioUserException(Errno.EINVAL, "DMA_LOGGING_REPORT: argsz " + request.argsz()
                                + " < " + needed);
                    }
                }
                yield DeviceFeatureReply.get(feature, runtime.dmaController().report(q, reportBitmap));
            }
            case MIG_DATA_SIZE -> {
                long size = runtime.migration().handler().stopCopySize();
                if (size < 0) {
                    throw new VfioUserException(Errno.EINVAL, "MIG_DATA_SIZE: the device cannot estimate it");
                }
                yield DeviceFeatureReply.get(feature, new FeaturePayload.MigDataSize(size));
            }
            case VFU_PRECOPY_INFO -> {
                MigrationState s = runtime.migration().state();
                if (s != MigrationState.PRE_COPY && s != MigrationState.PRE_COPY_P2P) {
                    throw new VfioUserException(Errno.EINVAL, "PRECOPY_INFO: only in PRE_COPY states, not " + s);
                }
                MigrationHandler.PrecopyInfo info = runtime.migration().handler().precopyInfo();
                yield DeviceFeatureReply.get(feature, new FeaturePayload.PrecopyInfo(info.initialBytes(), info.dirtyBytes()));
            }
            default -> throw new VfioUserException(Errno.EINVAL, "DEVICE_FEATURE: unknown feature " + feature);
        };
    }

    /** Lends {@link #reportBuffer} to one report: the bitmap is a slice of it, until {@link #giveBack}. */
    private final class ReportBitmap implements SegmentAllocator {
        private MemorySegment taken;

        @Override
        public MemorySegment allocate(long byteSize, long byteAlignment) {
            taken = reportBuffer.take(byteSize); // 8-byte aligned: the bitmap is written in u64 words
            return taken.asSlice(0, byteSize, byteAlignment);
        }

        void giveBack() {
            if (taken != null) {
                reportBuffer.giveBack(taken);
            }
        }
    }
}
