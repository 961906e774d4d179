package io.vfu.core.protocol;

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
 * <p>Encoding and the shared argsz checks live in the package-private {@code InfoQueryLayout}.
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
        InfoQueryLayout.encode(dst, SIZE, argsz, index);
    }

    /** @throws VfioUserException EINVAL if the payload is shorter than 32 bytes or argsz &lt; 32 */
    public static RegionInfoRequest decode(MemorySegment payload) {
        long argsz = InfoQueryLayout.decodeArgsz(payload, SIZE, "DEVICE_GET_REGION_INFO");
        return new RegionInfoRequest(argsz, InfoQueryLayout.index(payload));
    }
}
