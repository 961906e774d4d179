package io.vfu.server.dma;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * Sends DMA_READ / DMA_WRITE messages (protocol reference §7.3) to the connected client: how a
 * {@link DmaController} reaches client memory mapped without an fd. Implemented by the server runtime over
 * the client connection (the twin socket when there is one); replaced with
 * {@link DmaController#messenger(DmaMessenger)} when a client (re)connects.
 *
 * <p>Each call is exactly one message and its reply; the controller never asks for more than
 * {@link #maxTransferSize()} bytes at once. Implementations must be thread-safe: device worker threads may
 * call concurrently with the connection thread. A client error reply should be thrown as a
 * {@link io.vfu.core.protocol.VfioUserException} carrying the client's errno (passed through as is); an
 * {@link IOException} means the transport failed and becomes EIO for the device.
 */
public interface DmaMessenger {
    /** One DMA_READ: fills {@code dst} (at most {@link #maxTransferSize()} bytes) from client memory at {@code iova}. */
    void dmaRead(long iova, MemorySegment dst) throws IOException;

    /** One DMA_WRITE: writes all of {@code src} (at most {@link #maxTransferSize()} bytes) to client memory at {@code iova}. */
    void dmaWrite(long iova, MemorySegment src) throws IOException;

    /** The client's {@code max_data_xfer_size}: the largest count of one DMA_READ/DMA_WRITE (&gt; 0). */
    long maxTransferSize();
}
