package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * MIG_DATA_READ request (command 17, protocol reference §11.5): read up to {@code size} bytes of the
 * migration stream (allowed in PRE_COPY and STOP_COPY).
 *
 * <pre>
 *  0               4               8
 * +---------------+---------------+
 * |  argsz (u32)  |  size (u32)   |
 * +---------------+---------------+
 * </pre>
 *
 * <p>The decoder requires exactly 8 bytes and {@code argsz ≥ 8 + size} (libvfio-user: EINVAL otherwise);
 * a larger argsz is accepted (it only bounds the reply). {@code size} against the client's
 * {@code max_data_xfer_size} and the migration state are the server's checks.
 *
 * <p>The header's encoding and checks live in the package-private {@code MigDataLayout}.
 *
 * @param argsz the largest reply payload the client accepts (u32); we send {@code 8 + size}
 * @param size  bytes wanted (u32)
 */
public record MigDataReadRequest(long argsz, long size) implements Request {
    public static final int SIZE = MigDataLayout.FIXED_SIZE;

    public MigDataReadRequest {
        MigDataLayout.checkComponents(argsz, size);
    }

    /** A request for {@code size} bytes with argsz = 8 + size. */
    public MigDataReadRequest(long size) {
        this(SIZE + size, size);
    }

    @Override
    public Command command() {
        return Command.MIG_DATA_READ;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        MigDataLayout.encode(dst, argsz, size);
    }

    /** @throws VfioUserException EINVAL if the payload is not 8 bytes or argsz &lt; 8 + size */
    public static MigDataReadRequest decode(MemorySegment payload) {
        MigDataLayout.Fixed f = MigDataLayout.decodeRequest(payload, "MIG_DATA_READ");
        return new MigDataReadRequest(f.argsz(), f.size());
    }

    /**
     * Checks a payload exactly as {@link #decode(MemorySegment)} does and returns its {@code size}, without
     * creating a record (the server's migration hot path).
     *
     * @throws VfioUserException as {@link #decode(MemorySegment)}
     */
    public static long checkedSize(MemorySegment payload) {
        Wire.requireExactly(payload, SIZE, "MIG_DATA_READ");
        long argsz = Wire.u32(payload, MigDataLayout.ARGSZ_OFFSET);
        long size = Wire.u32(payload, MigDataLayout.SIZE_OFFSET);
        if (argsz < SIZE + size) {
            return decode(payload).size(); // throws with the detailed message
        }
        return size;
    }
}
