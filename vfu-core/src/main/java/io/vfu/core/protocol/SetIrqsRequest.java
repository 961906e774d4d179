package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.hex;
import static io.vfu.core.protocol.Wire.i32;
import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.u32;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * DEVICE_SET_IRQS request (command 8, protocol reference §8.6). The reply is header-only:
 * {@link SetIrqsReply}. Eventfds (DATA_EVENTFD) travel as SCM_RIGHTS and are not part of this record.
 *
 * <pre>
 *  0        4        8        12       16       20
 * +--------+--------+--------+--------+--------+-------------------------+
 * | argsz  | flags  | index  | start  | count  | data (DATA_BOOL: count) |
 * +--------+--------+--------+--------+--------+-------------------------+
 * flags: exactly one of DATA_NONE 0x01 / DATA_BOOL 0x02 / DATA_EVENTFD 0x04
 *        and exactly one of ACTION_MASK 0x08 / ACTION_UNMASK 0x10 / ACTION_TRIGGER 0x20
 * </pre>
 *
 * <p>Validation done here (all EINVAL), i.e. everything that does not depend on the device:
 * payload ≥ 20; argsz ≥ 20 (libvfio-user; argsz is the request size, QEMU sends 20 with eventfds);
 * no flag bits beyond the six; exactly one DATA and one ACTION bit; {@code start + count} fits u32;
 * DATA_BOOL: exactly {@code count} data bytes after the fixed part; other data types: no data bytes;
 * {@code count == 0} only as the "disable all" form DATA_NONE + ACTION_TRIGGER with {@code start == 0}
 * (libvfio-user's rule). Left to the server: index &lt; num_irqs, start/count within the vectors of the
 * index, ERR/REQ rules, fd count == count.
 *
 * <p>A decoded {@link #data()} is a slice of the decoded payload, valid as long as it is. Equality
 * compares the data bytes.
 *
 * @param argsz size of the request, 20 + data bytes
 * @param flags one DATA bit and one ACTION bit
 * @param index IRQ type, see {@link IrqIndex} (u32)
 * @param start first vector (u32)
 * @param count number of vectors (u32)
 * @param data  DATA_BOOL: one byte per vector (only the value 1 means true, as in libvfio-user);
 *              otherwise empty
 */
public record SetIrqsRequest(long argsz, int flags, long index, long start, long count, MemorySegment data)
        implements Request {
    public static final int FIXED_SIZE = 20;
    public static final int DATA_NONE = 0x01;
    public static final int DATA_BOOL = 0x02;
    public static final int DATA_EVENTFD = 0x04;
    public static final int ACTION_MASK = 0x08;
    public static final int ACTION_UNMASK = 0x10;
    public static final int ACTION_TRIGGER = 0x20;
    public static final int DATA_TYPE_MASK = DATA_NONE | DATA_BOOL | DATA_EVENTFD;
    public static final int ACTION_TYPE_MASK = ACTION_MASK | ACTION_UNMASK | ACTION_TRIGGER;

    public SetIrqsRequest {
        if (data == null) {
            data = Wire.EMPTY;
        }
    }

    /** A request without data bytes (DATA_NONE or DATA_EVENTFD); argsz 20. */
    public SetIrqsRequest(int flags, long index, long start, long count) {
        this(FIXED_SIZE, flags, index, start, count, Wire.EMPTY);
    }

    /** A DATA_BOOL request: argsz 20 + bools.length, count = bools.length, 1 = true. */
    public static SetIrqsRequest bools(int action, long index, long start, boolean... bools) {
        byte[] bytes = new byte[bools.length];
        for (int i = 0; i < bools.length; i++) {
            bytes[i] = (byte) (bools[i] ? 1 : 0);
        }
        return new SetIrqsRequest(FIXED_SIZE + bytes.length, DATA_BOOL | action, index, start, bytes.length,
                MemorySegment.ofArray(bytes));
    }

    /** The DATA_* bit of {@link #flags}. */
    public int dataType() {
        return flags & DATA_TYPE_MASK;
    }

    /** The ACTION_* bit of {@link #flags}. */
    public int action() {
        return flags & ACTION_TYPE_MASK;
    }

    /** DATA_BOOL: whether vector {@code start + i} is selected (data byte == 1); otherwise true. */
    public boolean selected(int i) {
        if (dataType() != DATA_BOOL) {
            return true;
        }
        return data.get(ValueLayout.JAVA_BYTE, i) == 1;
    }

    @Override
    public Command command() {
        return Command.DEVICE_SET_IRQS;
    }

    @Override
    public int fixedSize() {
        return FIXED_SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        putU32(dst, 0, argsz);
        putU32(dst, 4, flags);
        putU32(dst, 8, index);
        putU32(dst, 12, start);
        putU32(dst, 16, count);
    }

    /** See the class comment for the checks. */
    public static SetIrqsRequest decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, FIXED_SIZE, "DEVICE_SET_IRQS");
        return decode(payload.asSlice(0, FIXED_SIZE), payload.asSlice(FIXED_SIZE));
    }

    /**
     * Decodes a request whose fixed 20 bytes and data tail were read separately.
     *
     * @throws VfioUserException EINVAL for any of the violations listed in the class comment
     */
    public static SetIrqsRequest decode(MemorySegment fixed, MemorySegment data) {
        Wire.requireExactly(fixed, FIXED_SIZE, "DEVICE_SET_IRQS");
        long argsz = u32(fixed, 0);
        int flags = i32(fixed, 4);
        long index = u32(fixed, 8);
        long start = u32(fixed, 12);
        long count = u32(fixed, 16);
        String what = "DEVICE_SET_IRQS index " + index + " start " + start + " count " + count;
        Fields.requireArgszAtLeast(argsz, FIXED_SIZE, what);
        if ((flags & ~(DATA_TYPE_MASK | ACTION_TYPE_MASK)) != 0) {
            throw new VfioUserException(Errno.EINVAL, what + ": invalid flags " + hex(flags & 0xFFFF_FFFFL));
        }
        if (Integer.bitCount(flags & DATA_TYPE_MASK) != 1 || Integer.bitCount(flags & ACTION_TYPE_MASK) != 1) {
            throw new VfioUserException(Errno.EINVAL,
                    what + ": flags " + hex(flags) + " need exactly one DATA and one ACTION bit");
        }
        if (start + count > 0xFFFF_FFFFL) {
            throw new VfioUserException(Errno.EINVAL, what + ": start + count overflows u32");
        }
        if (count == 0 && (start != 0 || flags != (DATA_NONE | ACTION_TRIGGER))) {
            throw new VfioUserException(Errno.EINVAL,
                    what + ": count 0 is only valid as DATA_NONE|ACTION_TRIGGER with start 0 (disable all)");
        }
        long expected = (flags & DATA_BOOL) != 0 ? count : 0;
        if (data.byteSize() != expected) {
            throw new VfioUserException(Errno.EINVAL,
                    what + ": " + data.byteSize() + " data bytes, expected " + expected);
        }
        return new SetIrqsRequest(argsz, flags, index, start, count, data);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SetIrqsRequest r && argsz == r.argsz && flags == r.flags && index == r.index
                && start == r.start && count == r.count && data.byteSize() == r.data.byteSize()
                && data.mismatch(r.data) == -1;
    }

    @Override
    public int hashCode() {
        int h = Long.hashCode(argsz);
        h = 31 * h + flags;
        h = 31 * h + Long.hashCode(index);
        h = 31 * h + Long.hashCode(start);
        h = 31 * h + Long.hashCode(count);
        for (byte b : data.toArray(ValueLayout.JAVA_BYTE)) {
            h = 31 * h + b;
        }
        return h;
    }

    @Override
    public String toString() {
        return "SetIrqsRequest[argsz=" + argsz + ", flags=" + hex(flags) + ", index=" + index + ", start=" + start
                + ", count=" + count + ", data=" + data.byteSize() + " bytes]";
    }
}
