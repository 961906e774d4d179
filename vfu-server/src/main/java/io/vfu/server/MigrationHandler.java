package io.vfu.server;

import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.VfioUserException;
import java.lang.foreign.MemorySegment;

/**
 * Device side of VFIO-style live migration (protocol reference §11). The library owns the state machine: it
 * plans the path for a SET of MIG_DEVICE_STATE and calls {@link #transition} once per direct arc; it gates
 * commands per state; the device implements only arcs and the data stream.
 *
 * <p>Saving: after RUNNING→PRE_COPY or STOP→STOP_COPY the device produces one stream through
 * {@link #readData}; PRE_COPY→STOP_COPY continues the same stream. Loading: after STOP→RESUMING the device
 * consumes the stream through {@link #writeData}; RESUMING→STOP validates it.
 */
public interface MigrationHandler {
    /**
     * What the device supports: STOP_COPY always; P2P and PRE_COPY only when the device really implements
     * them (reported by DEVICE_FEATURE 1).
     */
    default MigrationFeatures features() {
        return MigrationFeatures.STOP_COPY;
    }

    /**
     * Performs one direct arc. Throw {@link VfioUserException} to fail it: the device then stays in
     * {@code from} (the library reports the failure and the last reached state), or throw
     * {@link DeviceErrorException} if the device is broken (state becomes ERROR; DEVICE_RESET recovers).
     */
    void transition(MigrationState from, MigrationState to);

    /**
     * Saving: fills the start of {@code dst} with the next stream bytes and returns how many. Return less than
     * {@code dst.byteSize()} only when the stream has no more data now (0 ends it in STOP_COPY; in PRE_COPY
     * more may come later).
     */
    long readData(MemorySegment dst);

    /** Loading: consumes all of {@code src}, the next bytes of the stream. */
    void writeData(MemorySegment src);

    /**
     * Pre-copy progress (kernel VFIO_MIG_GET_PRECOPY_INFO): bytes of the initial image not yet read, and
     * dirty bytes known now. Only asked in PRE_COPY states. Default: unknown (both 0).
     */
    default PrecopyInfo precopyInfo() {
        return new PrecopyInfo(0, 0);
    }

    /** Estimated bytes a STOP_COPY would produce from now (kernel feature MIG_DATA_SIZE); -1 if unknown. */
    default long stopCopySize() {
        return -1;
    }

    /** Pre-copy progress figures. */
    record PrecopyInfo(long initialBytes, long dirtyBytes) {
    }

    /** A transition failure after which the device cannot continue: the state becomes ERROR. */
    final class DeviceErrorException extends RuntimeException {
        public DeviceErrorException(String message) {
            super(message);
        }
    }
}
