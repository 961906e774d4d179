package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.u32;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;

/**
 * DEVICE_GET_INFO request (command 4, protocol reference §8.1).
 *
 * <pre>
 *  0        4        8             12         16
 * +--------+--------+-------------+----------+
 * | argsz  | flags  | num_regions | num_irqs |   request: flags, num_regions, num_irqs are 0
 * +--------+--------+-------------+----------+
 * </pre>
 *
 * <p>The "other fields must be zero" rule is not checked (ambiguity #31: libvfio-user does not either).
 *
 * @param argsz the largest reply payload the client accepts (≥ 16)
 */
public record DeviceInfoRequest(long argsz) implements Request {
    public static final int SIZE = 16;

    public DeviceInfoRequest() {
        this(SIZE);
    }

    @Override
    public Command command() {
        return Command.DEVICE_GET_INFO;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        putU32(dst, 0, argsz);
        putU32(dst, 4, 0);
        putU32(dst, 8, 0);
        putU32(dst, 12, 0);
    }

    /** @throws VfioUserException EINVAL if the payload is shorter than 16 bytes or argsz &lt; 16 */
    public static DeviceInfoRequest decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, SIZE, "DEVICE_GET_INFO");
        long argsz = u32(payload, 0);
        if (argsz < SIZE) {
            throw new VfioUserException(Errno.EINVAL, "DEVICE_GET_INFO: argsz " + argsz + " < " + SIZE);
        }
        return new DeviceInfoRequest(argsz);
    }
}
