package io.vfu.server.internal;

import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.Reply;
import java.lang.foreign.MemorySegment;

/**
 * A data-less reply padded with zeros to a given payload length. libvfio-user's clients read exactly the
 * length they asked for (e.g. GET_REGION_INFO "argsz too small": min(needed, argsz) bytes, protocol reference
 * §8.3), so the padding keeps their stream in sync.
 */
record PaddedReply(Reply inner, MemorySegment zeros) implements Reply {
    static Reply pad(Reply inner, long payloadLength) {
        long extra = payloadLength - inner.fixedSize();
        if (extra <= 0 || inner.data().byteSize() != 0) {
            return inner;
        }
        return new PaddedReply(inner, MemorySegment.ofArray(new byte[Math.toIntExact(extra)]));
    }

    @Override
    public Command command() {
        return inner.command();
    }

    @Override
    public int fixedSize() {
        return inner.fixedSize();
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        inner.encodeFixed(dst);
    }

    @Override
    public MemorySegment data() {
        return zeros;
    }
}
