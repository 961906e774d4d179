package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * DMA_WRITE reply (command 12, client → server, protocol reference §7.3): address and count echoed.
 *
 * <pre>
 *  0                               8                               16
 * +-------------------------------+-------------------------------+
 * |        address (u64)          |         count (u64)           |
 * +-------------------------------+-------------------------------+
 * </pre>
 *
 * <p>The specification's table lists {@code count} as 4 bytes here; that is a typo, libvfio-user uses 8
 * (reply = 16 bytes), which is followed. libvfio-user requires address and count to equal the request's;
 * the caller checks that against its pending request.
 *
 * <p>Encoding and decoding checks live in the package-private {@code DmaAccessLayout}, shared by the four
 * DMA_READ/WRITE messages.
 *
 * @param address echo of the request's address
 * @param count   bytes written (u64)
 */
public record DmaWriteReply(long address, long count) implements Reply {
    public static final int SIZE = DmaAccessLayout.SIZE;

    @Override
    public Command command() {
        return Command.DMA_WRITE;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        DmaAccessLayout.encode(dst, address, count);
    }

    /** @throws VfioUserException EINVAL if the payload is not 16 bytes or address + count overflows u64 */
    public static DmaWriteReply decode(MemorySegment payload) {
        return DmaAccessLayout.decode(payload, "DMA_WRITE reply", DmaWriteReply::new);
    }
}
