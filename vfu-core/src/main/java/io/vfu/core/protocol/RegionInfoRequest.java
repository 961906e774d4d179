package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.putU64;
import static io.vfu.core.protocol.Wire.u32;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;

/**
 * DEVICE_GET_REGION_INFO request (command 5, protocol reference §8.3): a {@code struct vfio_region_info}
 * in which only argsz and index matter.
 *
 * <pre>
 *  0        4        8        12           16                24                32
 * +--------+--------+--------+------------+-----------------+-----------------+
 * | argsz  | flags  | index  | cap_offset |      size       |     offset      |
 * +--------+--------+--------+------------+-----------------+-----------------+
 * request: flags, cap_offset, size, offset are 0
 * </pre>
 *
 * <p>The "other fields must be zero" rule is not checked (ambiguity #31); the index is checked by the
 * server against its {@code num_regions}. argsz has no upper bound: the server answers
 * {@code min(needed, argsz)} bytes.
 *
 * @param argsz largest reply payload the client accepts (≥ 32; ask with 32, retry with the reply's argsz)
 * @param index region index, see {@link RegionIndex} (u32)
 */
public record RegionInfoRequest(long argsz, long index) implements Request {
    public static final int SIZE = 32;

    public RegionInfoRequest(long index) {
        this(SIZE, index);
    }

    @Override
    public Command command() {
        return Command.DEVICE_GET_REGION_INFO;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        putU32(dst, 0, argsz);
        putU32(dst, 4, 0);
        putU32(dst, 8, index);
        putU32(dst, 12, 0);
        putU64(dst, 16, 0);
        putU64(dst, 24, 0);
    }

    /** @throws VfioUserException EINVAL if the payload is shorter than 32 bytes or argsz &lt; 32 */
    public static RegionInfoRequest decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, SIZE, "DEVICE_GET_REGION_INFO");
        long argsz = u32(payload, 0);
        if (argsz < SIZE) {
            throw new VfioUserException(Errno.EINVAL, "DEVICE_GET_REGION_INFO: argsz " + argsz + " < " + SIZE);
        }
        return new RegionInfoRequest(argsz, u32(payload, 8));
    }
}
