package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.i32;
import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.u32;

import java.lang.foreign.MemorySegment;

/**
 * DEVICE_GET_IRQ_INFO reply (command 7, protocol reference §8.5): same 16-byte layout as
 * {@link IrqInfoRequest}.
 *
 * <p>Flag bits beyond the four defined ones are kept, not rejected (a newer server may define more).
 * Clients must not depend on {@link #FLAG_MASKABLE} (ambiguity #17: libvfio-user reports EVENTFD only
 * but accepts MASK/UNMASK).
 *
 * @param argsz 16
 * @param flags {@link #FLAG_EVENTFD} | {@link #FLAG_MASKABLE} | {@link #FLAG_AUTOMASKED} | {@link #FLAG_NORESIZE}
 * @param index echo of the request's IRQ type (u32)
 * @param count number of vectors of this type, 0 = not implemented (u32)
 */
public record IrqInfoReply(long argsz, int flags, long index, long count) implements Reply {
    public static final int SIZE = 16;
    /** {@code VFIO_IRQ_INFO_EVENTFD}: can signal through an eventfd. */
    public static final int FLAG_EVENTFD = 0x1;
    /** {@code VFIO_IRQ_INFO_MASKABLE}: MASK/UNMASK supported. */
    public static final int FLAG_MASKABLE = 0x2;
    /** {@code VFIO_IRQ_INFO_AUTOMASKED}: masks itself after firing; the client must UNMASK. */
    public static final int FLAG_AUTOMASKED = 0x4;
    /** {@code VFIO_IRQ_INFO_NORESIZE}: vectors are set up as a whole set. */
    public static final int FLAG_NORESIZE = 0x8;

    public IrqInfoReply(int flags, long index, long count) {
        this(SIZE, flags, index, count);
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
        putU32(dst, 0, argsz);
        putU32(dst, 4, flags);
        putU32(dst, 8, index);
        putU32(dst, 12, count);
    }

    /** @throws VfioUserException EINVAL if the payload is not 16 bytes or argsz &lt; 16 */
    public static IrqInfoReply decode(MemorySegment payload) {
        Wire.requireExactly(payload, SIZE, "DEVICE_GET_IRQ_INFO reply");
        long argsz = u32(payload, 0);
        Fields.requireArgszAtLeast(argsz, SIZE, "DEVICE_GET_IRQ_INFO reply");
        return new IrqInfoReply(argsz, i32(payload, 4), u32(payload, 8), u32(payload, 12));
    }
}
