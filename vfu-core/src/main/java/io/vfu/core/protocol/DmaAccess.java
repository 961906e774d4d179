package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * The fields of the 16-byte part that DMA_READ and DMA_WRITE requests and replies share (§7.3: address, count),
 * read in place: for the paths that receive a message's data straight into its destination, where the fixed part
 * arrives on its own and no record is made of the whole message.
 */
public final class DmaAccess {
    /** Size of the address and count fields. */
    public static final int SIZE = DmaAccessLayout.SIZE;

    private DmaAccess() {
    }

    /** The address field. */
    public static long addressOf(MemorySegment fixed) {
        return Wire.u64(fixed, DmaAccessLayout.ADDRESS_OFFSET);
    }

    /** The count field. */
    public static long countOf(MemorySegment fixed) {
        return Wire.u64(fixed, DmaAccessLayout.COUNT_OFFSET);
    }
}
