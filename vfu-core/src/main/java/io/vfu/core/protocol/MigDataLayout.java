package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.u32;

import java.lang.foreign.MemorySegment;

/**
 * The 8-byte {@code argsz, size} header of MIG_DATA_READ and MIG_DATA_WRITE (commands 17 and 18, protocol
 * reference §11.5, §11.6), shared by {@link MigDataReadRequest} (header alone), {@link MigDataReadReply}
 * and {@link MigDataWriteRequest} (header followed by {@code size} data bytes).
 *
 * <pre>
 *  0               4               8
 * +---------------+---------------+---------------...
 * |  argsz (u32)  |  size (u32)   | data (size bytes, if any)
 * +---------------+---------------+---------------...
 * </pre>
 *
 * <p>Both requests must have {@code argsz ≥ 8 + size} (libvfio-user: EINVAL); the reply's argsz rules
 * (it may be padded) are {@link MigDataReadReply}'s. Package-private: the records are the API.
 */
final class MigDataLayout {
    static final int ARGSZ_OFFSET = 0;
    static final int SIZE_OFFSET = 4;
    /** Size of the header (the part before the data). */
    static final int FIXED_SIZE = 8;

    private MigDataLayout() {
    }

    /** The two header fields, as read from the wire (both u32). */
    record Fixed(long argsz, long size) {
    }

    /** For record constructors: argsz and size are u32 (IllegalArgumentException otherwise). */
    static void checkComponents(long argsz, long size) {
        Fields.requireU32(argsz, "argsz");
        Fields.requireU32(size, "size");
    }

    /** For record constructors with data: as {@link #checkComponents(long, long)}, and size = data length. */
    static void checkComponents(long argsz, long size, MemorySegment data) {
        checkComponents(argsz, size);
        DataTail.requireLength(data, size, "size");
    }

    static void encode(MemorySegment dst, long argsz, long size) {
        putU32(dst, ARGSZ_OFFSET, argsz);
        putU32(dst, SIZE_OFFSET, size);
    }

    /**
     * Reads the header.
     *
     * @param what the message name for errors, e.g. {@code "MIG_DATA_READ reply"}
     * @throws VfioUserException EINVAL if {@code fixed} is not 8 bytes
     */
    static Fixed decode(MemorySegment fixed, String what) {
        Wire.requireExactly(fixed, FIXED_SIZE, what);
        return new Fixed(u32(fixed, ARGSZ_OFFSET), u32(fixed, SIZE_OFFSET));
    }

    /**
     * Reads a request's header: as {@link #decode}, and {@code argsz ≥ 8 + size}.
     *
     * @param what the message name for errors, e.g. {@code "MIG_DATA_WRITE"}
     * @throws VfioUserException EINVAL if {@code fixed} is not 8 bytes or argsz &lt; 8 + size
     */
    static Fixed decodeRequest(MemorySegment fixed, String what) {
        Fixed f = decode(fixed, what);
        if (f.argsz() < FIXED_SIZE + f.size()) {
            throw VfioUserException.einval(what + ": argsz " + f.argsz() + " < 8 + size " + f.size());
        }
        return f;
    }
}
