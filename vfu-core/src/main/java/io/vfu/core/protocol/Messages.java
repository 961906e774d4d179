package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * Decodes any payload by command: the single entry point receivers use after framing (protocol
 * reference §3.3, step 4). Malformed input fails with a {@link VfioUserException}, never another exception.
 *
 * <p>The switches are exhaustive over {@link Command}: adding a command without a decoder does not compile.
 * Decoded records may hold slices of {@code payload}; they are valid as long as it is.
 */
public final class Messages {
    private Messages() {
    }

    /** Decodes the payload of a command. */
    public static Request decodeRequest(Command command, MemorySegment payload) {
        return switch (command) {
            case VERSION -> VersionRequest.decode(payload);
            case DMA_MAP -> DmaMapRequest.decode(payload);
            case DMA_UNMAP -> DmaUnmapRequest.decode(payload);
            case DEVICE_GET_INFO -> DeviceInfoRequest.decode(payload);
            case DEVICE_GET_REGION_INFO -> RegionInfoRequest.decode(payload);
            case DEVICE_GET_REGION_IO_FDS -> RegionIoFdsRequest.decode(payload);
            case DEVICE_GET_IRQ_INFO -> IrqInfoRequest.decode(payload);
            case DEVICE_SET_IRQS -> SetIrqsRequest.decode(payload);
            case REGION_READ -> RegionReadRequest.decode(payload);
            case REGION_WRITE -> RegionWriteRequest.decode(payload);
            case DMA_READ -> DmaReadRequest.decode(payload);
            case DMA_WRITE -> DmaWriteRequest.decode(payload);
            case DEVICE_RESET -> DeviceResetRequest.decode(payload);
            case REGION_WRITE_MULTI -> RegionWriteMultiRequest.decode(payload);
            case DEVICE_FEATURE -> DeviceFeatureRequest.decode(payload);
            case MIG_DATA_READ -> MigDataReadRequest.decode(payload);
            case MIG_DATA_WRITE -> MigDataWriteRequest.decode(payload);
        };
    }

    /** Decodes the payload of a command given by its wire number (EINVAL for 14 and unknown numbers). */
    public static Request decodeRequest(int command, MemorySegment payload) {
        return decodeRequest(Command.of(command), payload);
    }

    /** Decodes the payload of a success reply. */
    public static Reply decodeReply(Command command, MemorySegment payload) {
        return switch (command) {
            case VERSION -> VersionReply.decode(payload);
            case DMA_MAP -> DmaMapReply.decode(payload);
            case DMA_UNMAP -> DmaUnmapReply.decode(payload);
            case DEVICE_GET_INFO -> DeviceInfoReply.decode(payload);
            case DEVICE_GET_REGION_INFO -> RegionInfoReply.decode(payload);
            case DEVICE_GET_REGION_IO_FDS -> RegionIoFdsReply.decode(payload);
            case DEVICE_GET_IRQ_INFO -> IrqInfoReply.decode(payload);
            case DEVICE_SET_IRQS -> SetIrqsReply.decode(payload);
            case REGION_READ -> RegionReadReply.decode(payload);
            case REGION_WRITE -> RegionWriteReply.decode(payload);
            case DMA_READ -> DmaReadReply.decode(payload);
            case DMA_WRITE -> DmaWriteReply.decode(payload);
            case DEVICE_RESET -> DeviceResetReply.decode(payload);
            case REGION_WRITE_MULTI -> RegionWriteMultiReply.decode(payload);
            case DEVICE_FEATURE -> DeviceFeatureReply.decode(payload);
            case MIG_DATA_READ -> MigDataReadReply.decode(payload);
            case MIG_DATA_WRITE -> MigDataWriteReply.decode(payload);
        };
    }
}
