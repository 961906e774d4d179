package io.vfu.core.transport;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A native buffer kept between uses, e.g. the reply buffer of a kind of call: one thread at a time takes it
 * (another one meanwhile gets a buffer of its own, which is kept afterwards instead), so a repeated operation
 * allocates and zero-fills nothing. Buffers are freed by the GC once no longer kept.
 */
public final class SpareBuffer {
    private final AtomicReference<MemorySegment> spare = new AtomicReference<>();
    private final long minimum;

    /** @param minimum the least size allocated, so that slightly larger requests do not each allocate anew */
    public SpareBuffer(long minimum) {
        this.minimum = minimum;
    }

    /** The kept buffer if it is free and holds {@code size} bytes, else a new one; hand it back with {@link #giveBack}. */
    public MemorySegment take(long size) {
        MemorySegment b = spare.getAndSet(null);
        if (b == null || b.byteSize() < size) {
            b = Arena.ofAuto().allocate(Math.max(size, minimum), 8);
        }
        return b;
    }

    /** Keeps {@code buffer} for the next {@link #take}; nothing may write into it any more. */
    public void giveBack(MemorySegment buffer) {
        spare.set(buffer);
    }

    /** Stops keeping the buffer (the GC frees it), e.g. when the uses it served have ended. */
    public void clear() {
        spare.set(null);
    }
}
