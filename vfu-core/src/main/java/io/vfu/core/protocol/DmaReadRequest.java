package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * DMA_READ request (command 11, server → client, protocol reference §7.3): the server asks the client for
 * {@code count} bytes of client memory at {@code address}.
 *
 * <pre>
 *  0                               8                               16
 * +-------------------------------+-------------------------------+
 * |        address (u64)          |         count (u64)           |
 * +-------------------------------+-------------------------------+
 * </pre>
 *
 * <p><b>Layout followed:</b> libvfio-user's, with a u64 {@code count} and a 16-byte fixed part.
 * <b>Interop caveat:</b> QEMU's client source declares these messages as {@code u64 address; u32 count;
 * data[]}, i.e. data at payload offset 12 and C-struct padding in its size checks. It reads a u64 count
 * correctly on little-endian, but the data is shifted by 4 bytes; verify the QEMU version before relying
 * on message-based DMA with QEMU (§7.3, ambiguity #18).
 *
 * <p>The decoder checks the size (exactly 16) and that {@code address + count} does not overflow u64;
 * the limit {@code count ≤ max_data_xfer_size} and the mapping lookup are the client's checks.
 *
 * <p>Encoding and decoding checks live in the package-private {@code DmaAccessLayout}, shared by the four
 * DMA_READ/WRITE messages.
 *
 * @param address DMA address (u64)
 * @param count   bytes wanted (u64, unsigned)
 */
public record DmaReadRequest(long address, long count) implements Request {
    public static final int SIZE = DmaAccessLayout.SIZE;

    @Override
    public Command command() {
        return Command.DMA_READ;
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
    public static DmaReadRequest decode(MemorySegment payload) {
        return DmaAccessLayout.decode(payload, "DMA_READ", DmaReadRequest::new);
    }
}
