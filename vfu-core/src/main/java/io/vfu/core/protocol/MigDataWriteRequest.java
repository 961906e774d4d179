package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.u32;

import java.lang.foreign.MemorySegment;

/**
 * MIG_DATA_WRITE request (command 18, protocol reference §11.6): the next chunk of the migration stream
 * (allowed only in RESUMING).
 *
 * <pre>
 *  0               4               8
 * +---------------+---------------+---------------...
 * |  argsz (u32)  |  size (u32)   | data (size bytes)
 * +---------------+---------------+---------------...
 * </pre>
 *
 * <p>The specification calls argsz the maximum reply size; libvfio-user requires {@code argsz ≥ 8 + size}
 * (EINVAL), so that rule is enforced and {@code 8 + size} is what the convenience constructor sends. The
 * payload after the first 8 bytes must be exactly {@code size} bytes (EINVAL otherwise). {@code size}
 * against the client's {@code max_data_xfer_size} and the migration state are the server's checks.
 *
 * <p>{@link #data()} is a slice of the decoded input (no copy): valid as long as the input segment.
 * Records compare data by content.
 *
 * @param argsz ≥ 8 + size (u32)
 * @param size  bytes of data (u32) = {@code data.byteSize()}
 * @param data  the migration data
 */
public record MigDataWriteRequest(long argsz, long size, MemorySegment data) implements Request {
    /** Size of the part before the data. */
    public static final int FIXED_SIZE = 8;

    public MigDataWriteRequest {
        Fields.requireU32(argsz, "argsz");
        Fields.requireU32(size, "size");
        if (data.byteSize() != size) {
            throw new IllegalArgumentException("size " + size + " != data length " + data.byteSize());
        }
    }

    /** A request carrying {@code data}, with argsz = 8 + its length. */
    public MigDataWriteRequest(MemorySegment data) {
        this(FIXED_SIZE + data.byteSize(), data.byteSize(), data);
    }

    @Override
    public Command command() {
        return Command.MIG_DATA_WRITE;
    }

    @Override
    public int fixedSize() {
        return FIXED_SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        putU32(dst, 0, argsz);
        putU32(dst, 4, size);
    }

    /** @throws VfioUserException EINVAL if shorter than 8 bytes or inconsistent */
    public static MigDataWriteRequest decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, FIXED_SIZE, "MIG_DATA_WRITE");
        return decode(payload.asSlice(0, FIXED_SIZE), payload.asSlice(FIXED_SIZE));
    }

    /**
     * Decodes a request whose fixed part and data were received into separate segments.
     *
     * @throws VfioUserException EINVAL if {@code fixed} is not 8 bytes, argsz &lt; 8 + size, or the data
     *                           length differs from size
     */
    public static MigDataWriteRequest decode(MemorySegment fixed, MemorySegment data) {
        Wire.requireExactly(fixed, FIXED_SIZE, "MIG_DATA_WRITE");
        long argsz = u32(fixed, 0);
        long size = u32(fixed, 4);
        if (argsz < FIXED_SIZE + size) {
            throw VfioUserException.einval("MIG_DATA_WRITE: argsz " + argsz + " < 8 + size " + size);
        }
        if (data.byteSize() != size) {
            throw VfioUserException.einval("MIG_DATA_WRITE: size " + size + " but " + data.byteSize()
                    + " data bytes");
        }
        return new MigDataWriteRequest(argsz, size, data);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof MigDataWriteRequest r && r.argsz == argsz && r.size == size
                && Fields.sameBytes(r.data, data);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(argsz) * 31 + Long.hashCode(size);
    }
}
