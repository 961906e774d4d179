package io.vfu.core.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.util.function.Consumer;
import java.util.function.Function;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * The record-free checks of the register-access hot paths accept exactly what the record decoders accept,
 * and {@link RegionAccess} reads the fields the records hold.
 */
class RegionAccessCheckProperties {

    @Property(tries = 2000)
    void regionReadRequestCheckAgreesWithDecode(@ForAll("headers") byte[] bytes) {
        assertCheckAgreesWithDecode(bytes, RegionReadRequest::check, RegionReadRequest::decode,
                r -> new long[] {r.offset(), r.region(), r.count()});
    }

    @Property(tries = 2000)
    void regionReadReplyCheckAgreesWithDecode(@ForAll("withData") byte[] bytes) {
        assertCheckAgreesWithDecode(bytes, RegionReadReply::check, RegionReadReply::decode,
                r -> new long[] {r.offset(), r.region(), r.count()});
    }

    @Property(tries = 2000)
    void regionWriteRequestCheckAgreesWithDecode(@ForAll("withData") byte[] bytes) {
        assertCheckAgreesWithDecode(bytes, RegionWriteRequest::check, RegionWriteRequest::decode,
                w -> new long[] {w.offset(), w.region(), w.count()});
    }

    /** Same verdict (and errno); where both accept, {@link RegionAccess} reads the fields the record holds. */
    private static <T> void assertCheckAgreesWithDecode(byte[] bytes, Consumer<MemorySegment> check,
                                                        Function<MemorySegment, T> decode, Function<T, long[]> fields) {
        MemorySegment p = MemorySegment.ofArray(bytes);
        assertSameVerdict(p, check, decode::apply);
        if (accepts(p, check)) {
            assertThat(new long[] {RegionAccess.offsetOf(p), RegionAccess.regionOf(p), RegionAccess.countOf(p)})
                    .containsExactly(fields.apply(decode.apply(p)));
        }
    }

    /** 12–20 bytes, offsets near the top of u64 now and then, counts near the data length. */
    @Provide
    Arbitrary<byte[]> headers() {
        return Arbitraries.integers().between(12, 20).flatMap(n -> payload(n, 0));
    }

    @Provide
    Arbitrary<byte[]> withData() {
        return Arbitraries.integers().between(0, 8).flatMap(data -> payload(16 + data, data));
    }

    private static Arbitrary<byte[]> payload(int size, int dataLength) {
        return Arbitraries.bytes().array(byte[].class).ofSize(size).flatMap(b -> Arbitraries.of(0, 1, 2, 3).map(k -> {
            if (size >= 16) {
                MemorySegment s = MemorySegment.ofArray(b);
                if (k == 0) {
                    s.set(Wire.U32, 12, dataLength); // consistent count
                } else if (k == 1) {
                    s.set(Wire.U32, 12, dataLength);
                    s.set(Wire.U64, 0, -1L - dataLength + 1); // offset + count at the u64 edge
                }
            }
            return b;
        }));
    }

    private static boolean accepts(MemorySegment p, Consumer<MemorySegment> check) {
        try {
            check.accept(p);
            return true;
        } catch (VfioUserException e) {
            return false;
        }
    }

    private static void assertSameVerdict(MemorySegment p, Consumer<MemorySegment> check, Consumer<MemorySegment> decode) {
        boolean decodes;
        Errno expected = null;
        try {
            decode.accept(p);
            decodes = true;
        } catch (VfioUserException e) {
            decodes = false;
            expected = e.errno();
        }
        try {
            check.accept(p);
            assertThat(decodes).as("check accepted what decode refused").isTrue();
        } catch (VfioUserException e) {
            assertThat(decodes).as("check refused what decode accepts: " + e.getMessage()).isFalse();
            assertThat(e.errno()).isEqualTo(expected);
        }
    }
}
