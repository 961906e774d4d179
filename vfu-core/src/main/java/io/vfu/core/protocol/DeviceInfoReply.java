package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.i32;
import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.u32;

import java.lang.foreign.MemorySegment;

/**
 * DEVICE_GET_INFO reply (command 4, protocol reference §8.1): same 16-byte layout as the request.
 *
 * @param argsz      16
 * @param flags      {@link #FLAG_RESET} | {@link #FLAG_PCI}
 * @param numRegions number of regions (PCI: ≥ 9)
 * @param numIrqs    number of IRQ index types (PCI: 5)
 */
public record DeviceInfoReply(long argsz, int flags, long numRegions, long numIrqs) implements Reply {
    public static final int SIZE = 16;
    /** {@code VFIO_DEVICE_FLAGS_RESET}: DEVICE_RESET is supported. */
    public static final int FLAG_RESET = 0x1;
    /** {@code VFIO_DEVICE_FLAGS_PCI}: a PCI device (the only kind in 0.9.2). */
    public static final int FLAG_PCI = 0x2;

    public DeviceInfoReply(int flags, long numRegions, long numIrqs) {
        this(SIZE, flags, numRegions, numIrqs);
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
        putU32(dst, 4, flags);
        putU32(dst, 8, numRegions);
        putU32(dst, 12, numIrqs);
    }

    /**
     * Flags bits other than RESET and PCI are kept (a newer server may define more); the client decides
     * what it needs.
     *
     * @throws VfioUserException EINVAL if the payload is not 16 bytes or argsz is not 16
     */
    public static DeviceInfoReply decode(MemorySegment payload) {
        Wire.requireExactly(payload, SIZE, "DEVICE_GET_INFO reply");
        long argsz = u32(payload, 0);
        Fields.requireArgszAtLeast(argsz, SIZE, "DEVICE_GET_INFO reply");
        return new DeviceInfoReply(argsz, i32(payload, 4), u32(payload, 8), u32(payload, 12));
    }
}
