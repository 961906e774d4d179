package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * DEVICE_GET_IRQ_INFO request (command 7, protocol reference §8.5).
 *
 * <pre>
 *  0        4        8        12       16
 * +--------+--------+--------+--------+
 * | argsz  | flags  | index  | count  |   request: flags and count are 0
 * +--------+--------+--------+--------+
 * </pre>
 *
 * <p>The index is not range-checked here: valid indexes depend on the device's {@code num_irqs}
 * (DEVICE_GET_INFO), so the server checks {@code index < num_irqs} (EINVAL; libvfio-user: index ≥ 5).
 * "flags and count must be 0" is not checked (ambiguity #31: libvfio-user does not either).
 *
 * <p>Encoding and the shared argsz checks live in the package-private {@code InfoQueryLayout}.
 *
 * @param argsz largest reply payload the client accepts (≥ 16)
 * @param index the IRQ type, see {@link IrqIndex} (u32)
 */
public record IrqInfoRequest(long argsz, long index) implements Request {
    public static final int SIZE = 16;

    public IrqInfoRequest(long index) {
        this(SIZE, index);
    }

    @Override
    public Command command() {
        return Command.DEVICE_GET_IRQ_INFO;
    }

    @Override
    public int fixedSize() {
        return SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        InfoQueryLayout.encode(dst, SIZE, argsz, index);
    }

    /** @throws VfioUserException EINVAL if the payload is shorter than 16 bytes or argsz &lt; 16 */
    public static IrqInfoRequest decode(MemorySegment payload) {
        long argsz = InfoQueryLayout.decodeArgsz(payload, SIZE, "DEVICE_GET_IRQ_INFO");
        return new IrqInfoRequest(argsz, InfoQueryLayout.index(payload));
    }
}
