package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;
import java.util.HexFormat;

/** Test helper: hand-written hex bytes ("05 00 09 00 ...") to segments and back. */
final class Bytes {
    private Bytes() {
    }

    /** Parses hex text; whitespace and line breaks are ignored. */
    static MemorySegment hex(String text) {
        return MemorySegment.ofArray(HexFormat.of().parseHex(text.replaceAll("\\s+", "")));
    }

    /** The segment as spaced lower-case hex, for readable assertion failures. */
    static String toHex(MemorySegment segment) {
        return HexFormat.ofDelimiter(" ").formatHex(segment.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
    }

    /** Encodes a whole payload and returns it as spaced hex. */
    static String encode(Payload payload) {
        return toHex(payload.toSegment());
    }

    /** Normalises hand-written hex to the format {@link #toHex} produces. */
    static String norm(String text) {
        return toHex(hex(text));
    }
}
