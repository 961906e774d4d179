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
 * DMA_MAP request (command 2, protocol reference §7.1): the client makes a range of its memory
 * available for device DMA, optionally backed by one fd sent with SCM_RIGHTS (the fd is not part of
 * this record). The reply is header-only: {@link DmaMapReply}.
 *
 * <pre>
 *  0        4        8                 16                24                32
 * +--------+--------+-----------------+-----------------+-----------------+
 * | argsz  | flags  |     offset      |     address     |      size       |
 * +--------+--------+-----------------+-----------------+-----------------+
 * flags: bit 0 READ (device may read), bit 1 WRITE (device may write)
 * </pre>
 *
 * <p>Decisions:
 * <ul>
 * <li>libvfio-user's non-standard flags MMAP (0x4) and FILE_IO (0x8) are <em>not</em> accepted: any bit
 *     other than READ/WRITE fails with EINVAL (ambiguity #10: "client sends only R/W; server rejects
 *     unknown"). The constants exist so the rejection message can name them.</li>
 * <li>{@code size} 0 fails with EINVAL: an empty mapping can never be used or unmapped.</li>
 * <li>{@code address + size} and {@code offset + size} must not overflow u64 (EINVAL).</li>
 * <li>{@code argsz} is the request size here (§6): it must be ≥ 32. Payload bytes after the first 32
 *     are ignored, as libvfio-user does.</li>
 * </ul>
 *
 * @param argsz   size of the request structure (32)
 * @param flags   {@link #FLAG_READ} | {@link #FLAG_WRITE}
 * @param offset  offset of the range inside the passed fd, 0 without fd (u64)
 * @param address base DMA address, the guest IOVA (u64)
 * @param size    length in bytes (u64, &gt; 0)
 */
public record DmaMapRequest(long argsz, int flags, long offset, long address, long size) implements Request {
    public static final int SIZE = 32;
    /** {@code VFIO_USER_F_DMA_REGION_READ}: the device may read the range. */
    public static final int FLAG_READ = 0x1;
    /** {@code VFIO_USER_F_DMA_REGION_WRITE}: the device may write the range. */
    public static final int FLAG_WRITE = 0x2;
    /** libvfio-user extension (not accepted here): the fd must be mmap'ed. */
    public static final int LVU_FLAG_MMAP = 0x4;
    /** libvfio-user extension (not accepted here): access through pread/pwrite on the fd. */
    public static final int LVU_FLAG_FILE_IO = 0x8;

    public DmaMapRequest(int flags, long offset, long address, long size) {
        this(SIZE, flags, offset, address, size);
    }

    public boolean readable() {
        return (flags & FLAG_READ) != 0;
    }

    public boolean writable() {
        return (flags & FLAG_WRITE) != 0;
    }

    @Override
    public Command command() {
        return Command.DMA_MAP;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        putU32(dst, 0, argsz);
        putU32(dst, 4, flags);
        putU64(dst, 8, offset);
        putU64(dst, 16, address);
        putU64(dst, 24, size);
    }

    /**
     * @throws VfioUserException EINVAL if the payload is shorter than 32 bytes, argsz &lt; 32, a flag other
     *                           than READ/WRITE is set, size is 0, or address + size or offset + size
     *                           overflows u64
     */
    public static DmaMapRequest decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, SIZE, "DMA_MAP");
        long argsz = u32(payload, 0);
        int flags = i32(payload, 4);
        long offset = u64(payload, 8);
        long address = u64(payload, 16);
        long size = u64(payload, 24);
        Fields.requireArgszAtLeast(argsz, SIZE, "DMA_MAP");
        if ((flags & ~(FLAG_READ | FLAG_WRITE)) != 0) {
            String what = (flags & (LVU_FLAG_MMAP | LVU_FLAG_FILE_IO)) != 0
                    ? " (libvfio-user MMAP/FILE_IO extension not supported)" : "";
            throw new VfioUserException(Errno.EINVAL, "DMA_MAP: invalid flags " + hex(flags & 0xFFFF_FFFFL) + what);
        }
        if (size == 0) {
            throw new VfioUserException(Errno.EINVAL, "DMA_MAP: size 0 at address " + hex(address));
        }
        if (Long.compareUnsigned(address + size, address) < 0) {
            throw new VfioUserException(Errno.EINVAL,
                    "DMA_MAP: address " + hex(address) + " + size " + hex(size) + " overflows u64");
        }
        if (Long.compareUnsigned(offset + size, offset) < 0) {
            throw new VfioUserException(Errno.EINVAL,
                    "DMA_MAP: offset " + hex(offset) + " + size " + hex(size) + " overflows u64");
        }
        return new DmaMapRequest(argsz, flags, offset, address, size);
    }
}
