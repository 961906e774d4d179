package io.vfu.client;

import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.Reply;
import java.lang.foreign.MemorySegment;

/** A test reply of arbitrary bytes (to send what our records would refuse to encode). */
record RawReply(Command command, MemorySegment data) implements Reply {
    static RawReply of(Command command, byte[] bytes) {
        return new RawReply(command, MemorySegment.ofArray(bytes));
    }

    @Override
    public int fixedSize() {
        return 0;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
    }
}
