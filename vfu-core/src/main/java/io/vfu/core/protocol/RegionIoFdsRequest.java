package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.i32;
import static io.vfu.core.protocol.Wire.u32;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;

/**
 * DEVICE_GET_REGION_IO_FDS request (command 6, protocol reference §8.4).
 *
 * <pre>
 *  0        4        8        12       16
 * +--------+--------+--------+--------+
 * | argsz  | flags  | index  | count  |   request: flags 0, count 0
 * +--------+--------+--------+--------+
 * </pre>
 *
 * <p>As libvfio-user (all EINVAL): payload ≥ 16, 16 ≤ argsz ≤ 1 MiB, flags 0, count 0. The index is
 * checked by the server.
 *
 * <p>Encoding lives in the package-private {@code InfoQueryLayout}; the checks above are this message's own.
 *
 * @param argsz largest reply payload the client accepts (16 to learn the count, then 16 + entries)
 * @param index region index (u32)
 */
public record RegionIoFdsRequest(long argsz, long index) implements Request {
    public static final int SIZE = 16;
    /** Largest argsz accepted (libvfio-user's bound). */
    public static final long MAX_ARGSZ = 1024 * 1024;

    public RegionIoFdsRequest(long index) {
        this(SIZE, index);
    }

    @Override
    public Command command() {
        return Command.DEVICE_GET_REGION_IO_FDS;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        InfoQueryLayout.encode(dst, SIZE, argsz, index);
    }

    /** @throws VfioUserException EINVAL if payload &lt; 16, argsz outside 16..1 MiB, flags ≠ 0 or count ≠ 0 */
    public static RegionIoFdsRequest decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, SIZE, "DEVICE_GET_REGION_IO_FDS");
        long argsz = u32(payload, 0);
        int flags = i32(payload, 4);
        long index = u32(payload, 8);
        long count = u32(payload, 12);
        String what = "DEVICE_GET_REGION_IO_FDS region " + index;
        if (argsz < SIZE || argsz > MAX_ARGSZ) {
            throw new VfioUserException(Errno.EINVAL, what + ": argsz " + argsz + " outside " + SIZE + ".." + MAX_ARGSZ);
        }
        if (flags != 0) {
            throw new VfioUserException(Errno.EINVAL, what + ": flags " + Wire.hex(flags & 0xFFFF_FFFFL) + " (must be 0)");
        }
        if (count != 0) {
            throw new VfioUserException(Errno.EINVAL, what + ": count " + count + " (must be 0)");
        }
        return new RegionIoFdsRequest(argsz, index);
    }
}
