package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU64;
import static io.vfu.core.protocol.Wire.u64;

import java.lang.foreign.MemorySegment;

/**
 * The 16-byte header of DMA_READ and DMA_WRITE (commands 11 and 12, protocol reference §7.3), shared by all
 * four messages: {@link DmaReadRequest} and {@link DmaWriteReply} are the header alone,
 * {@link DmaReadReply} and {@link DmaWriteRequest} the header followed by {@code count} data bytes.
 *
 * <pre>
 *  0                               8                               16
 * +-------------------------------+-------------------------------+---------------...
 * |        address (u64)          |         count (u64)           | data (count bytes, if any)
 * +-------------------------------+-------------------------------+---------------...
 * </pre>
 *
 * <p>libvfio-user's layout with a u64 {@code count} (see {@link DmaReadRequest} for QEMU's differing
 * declaration). The decoders check what the header itself can tell: its size (exactly 16), that the data,
 * if any, is {@code count} bytes, and that {@code address + count} does not overflow u64 (all EINVAL).
 * Package-private: the records are the API.
 */
final class DmaAccessLayout {
    static final int ADDRESS_OFFSET = 0;
    static final int COUNT_OFFSET = 8;
    /** Size of the header (the part before the data). */
    static final int SIZE = 16;

    private DmaAccessLayout() {
    }

    /** Builds a header-only record. */
    @FunctionalInterface
    interface Factory<T> {
        T of(long address, long count);
    }

    /** Builds a record with data. */
    @FunctionalInterface
    interface DataFactory<T> {
        T of(long address, long count, MemorySegment data);
    }

    static void encode(MemorySegment dst, long address, long count) {
        putU64(dst, ADDRESS_OFFSET, address);
        putU64(dst, COUNT_OFFSET, count);
    }

    /**
     * Decodes a header-only message.
     *
     * @param what the message name for errors, e.g. {@code "DMA_READ"}
     * @throws VfioUserException EINVAL if the payload is not 16 bytes or address + count overflows u64
     */
    static <T> T decode(MemorySegment payload, String what, Factory<T> factory) {
        Wire.requireExactly(payload, SIZE, what);
        long address = u64(payload, ADDRESS_OFFSET);
        long count = u64(payload, COUNT_OFFSET);
        Fields.requireNoOverflow(address, count, what, "address");
        return factory.of(address, count);
    }

    /**
     * Decodes a message whose header and data were received into separate segments.
     *
     * @param what the message name for errors, e.g. {@code "DMA_WRITE"}
     * @throws VfioUserException EINVAL if {@code fixed} is not 16 bytes, {@code count} differs from the
     *                           data length, or address + count overflows u64
     */
    static <T> T decode(MemorySegment fixed, MemorySegment data, String what, DataFactory<T> factory) {
        Wire.requireExactly(fixed, SIZE, what);
        long address = u64(fixed, ADDRESS_OFFSET);
        long count = u64(fixed, COUNT_OFFSET);
        Fields.requireDataLength(data, count, what);
        Fields.requireNoOverflow(address, count, what, "address");
        return factory.of(address, count, data);
    }
}
