package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.u32;

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
 * @param argsz 8 + size (u32)
 * @param size  bytes returned (u32) = {@code data.byteSize()}
 * @param data  the migration data
 */
public record MigDataReadReply(long argsz, long size, MemorySegment data) implements Reply {
    /** Size of the part before the data. */
    public static final int FIXED_SIZE = 8;

    public MigDataReadReply {
        Fields.requireU32(argsz, "argsz");
        Fields.requireU32(size, "size");
        if (data.byteSize() != size) {
            throw new IllegalArgumentException("size " + size + " != data length " + data.byteSize());
        }
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
        putU32(dst, 0, argsz);
        putU32(dst, 4, size);
    }

    /** @throws VfioUserException EINVAL if shorter than 8 bytes or inconsistent (see the class comment) */
    public static MigDataReadReply decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, FIXED_SIZE, "MIG_DATA_READ reply");
        return decode(payload.asSlice(0, FIXED_SIZE), payload.asSlice(FIXED_SIZE));
    }

    /**
     * Decodes a reply whose fixed part and the rest were received into separate segments; {@code rest}
     * may include libvfio-user's padding.
     *
     * @throws VfioUserException EINVAL if {@code fixed} is not 8 bytes, size exceeds {@code rest}, or
     *                           argsz is below 8 + size or beyond 8 + {@code rest}
     */
    public static MigDataReadReply decode(MemorySegment fixed, MemorySegment rest) {
        Wire.requireExactly(fixed, FIXED_SIZE, "MIG_DATA_READ reply");
        long argsz = u32(fixed, 0);
        long size = u32(fixed, 4);
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
        return Long.hashCode(argsz) * 31 + Long.hashCode(size);
    }
}
