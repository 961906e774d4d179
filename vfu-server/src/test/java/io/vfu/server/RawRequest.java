package io.vfu.server;

import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.Request;
import java.lang.foreign.MemorySegment;

/** Exactly these payload bytes for a command: what a broken client would send, bypassing encoder checks. */
record RawRequest(Command command, byte[] bytes) implements Request {
    /** Hand-written hex ("10 00 ...") to bytes. */
    static byte[] hex(String text) {
        return java.util.HexFormat.of().parseHex(text.replaceAll("\\s+", ""));
    }

    @Override
    public int fixedSize() {
        return bytes.length;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        dst.copyFrom(MemorySegment.ofArray(bytes));
    }
}
