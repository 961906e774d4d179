package io.vfu.server;

import io.vfu.core.protocol.VfioUserException;
import java.lang.foreign.MemorySegment;

/**
 * Device access to client (guest) memory by IOVA, within what the client mapped with DMA_MAP.
 *
 * <p>Ranges mapped with an fd are accessed directly through a shared mapping; ranges mapped without one are
 * reached with DMA_READ/DMA_WRITE messages to the client, split by the client's max_data_xfer_size. Every
 * write made through this interface is recorded for dirty-page logging. Failures throw
 * {@link VfioUserException}: EFAULT for an unmapped address, EPERM for a write to read-only memory (or a
 * read of write-only memory), EIO if the client's DMA message fails.
 */
public interface Dma {
    /** Copies {@code dst.byteSize()} bytes at {@code iova} into {@code dst}. */
    void read(long iova, MemorySegment dst);

    /** Copies all of {@code src} to {@code iova}. */
    void write(long iova, MemorySegment src);

    /**
     * Like {@link #read}, but always with DMA_READ messages, also where the client passed an fd (the spec
     * permits messages for any mapped range, §7.3; libvfio-user's sample server does this on purpose).
     */
    void readByMessage(long iova, MemorySegment dst);

    /** Like {@link #write}, but always with DMA_WRITE messages (see {@link #readByMessage}). Logged as dirty too. */
    void writeByMessage(long iova, MemorySegment src);

    /**
     * A direct view of fd-backed memory, or {@code null} if {@code [iova, iova+length)} is not one fd-backed
     * mapping with the needed permission. Writes through the view are NOT logged: call
     * {@link #markDirty} for them. The view dies when the client unmaps the range.
     */
    MemorySegment directView(long iova, long length, boolean write);

    /** Records device writes made outside {@link #write} (e.g. through a {@link #directView}). */
    void markDirty(long iova, long length);
}
