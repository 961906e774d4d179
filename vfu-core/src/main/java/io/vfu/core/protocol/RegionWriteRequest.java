package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * REGION_WRITE request (command 10, protocol reference §9.1).
 *
 * <pre>
 *  0                               8               12              16
 * +-------------------------------+---------------+---------------+---------------...
 * |        offset (u64)           |  region (u32) |  count (u32)  | data (count bytes)
 * +-------------------------------+---------------+---------------+---------------...
 * </pre>
 *
 * <p>{@code msg_size − 32} (= payload − 16) must equal {@code count}, as libvfio-user requires (EINVAL).
 * QEMU's client may send this command with No_reply ("posted writes"); that is a header matter.
 * Region index, bounds, size limits and device state are the server's checks.
 *
 * <p>{@link #data()} is a slice of the decoded input (no copy): valid as long as the input segment.
 * Records compare data by content.
 *
 * <p>Encoding and decoding checks live in the package-private {@code RegionAccessLayout}, shared by the four
 * REGION_READ/WRITE messages.
 *
 * @param offset byte offset inside the region (u64)
 * @param region region index (u32)
 * @param count  bytes to write (u32) = {@code data.byteSize()}
 * @param data   the bytes to write
 */
public record RegionWriteRequest(long offset, long region, long count, MemorySegment data) implements Request {
    /** Size of the part before the data. */
    public static final int FIXED_SIZE = RegionAccessLayout.SIZE;

    public RegionWriteRequest {
        RegionAccessLayout.checkComponents(region, count, data);
    }

    /** A request whose count is the data length. */
    public RegionWriteRequest(long offset, long region, MemorySegment data) {
        this(offset, region, data.byteSize(), data);
    }

    @Override
    public Command command() {
        return Command.REGION_WRITE;
    }

    @Override
    public int fixedSize() {
        return FIXED_SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        RegionAccessLayout.encode(dst, offset, region, count);
    }

    /** @throws VfioUserException EINVAL if shorter than 16 bytes or inconsistent (see {@link #decode(MemorySegment, MemorySegment)}) */
    public static RegionWriteRequest decode(MemorySegment payload) {
        return DataTail.split(payload, FIXED_SIZE, "REGION_WRITE", RegionWriteRequest::decode);
    }

    /**
     * Checks a payload exactly as {@link #decode(MemorySegment)} does, without creating a record (the server's
     * register-access hot path); read the fields with {@link RegionAccess}; the data are the count bytes from
     * {@link #FIXED_SIZE} on.
     *
     * @throws VfioUserException as {@link #decode(MemorySegment)}
     */
    public static void check(MemorySegment payload) {
        RegionAccessLayout.checkWithData(payload, "REGION_WRITE");
    }

    /**
     * Decodes a request whose fixed part and data were received into separate segments.
     *
     * @throws VfioUserException EINVAL if {@code fixed} is not 16 bytes, {@code count} differs from the
     *                           data length, or offset + count overflows u64
     */
    public static RegionWriteRequest decode(MemorySegment fixed, MemorySegment data) {
        return RegionAccessLayout.decode(fixed, data, "REGION_WRITE", RegionWriteRequest::new);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RegionWriteRequest r && r.offset == offset && r.region == region && r.count == count
                && Fields.sameBytes(r.data, data);
    }

    @Override
    public int hashCode() {
        return DataTail.hash(offset, region, count);
    }
}
