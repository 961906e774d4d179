package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * What every message with a data tail shares (region data, DMA data, migration data, the dirty bitmap):
 * splitting a whole payload into its fixed part and the tail, the record-constructor check that the count
 * field matches the tail, and the record hash over the fixed fields (records compare tails by content with
 * {@link Fields#sameBytes}, so the hash leaves the tail out). Package-private.
 */
final class DataTail {
    private DataTail() {
    }

    /** A message's two-segment decoder, {@code decode(fixed, data)}. */
    @FunctionalInterface
    interface Decoder<T> {
        T decode(MemorySegment fixed, MemorySegment data);
    }

    /**
     * Decodes a whole payload with a two-segment decoder: the first {@code fixedSize} bytes are the fixed
     * part, the rest (a slice, no copy) the data.
     *
     * @throws VfioUserException EINVAL if the payload is shorter than {@code fixedSize}
     */
    static <T> T split(MemorySegment payload, int fixedSize, String what, Decoder<T> decoder) {
        Wire.requireAtLeast(payload, fixedSize, what);
        return decoder.decode(payload.asSlice(0, fixedSize), payload.asSlice(fixedSize));
    }

    /**
     * For record constructors: the count field must equal the data length.
     *
     * @param name the field name for the message, e.g. {@code "count"} or {@code "size"}
     */
    static void requireLength(MemorySegment data, long count, String name) {
        if (data.byteSize() != count) {
            throw new IllegalArgumentException(name + " " + Long.toUnsignedString(count) + " != data length "
                    + data.byteSize());
        }
    }

    /** The hash of a record with two fixed fields and a tail. */
    static int hash(long first, long second) {
        return Long.hashCode(first) * 31 + Long.hashCode(second);
    }

    /** The hash of a record with three fixed fields and a tail. */
    static int hash(long first, long second, long third) {
        return Long.hashCode(first) * 31 + Long.hashCode(second) * 17 + Long.hashCode(third);
    }
}
