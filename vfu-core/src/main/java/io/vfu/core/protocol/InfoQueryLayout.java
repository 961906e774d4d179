package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.u32;

import java.lang.foreign.MemorySegment;

/**
 * The request side of the VFIO-style "get info" structs (protocol reference §8.1, §8.3, §8.4, §8.5):
 * {@link DeviceInfoRequest}, {@link RegionInfoRequest}, {@link RegionIoFdsRequest} and
 * {@link IrqInfoRequest} send the whole struct the reply fills in, with only {@code argsz} and (except
 * DEVICE_GET_INFO) the {@code index} set and every other field 0.
 *
 * <pre>
 *  0        4        8        12       ...   size
 * +--------+--------+--------+--------+ - - +
 * | argsz  | flags  | index  |   0 ...      |   flags and everything after index are 0
 * +--------+--------+--------+--------+ - - +
 * </pre>
 *
 * <p>The shared decoding rule (libvfio-user's, EINVAL): a payload of at least the struct size and
 * {@code argsz ≥} the struct size; the "other fields must be zero" rule is not checked (ambiguity #31)
 * except by {@link RegionIoFdsRequest}, which adds its own checks. Package-private: the records are the API.
 */
final class InfoQueryLayout {
    static final int ARGSZ_OFFSET = 0;
    static final int FLAGS_OFFSET = 4;
    static final int INDEX_OFFSET = 8;

    private InfoQueryLayout() {
    }

    /** Writes {@code argsz} and zeros to the first {@code size} bytes of {@code dst}. */
    static void encode(MemorySegment dst, int size, long argsz) {
        dst.asSlice(0, size).fill((byte) 0);
        putU32(dst, ARGSZ_OFFSET, argsz);
    }

    /** Writes {@code argsz}, {@code index} and zeros to the first {@code size} bytes of {@code dst}. */
    static void encode(MemorySegment dst, int size, long argsz, long index) {
        encode(dst, size, argsz);
        putU32(dst, INDEX_OFFSET, index);
    }

    /**
     * Checks the payload and returns {@code argsz}.
     *
     * @param size the struct size, the least payload and argsz accepted
     * @param what the message name for errors, e.g. {@code "DEVICE_GET_IRQ_INFO"}
     * @throws VfioUserException EINVAL if the payload is shorter than {@code size} or argsz &lt; {@code size}
     */
    static long decodeArgsz(MemorySegment payload, int size, String what) {
        Wire.requireAtLeast(payload, size, what);
        long argsz = u32(payload, ARGSZ_OFFSET);
        Fields.requireArgszAtLeast(argsz, size, what);
        return argsz;
    }

    /** The {@code index} field (u32). */
    static long index(MemorySegment payload) {
        return u32(payload, INDEX_OFFSET);
    }
}
