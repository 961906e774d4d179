package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * The payload of one vfio-user message (everything after the 16-byte {@link Header}), as an encoder.
 *
 * <p>A payload is a fixed part, encoded by {@link #encodeFixed}, followed by an optional data tail,
 * {@link #data()}, that the transport sends straight from its segment (no copy). Encoders are pure:
 * they write only into the segment they are given.
 */
public sealed interface Payload permits Request, Reply {
    /** The command this payload belongs to. */
    Command command();

    /** Number of bytes {@link #encodeFixed} writes. */
    int fixedSize();

    /** Writes the fixed part into {@code dst}, which is at least {@link #fixedSize()} bytes long. */
    void encodeFixed(MemorySegment dst);

    /** The data tail sent after the fixed part; empty by default. Owned by the caller. */
    default MemorySegment data() {
        return Wire.EMPTY;
    }

    /** The whole payload size: fixed part plus data tail. */
    default long payloadSize() {
        return fixedSize() + data().byteSize();
    }

    /** Encodes the whole payload into a new heap segment (tests and cold paths). */
    default MemorySegment toSegment() {
        MemorySegment out = MemorySegment.ofArray(new byte[Math.toIntExact(payloadSize())]);
        encodeFixed(out);
        MemorySegment data = data();
        if (data.byteSize() > 0) {
            out.asSlice(fixedSize()).copyFrom(data);
        }
        return out;
    }
}
