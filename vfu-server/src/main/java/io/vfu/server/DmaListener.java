package io.vfu.server;

/**
 * Told when the client maps and unmaps its memory (libvfio-user's dma_register/dma_unregister callbacks).
 * Optional: {@link Dma} already works by IOVA. Called on the connection's thread after the table changed;
 * after {@link #unmapped} the range is no longer reachable through {@link Dma}.
 */
public interface DmaListener {
    /**
     * The client mapped {@code [iova, iova + size)}.
     *
     * @param flags  DMA_MAP flags: READ 0x1, WRITE 0x2
     * @param direct true when the client passed an fd (accesses are plain memory copies), false when the
     *               range is reached with DMA_READ/DMA_WRITE messages
     */
    default void mapped(long iova, long size, int flags, boolean direct) {
    }

    /** The range is gone (DMA_UNMAP, UNMAP_ALL, or the client disconnected); one call per mapping. */
    default void unmapped(long iova, long size) {
    }
}
