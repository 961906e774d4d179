package io.vfu.core.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.Size;

/**
 * Any byte sequence fed to a decoder either decodes or fails with a {@link VfioUserException} carrying an
 * errno: never another exception (bounds, arithmetic, allocation).
 */
class DecoderFuzzProperties {

    @Property(tries = 3000)
    void anyRequestPayloadDecodesOrFailsWithErrno(@ForAll Command command, @ForAll("payloads") byte[] bytes) {
        assertDecodesOrErrno(() -> Messages.decodeRequest(command, MemorySegment.ofArray(bytes)));
    }

    @Property(tries = 3000)
    void anyReplyPayloadDecodesOrFailsWithErrno(@ForAll Command command, @ForAll("payloads") byte[] bytes) {
        assertDecodesOrErrno(() -> Messages.decodeReply(command, MemorySegment.ofArray(bytes)));
    }

    /** Payloads that start like a valid fixed part (argsz/size fields near real values) reach deeper checks. */
    @Property(tries = 3000)
    void plausiblePayloadsDecodeOrFailWithErrno(@ForAll Command command, @ForAll("plausible") byte[] bytes,
                                                 @ForAll boolean reply) {
        if (reply) {
            assertDecodesOrErrno(() -> Messages.decodeReply(command, MemorySegment.ofArray(bytes)));
        } else {
            assertDecodesOrErrno(() -> Messages.decodeRequest(command, MemorySegment.ofArray(bytes)));
        }
    }

    @Property(tries = 2000)
    void anyHeaderDecodesOrFailsWithErrno(@ForAll @Size(max = 40) byte[] bytes) {
        assertDecodesOrErrno(() -> Header.decode(MemorySegment.ofArray(bytes)));
    }

    @Provide
    Arbitrary<byte[]> payloads() {
        return Arbitraries.bytes().array(byte[].class).ofMaxSize(600);
    }

    @Provide
    Arbitrary<byte[]> plausible() {
        // Little-endian u32 words drawn mostly from small values and boundary values.
        Arbitrary<Integer> word = Arbitraries.frequencyOf(
                net.jqwik.api.Tuple.of(6, Arbitraries.integers().between(0, 512)),
                net.jqwik.api.Tuple.of(2, Arbitraries.of(0x10000, 0x20000, 0x40000, 0x30000, 0x50001, 0x10001,
                        0x10008, 0x20006, 0x20007, 0x60000, 0x70000, -1, Integer.MIN_VALUE, Integer.MAX_VALUE, 4096, 1 << 20)),
                net.jqwik.api.Tuple.of(1, Arbitraries.integers()));
        return word.list().ofMaxSize(80).map(words -> {
            byte[] out = new byte[words.size() * 4];
            for (int i = 0; i < words.size(); i++) {
                int w = words.get(i);
                out[4 * i] = (byte) w;
                out[4 * i + 1] = (byte) (w >>> 8);
                out[4 * i + 2] = (byte) (w >>> 16);
                out[4 * i + 3] = (byte) (w >>> 24);
            }
            return out;
        });
    }

    private static void assertDecodesOrErrno(Runnable decode) {
        try {
            decode.run();
        } catch (VfioUserException e) {
            assertThat(e.errno()).isNotNull();
        }
    }
}
