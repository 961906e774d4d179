package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * REGION_READ request (command 9, protocol reference §9.1).
 *
 * <pre>
 *  0                               8               12              16
 * +-------------------------------+---------------+---------------+
 * |        offset (u64)           |  region (u32) |  count (u32)  |
 * +-------------------------------+---------------+---------------+
 * </pre>
 *
 * <p>The decoder checks only what the message itself can tell: the size (exactly 16 bytes; libvfio-user
 * only checks for at least 16, but a read request has no data, so extra bytes mean a framing mistake) and
 * that {@code offset + count} does not overflow u64. Region index, region bounds, {@code count} against
 * {@code max_data_xfer_size} and the device state are the server's checks. {@code count} 0 is legal on
 * the wire (libvfio-user answers it with an <em>empty</em> reply payload, §9.1), but clients should avoid
 * it: that empty reply cannot be decoded as a {@link RegionReadReply}.
 *
 * <p>Encoding and decoding checks live in the package-private {@code RegionAccessLayout}, shared by the four
 * REGION_READ/WRITE messages.
 *
 * @param offset byte offset inside the region (u64)
 * @param region region index (u32)
 * @param count  bytes to read (u32)
 */
public record RegionReadRequest(long offset, long region, long count) implements Request {
    public static final int SIZE = RegionAccessLayout.SIZE;

    public RegionReadRequest {
        RegionAccessLayout.checkComponents(region, count);
    }

    @Override
    public Command command() {
        return Command.REGION_READ;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        RegionAccessLayout.encode(dst, offset, region, count);
    }

    /** @throws VfioUserException EINVAL if the payload is not 16 bytes or offset + count overflows u64 */
    public static RegionReadRequest decode(MemorySegment payload) {
        return RegionAccessLayout.decode(payload, "REGION_READ", RegionReadRequest::new);
    }

    /**
     * Checks a payload exactly as {@link #decode(MemorySegment)} does, without creating a record (the server's
     * register-access hot path); read the fields with {@link RegionAccess}.
     *
     * @throws VfioUserException as {@link #decode(MemorySegment)}
     */
    public static void check(MemorySegment payload) {
        RegionAccessLayout.check(payload, "REGION_READ");
    }
}
