package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * DMA_READ reply (command 11, client → server, protocol reference §7.3): address and count echoed,
 * followed by the data.
 *
 * <pre>
 *  0                               8                               16
 * +-------------------------------+-------------------------------+---------------...
 * |        address (u64)          |         count (u64)           | data (count bytes)
 * +-------------------------------+-------------------------------+---------------...
 * </pre>
 *
 * <p>Layout and QEMU caveat as in {@link DmaReadRequest}. The decoder checks internal consistency only
 * ({@code count} = data length, no u64 overflow); libvfio-user additionally requires address and count
 * to equal the request's (EINVAL), which the caller checks against its pending request.
 *
 * <p>{@link #data()} is a slice of the decoded input (no copy): valid as long as the input segment.
 * Records compare data by content.
 *
 * <p>Encoding and decoding checks live in the package-private {@code DmaAccessLayout}, shared by the four
 * DMA_READ/WRITE messages.
 *
 * @param address echo of the request's address
 * @param count   bytes returned (u64) = {@code data.byteSize()}
 * @param data    the bytes read from client memory
 */
public record DmaReadReply(long address, long count, MemorySegment data) implements Reply {
    /** Size of the part before the data. */
    public static final int FIXED_SIZE = DmaAccessLayout.SIZE;

    public DmaReadReply {
        DataTail.requireLength(data, count, "count");
    }

    /** A reply whose count is the data length. */
    public DmaReadReply(long address, MemorySegment data) {
        this(address, data.byteSize(), data);
    }

    @Override
    public Command command() {
        return Command.DMA_READ;
    }

    @Override
    public int fixedSize() {
        return FIXED_SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        DmaAccessLayout.encode(dst, address, count);
    }

    /** @throws VfioUserException EINVAL if shorter than 16 bytes or inconsistent */
    public static DmaReadReply decode(MemorySegment payload) {
        return DataTail.split(payload, FIXED_SIZE, "DMA_READ reply", DmaReadReply::decode);
    }

    /**
     * Decodes a reply whose fixed part and data were received into separate segments.
     *
     * @throws VfioUserException EINVAL if {@code fixed} is not 16 bytes, {@code count} differs from the
     *                           data length, or address + count overflows u64
     */
    public static DmaReadReply decode(MemorySegment fixed, MemorySegment data) {
        return DmaAccessLayout.decode(fixed, data, "DMA_READ reply", DmaReadReply::new);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof DmaReadReply r && r.address == address && r.count == count
                && Fields.sameBytes(r.data, data);
    }

    @Override
    public int hashCode() {
        return DataTail.hash(address, count);
    }
}
