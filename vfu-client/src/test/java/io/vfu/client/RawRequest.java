package io.vfu.client;

import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.Request;
import java.lang.foreign.MemorySegment;

/** A test command of arbitrary bytes (to send what our records would refuse to encode). */
record RawRequest(Command command, MemorySegment data) implements Request {
    @Override
    public int fixedSize() {
        return 0;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
    }
}
