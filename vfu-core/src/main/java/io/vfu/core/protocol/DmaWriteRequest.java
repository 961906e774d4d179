package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * DMA_WRITE request (command 12, server → client, protocol reference §7.3): the server writes
 * {@code data} to client memory at {@code address}.
 *
 * <pre>
 *  0                               8                               16
 * +-------------------------------+-------------------------------+---------------...
 * |        address (u64)          |         count (u64)           | data (count bytes)
 * +-------------------------------+-------------------------------+---------------...
 * </pre>
 *
 * <p>Layout and QEMU caveat as in {@link DmaReadRequest} (u64 count, libvfio-user's layout).
 *
 * <p>{@link #data()} is a slice of the decoded input (no copy): valid as long as the input segment.
 * Records compare data by content.
 *
 * <p>Encoding and decoding checks live in the package-private {@code DmaAccessLayout}, shared by the four
 * DMA_READ/WRITE messages.
 *
 * @param address DMA address (u64)
 * @param count   bytes to write (u64) = {@code data.byteSize()}
 * @param data    the bytes to write
 */
public record DmaWriteRequest(long address, long count, MemorySegment data) implements Request {
    /** Size of the part before the data. */
    public static final int FIXED_SIZE = DmaAccessLayout.SIZE;

    public DmaWriteRequest {
        DataTail.requireLength(data, count, "count");
    }

    /** A request whose count is the data length. */
    public DmaWriteRequest(long address, MemorySegment data) {
        this(address, data.byteSize(), data);
    }

    @Override
    public Command command() {
        return Command.DMA_WRITE;
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
    public static DmaWriteRequest decode(MemorySegment payload) {
        return DataTail.split(payload, FIXED_SIZE, "DMA_WRITE", DmaWriteRequest::decode);
    }

    /**
     * Decodes a request whose fixed part and data were received into separate segments.
     *
     * @throws VfioUserException EINVAL if {@code fixed} is not 16 bytes, {@code count} differs from the
     *                           data length, or address + count overflows u64
     */
    public static DmaWriteRequest decode(MemorySegment fixed, MemorySegment data) {
        return DmaAccessLayout.decode(fixed, data, "DMA_WRITE", DmaWriteRequest::new);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof DmaWriteRequest r && r.address == address && r.count == count
                && Fields.sameBytes(r.data, data);
    }

    @Override
    public int hashCode() {
        return DataTail.hash(address, count);
    }
}
