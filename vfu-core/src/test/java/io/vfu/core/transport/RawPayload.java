package io.vfu.core.transport;

import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.Reply;
import io.vfu.core.protocol.Request;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;

/** Test payloads: opaque bytes for any command, sent as a data tail. */
record RawPayload(Command command, MemorySegment data) implements Request, Reply {
    static RawPayload of(Command command, String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        MemorySegment seg = Arena.ofAuto().allocate(Math.max(1, bytes.length)).asSlice(0, bytes.length);
        seg.copyFrom(MemorySegment.ofArray(bytes));
        return new RawPayload(command, seg);
    }

    static RawPayload empty(Command command) {
        return new RawPayload(command, MemorySegment.NULL);
    }

    static String text(MemorySegment segment) {
        return new String(segment.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
    }

    @Override
    public int fixedSize() {
        return 0;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
    }
}
