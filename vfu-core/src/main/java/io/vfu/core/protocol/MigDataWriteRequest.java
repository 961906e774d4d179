package io.vfu.core.protocol;

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
 * <p>The header's encoding and checks live in the package-private {@code MigDataLayout}.
 *
 * @param argsz ≥ 8 + size (u32)
 * @param size  bytes of data (u32) = {@code data.byteSize()}
 * @param data  the migration data
 */
public record MigDataWriteRequest(long argsz, long size, MemorySegment data) implements Request {
    /** Size of the part before the data. */
    public static final int FIXED_SIZE = MigDataLayout.FIXED_SIZE;

    public MigDataWriteRequest {
        MigDataLayout.checkComponents(argsz, size, data);
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
        MigDataLayout.encode(dst, argsz, size);
    }

    /** @throws VfioUserException EINVAL if shorter than 8 bytes or inconsistent */
    public static MigDataWriteRequest decode(MemorySegment payload) {
        return DataTail.split(payload, FIXED_SIZE, "MIG_DATA_WRITE", MigDataWriteRequest::decode);
    }

    /**
     * Decodes a request whose fixed part and data were received into separate segments.
     *
     * @throws VfioUserException EINVAL if {@code fixed} is not 8 bytes, argsz &lt; 8 + size, or the data
     *                           length differs from size
     */
    public static MigDataWriteRequest decode(MemorySegment fixed, MemorySegment data) {
        MigDataLayout.Fixed f = MigDataLayout.decodeRequest(fixed, "MIG_DATA_WRITE");
        if (data.byteSize() != f.size()) {
            throw VfioUserException.einval("MIG_DATA_WRITE: size " + f.size() + " but " + data.byteSize()
                    + " data bytes");
        }
        return new MigDataWriteRequest(f.argsz(), f.size(), data);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof MigDataWriteRequest r && r.argsz == argsz && r.size == size
                && Fields.sameBytes(r.data, data);
    }

    @Override
    public int hashCode() {
        return DataTail.hash(argsz, size);
    }
}
