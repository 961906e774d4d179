package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.hex;
import static io.vfu.core.protocol.Wire.i32;
import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.putU64;
import static io.vfu.core.protocol.Wire.u32;
import static io.vfu.core.protocol.Wire.u64;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;

/**
 * DMA_UNMAP request (command 3, protocol reference §7.2). The reply echoes these 24 bytes:
 * {@link DmaUnmapReply}.
 *
 * <pre>
 *  0        4        8                 16                24
 * +--------+--------+-----------------+-----------------+
 * | argsz  | flags  |     address     |      size       |
 * +--------+--------+-----------------+-----------------+
 * flags: bit 1 ALL (unmap everything; address and size 0), bit 0 GET_DIRTY_BITMAP (legacy, rejected)
 * </pre>
 *
 * <p>Decisions:
 * <ul>
 * <li>SPEC 0.9.2 calls flags "unused", but QEMU sends {@link #FLAG_ALL} and libvfio-user implements it
 *     (ambiguity #11), so it is accepted, with address and size required to be 0 (EINVAL otherwise).</li>
 * <li>{@link #FLAG_GET_DIRTY_BITMAP} belongs to migration v1, removed in 0.9.2 (§13): EINVAL. Any other
 *     bit: EINVAL (libvfio-user does the same).</li>
 * <li>argsz is the largest reply the client accepts: 24 ≤ argsz ≤ 1 MiB as in libvfio-user
 *     (ambiguity #12), EINVAL otherwise.</li>
 * <li>address + size must not overflow u64 (EINVAL): such a range can never have been mapped. Whether
 *     (address, size) matches a mapping (ENOENT otherwise) is the server's business.</li>
 * <li>Payload bytes after the first 24 are ignored (libvfio-user does not check them either).</li>
 * </ul>
 *
 * @param argsz   largest reply payload the client accepts (send 24)
 * @param flags   0 or {@link #FLAG_ALL}
 * @param address base of a previous mapping (u64)
 * @param size    size of that mapping (u64)
 */
public record DmaUnmapRequest(long argsz, int flags, long address, long size) implements Request {
    public static final int SIZE = 24;
    /** Largest argsz accepted (libvfio-user's bound). */
    public static final long MAX_ARGSZ = 1024 * 1024;
    /** {@code VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP}: migration v1 legacy, rejected with EINVAL. */
    public static final int FLAG_GET_DIRTY_BITMAP = 0x1;
    /** {@code VFIO_DMA_UNMAP_FLAG_ALL}: unmap every mapping; address and size must be 0. */
    public static final int FLAG_ALL = 0x2;

    public DmaUnmapRequest(long address, long size) {
        this(SIZE, 0, address, size);
    }

    /** An UNMAP_ALL request. */
    public static DmaUnmapRequest all() {
        return new DmaUnmapRequest(SIZE, FLAG_ALL, 0, 0);
    }

    public boolean unmapAll() {
        return (flags & FLAG_ALL) != 0;
    }

    @Override
    public Command command() {
        return Command.DMA_UNMAP;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        encode(dst, argsz, flags, address, size);
    }

    static void encode(MemorySegment dst, long argsz, int flags, long address, long size) {
        putU32(dst, 0, argsz);
        putU32(dst, 4, flags);
        putU64(dst, 8, address);
        putU64(dst, 16, size);
    }

    /**
     * @throws VfioUserException EINVAL if the payload is shorter than 24 bytes, argsz is outside 24..1 MiB,
     *                           flags has a bit other than ALL (including the legacy GET_DIRTY_BITMAP),
     *                           ALL comes with a non-zero address or size, or address + size overflows
     */
    public static DmaUnmapRequest decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, SIZE, "DMA_UNMAP");
        long argsz = u32(payload, 0);
        int flags = i32(payload, 4);
        long address = u64(payload, 8);
        long size = u64(payload, 16);
        if (argsz < SIZE || argsz > MAX_ARGSZ) {
            throw new VfioUserException(Errno.EINVAL, "DMA_UNMAP: argsz " + argsz + " outside " + SIZE + ".." + MAX_ARGSZ);
        }
        if ((flags & FLAG_GET_DIRTY_BITMAP) != 0) {
            throw new VfioUserException(Errno.EINVAL,
                    "DMA_UNMAP: flag GET_DIRTY_BITMAP (migration v1) was removed in vfio-user 0.9.2");
        }
        if ((flags & ~FLAG_ALL) != 0) {
            throw new VfioUserException(Errno.EINVAL, "DMA_UNMAP: invalid flags " + hex(flags & 0xFFFF_FFFFL));
        }
        if ((flags & FLAG_ALL) != 0 && (address != 0 || size != 0)) {
            throw new VfioUserException(Errno.EINVAL,
                    "DMA_UNMAP: flag ALL with address " + hex(address) + " size " + hex(size) + " (must be 0)");
        }
        if (Long.compareUnsigned(address + size, address) < 0) {
            throw new VfioUserException(Errno.EINVAL,
                    "DMA_UNMAP: address " + hex(address) + " + size " + hex(size) + " overflows u64");
        }
        return new DmaUnmapRequest(argsz, flags, address, size);
    }
}
