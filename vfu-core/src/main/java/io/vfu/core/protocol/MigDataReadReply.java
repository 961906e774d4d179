package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * MIG_DATA_READ reply (command 17, protocol reference §11.5).
 *
 * <pre>
 *  0               4               8
 * +---------------+---------------+---------------...---------------...
 * |  argsz (u32)  |  size (u32)   | data (size bytes) | padding (libvfio-user only)
 * +---------------+---------------+---------------...---------------...
 * </pre>
 *
 * <p>{@code argsz} = 8 + bytes returned, {@code size} = bytes returned. libvfio-user pads the payload
 * with zeros to 8 + <em>requested</em> size; only {@code size} says how many bytes are valid. So the
 * decoder accepts a payload ≥ 8 + size and ignores the padding, but rejects (EINVAL) a {@code size}
 * beyond the payload, an argsz below 8 + size, and an argsz beyond the payload (it would claim bytes that
 * are not there). The encoder sends no padding (8 + size bytes). Stream semantics (a reply with size 0 ends
 * STOP_COPY data) are the caller's.
 *
 * <p>{@link #data()} is a slice of the decoded input (no copy, padding excluded): valid as long as the
 * input segment. Records compare data by content.
 *
 * <p>The header's encoding and checks live in the package-private {@code MigDataLayout}.
 *
 * @param argsz 8 + size (u32)
 * @param size  bytes returned (u32) = {@code data.byteSize()}
 * @param data  the migration data
 */
public record MigDataReadReply(long argsz, long size, MemorySegment data) implements Reply {
    /** Size of the part before the data. */
    public static final int FIXED_SIZE = MigDataLayout.FIXED_SIZE;

    public MigDataReadReply {
        MigDataLayout.checkComponents(argsz, size, data);
    }

    /** A reply carrying {@code data}, with argsz = 8 + its length. */
    public MigDataReadReply(MemorySegment data) {
        this(FIXED_SIZE + data.byteSize(), data.byteSize(), data);
    }

    @Override
    public Command command() {
        return Command.MIG_DATA_READ;
    }

    @Override
    public int fixedSize() {
        return FIXED_SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        MigDataLayout.encode(dst, argsz, size);
    }

    /** @throws VfioUserException EINVAL if shorter than 8 bytes or inconsistent (see the class comment) */
    public static MigDataReadReply decode(MemorySegment payload) {
        return DataTail.split(payload, FIXED_SIZE, "MIG_DATA_READ reply", MigDataReadReply::decode);
    }

    /**
     * Checks a whole reply payload exactly as {@link #decode(MemorySegment)} does and returns its {@code size},
     * without creating a record or a slice (the migration hot path); the data is the {@code size} bytes at
     * {@link #FIXED_SIZE}.
     *
     * @throws VfioUserException as {@link #decode(MemorySegment)}
     */
    public static long checkedSize(MemorySegment payload) {
        Wire.requireAtLeast(payload, FIXED_SIZE, "MIG_DATA_READ reply");
        long argsz = Wire.u32(payload, MigDataLayout.ARGSZ_OFFSET);
        long size = Wire.u32(payload, MigDataLayout.SIZE_OFFSET);
        long rest = payload.byteSize() - FIXED_SIZE;
        if (size > rest || argsz < FIXED_SIZE + size || argsz > FIXED_SIZE + rest) {
            return decode(payload).size(); // throws with the detailed message
        }
        return size;
    }

    /**
     * Decodes a reply whose fixed part and the rest were received into separate segments; {@code rest}
     * may include libvfio-user's padding.
     *
     * @throws VfioUserException EINVAL if {@code fixed} is not 8 bytes, size exceeds {@code rest}, or
     *                           argsz is below 8 + size or beyond 8 + {@code rest}
     */
    public static MigDataReadReply decode(MemorySegment fixed, MemorySegment rest) {
        MigDataLayout.Fixed f = MigDataLayout.decode(fixed, "MIG_DATA_READ reply");
        long argsz = f.argsz();
        long size = f.size();
        if (size > rest.byteSize()) {
            throw VfioUserException.einval("MIG_DATA_READ reply: size " + size + " but only " + rest.byteSize()
                    + " data bytes");
        }
        if (argsz < FIXED_SIZE + size || argsz > FIXED_SIZE + rest.byteSize()) {
            throw VfioUserException.einval("MIG_DATA_READ reply: argsz " + argsz + " for size " + size
                    + " and payload " + (FIXED_SIZE + rest.byteSize()));
        }
        return new MigDataReadReply(argsz, size, rest.asSlice(0, size));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof MigDataReadReply r && r.argsz == argsz && r.size == size
                && Fields.sameBytes(r.data, data);
    }

    @Override
    public int hashCode() {
        return DataTail.hash(argsz, size);
    }
}
