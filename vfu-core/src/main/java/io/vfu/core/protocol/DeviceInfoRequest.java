package io.vfu.core.protocol;

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
 * <p>Encoding and the shared argsz checks live in the package-private {@code InfoQueryLayout}.
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
        InfoQueryLayout.encode(dst, SIZE, argsz);
    }

    /** @throws VfioUserException EINVAL if the payload is shorter than 16 bytes or argsz &lt; 16 */
    public static DeviceInfoRequest decode(MemorySegment payload) {
        return new DeviceInfoRequest(InfoQueryLayout.decodeArgsz(payload, SIZE, "DEVICE_GET_INFO"));
    }
}
