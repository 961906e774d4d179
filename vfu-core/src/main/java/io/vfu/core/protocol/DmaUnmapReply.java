package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.i32;
import static io.vfu.core.protocol.Wire.u32;
import static io.vfu.core.protocol.Wire.u64;

import java.lang.foreign.MemorySegment;

/**
 * DMA_UNMAP reply (command 3, protocol reference §7.2): the 24 request bytes echoed back, including
 * the client's argsz (as libvfio-user does). Same layout as {@link DmaUnmapRequest}.
 *
 * <p>Decoding checks only the length and argsz ≥ 24; flags are kept as sent so the client can compare
 * the echo with its request.
 */
public record DmaUnmapReply(long argsz, int flags, long address, long size) implements Reply {
    public static final int SIZE = DmaUnmapRequest.SIZE;

    /** The reply echoing {@code request}. */
    public static DmaUnmapReply echo(DmaUnmapRequest request) {
        return new DmaUnmapReply(request.argsz(), request.flags(), request.address(), request.size());
    }

    @Override
    public Command command() {
        return Command.DMA_UNMAP;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        DmaUnmapRequest.encode(dst, argsz, flags, address, size);
    }

    /** @throws VfioUserException EINVAL if the payload is not 24 bytes or argsz &lt; 24 */
    public static DmaUnmapReply decode(MemorySegment payload) {
        Wire.requireExactly(payload, SIZE, "DMA_UNMAP reply");
        long argsz = u32(payload, 0);
        Fields.requireArgszAtLeast(argsz, SIZE, "DMA_UNMAP reply");
        return new DmaUnmapReply(argsz, i32(payload, 4), u64(payload, 8), u64(payload, 16));
    }
}
