package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU64;
import static io.vfu.core.protocol.Wire.u64;

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
 * @param address DMA address (u64)
 * @param count   bytes to write (u64) = {@code data.byteSize()}
 * @param data    the bytes to write
 */
public record DmaWriteRequest(long address, long count, MemorySegment data) implements Request {
    /** Size of the part before the data. */
    public static final int FIXED_SIZE = 16;

    public DmaWriteRequest {
        if (data.byteSize() != count) {
            throw new IllegalArgumentException("count " + Long.toUnsignedString(count) + " != data length "
                    + data.byteSize());
        }
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
        putU64(dst, 0, address);
        putU64(dst, 8, count);
    }

    /** @throws VfioUserException EINVAL if shorter than 16 bytes or inconsistent */
    public static DmaWriteRequest decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, FIXED_SIZE, "DMA_WRITE");
        return decode(payload.asSlice(0, FIXED_SIZE), payload.asSlice(FIXED_SIZE));
    }

    /**
     * Decodes a request whose fixed part and data were received into separate segments.
     *
     * @throws VfioUserException EINVAL if {@code fixed} is not 16 bytes, {@code count} differs from the
     *                           data length, or address + count overflows u64
     */
    public static DmaWriteRequest decode(MemorySegment fixed, MemorySegment data) {
        Wire.requireExactly(fixed, FIXED_SIZE, "DMA_WRITE");
        long address = u64(fixed, 0);
        long count = u64(fixed, 8);
        Fields.requireDataLength(data, count, "DMA_WRITE");
        Fields.requireNoOverflow(address, count, "DMA_WRITE: address");
        return new DmaWriteRequest(address, count, data);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof DmaWriteRequest r && r.address == address && r.count == count
                && Fields.sameBytes(r.data, data);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(address) * 31 + Long.hashCode(count);
    }
}
