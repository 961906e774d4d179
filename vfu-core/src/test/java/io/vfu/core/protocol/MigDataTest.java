package io.vfu.core.protocol;

import static io.vfu.core.protocol.Bytes.encode;
import static io.vfu.core.protocol.Bytes.hex;
import static io.vfu.core.protocol.Bytes.norm;
import static io.vfu.core.protocol.Bytes.toHex;
import static io.vfu.core.protocol.Rejects.einval;
import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** MIG_DATA_READ / MIG_DATA_WRITE golden bytes, from protocol reference §11.5 and §11.6. */
class MigDataTest {
    static final String READ_REQUEST = "08 04 00 00  00 04 00 00";            // argsz 1032, size 1024
    static final String READ_REPLY = "0b 00 00 00  03 00 00 00  aa bb cc";    // argsz 11, size 3
    static final String WRITE_REQUEST = "0c 00 00 00  04 00 00 00  01 02 03 04";

    @Test
    void readRequestBytes() {
        MigDataReadRequest request = new MigDataReadRequest(1024);
        assertThat(request.argsz()).isEqualTo(1032);
        assertThat(encode(request)).isEqualTo(norm(READ_REQUEST));
        assertThat(MigDataReadRequest.decode(hex(READ_REQUEST))).isEqualTo(request);
        // a larger argsz only bounds the reply
        assertThat(MigDataReadRequest.decode(hex("00 10 00 00  00 04 00 00"))).isEqualTo(new MigDataReadRequest(4096, 1024));
    }

    @Test
    void readReplyBytes() {
        MigDataReadReply reply = new MigDataReadReply(hex("aa bb cc"));
        assertThat(encode(reply)).isEqualTo(norm(READ_REPLY));
        assertThat(MigDataReadReply.decode(hex(READ_REPLY))).isEqualTo(reply);
        assertThat(MigDataReadReply.decode(hex("0b 00 00 00  03 00 00 00"), hex("aa bb cc"))).isEqualTo(reply);
    }

    @Test
    void libvfioUserPaddingIsIgnored() {
        // 3 valid bytes in a payload padded to 8 + 8 requested
        MigDataReadReply padded = MigDataReadReply.decode(hex("0b 00 00 00  03 00 00 00  aa bb cc 00 00 00 00 00"));
        assertThat(padded).isEqualTo(new MigDataReadReply(hex("aa bb cc")));
        // end of stream: size 0, still padded
        assertThat(MigDataReadReply.decode(hex("08 00 00 00  00 00 00 00  00 00 00 00")).size()).isZero();
        // the observed libvfio-user reply to N = 20000 in STOP_COPY: argsz 12304, size 12296, payload 20008
        MemorySegment observed = MemorySegment.ofArray(new byte[20008]);
        observed.copyFrom(hex("10 30 00 00  08 30 00 00"));
        MigDataReadReply big = MigDataReadReply.decode(observed);
        assertThat(big.argsz()).isEqualTo(12304);
        assertThat(big.size()).isEqualTo(12296);
        assertThat(big.data().byteSize()).isEqualTo(12296);
        assertThat(observed.asOverlappingSlice(big.data())).isPresent();
    }

    @Test
    void malformedReads() {
        einval(() -> MigDataReadRequest.decode(hex("08 04 00 00  00 04 00")));                   // short
        einval(() -> MigDataReadRequest.decode(hex(READ_REQUEST + " 00")));                      // long
        einval(() -> MigDataReadRequest.decode(hex("07 04 00 00  00 04 00 00")));                // argsz < 8 + size
        einval(() -> MigDataReadRequest.decode(hex("ff ff ff ff  ff ff ff ff")));                // 8 + size > u32 argsz
        einval(() -> MigDataReadReply.decode(hex("0b 00 00 00  03 00 00")));                     // short
        einval(() -> MigDataReadReply.decode(hex("0c 00 00 00  04 00 00 00  aa bb cc")));        // size beyond payload
        einval(() -> MigDataReadReply.decode(hex("0a 00 00 00  03 00 00 00  aa bb cc")));        // argsz too small
        einval(() -> MigDataReadReply.decode(hex("0c 00 00 00  03 00 00 00  aa bb cc")));        // argsz beyond payload
        einval(() -> MigDataReadReply.decode(hex("07 00 00 00  ff ff ff ff  aa")));              // huge size
    }

    @Test
    void writeBytes() {
        MigDataWriteRequest request = new MigDataWriteRequest(hex("01 02 03 04"));
        assertThat(encode(request)).isEqualTo(norm(WRITE_REQUEST));
        MemorySegment payload = hex(WRITE_REQUEST);
        MigDataWriteRequest decoded = MigDataWriteRequest.decode(payload);
        assertThat(decoded).isEqualTo(request);
        assertThat(payload.asOverlappingSlice(decoded.data())).isPresent();
        assertThat(MigDataWriteRequest.decode(hex("0c 00 00 00  04 00 00 00"), hex("01 02 03 04"))).isEqualTo(request);
        // argsz above 8 + size is accepted (libvfio-user only requires >=)
        assertThat(MigDataWriteRequest.decode(hex("20 00 00 00  04 00 00 00  01 02 03 04")).argsz()).isEqualTo(32);

        assertThat(encode(new MigDataWriteReply())).isEmpty();
        assertThat(MigDataWriteReply.decode(hex(""))).isEqualTo(new MigDataWriteReply());
        assertThat(toHex(new MigDataWriteReply().toSegment())).isEmpty();
    }

    @Test
    void malformedWrites() {
        einval(() -> MigDataWriteRequest.decode(hex("0c 00 00 00  04 00 00")));                       // short
        einval(() -> MigDataWriteRequest.decode(hex("0b 00 00 00  04 00 00 00  01 02 03 04")));       // argsz < 8 + size
        einval(() -> MigDataWriteRequest.decode(hex("0c 00 00 00  04 00 00 00  01 02 03")));          // 3 < size
        einval(() -> MigDataWriteRequest.decode(hex("0c 00 00 00  04 00 00 00  01 02 03 04 05")));    // 5 > size
        einval(() -> MigDataWriteRequest.decode(hex("ff ff ff ff  ff ff ff ff  01")));                // argsz can't cover
        einval(() -> MigDataWriteReply.decode(hex("08 00 00 00  00 00 00 00")));
    }
}
