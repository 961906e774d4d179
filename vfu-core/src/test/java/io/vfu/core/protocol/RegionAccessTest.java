package io.vfu.core.protocol;

import static io.vfu.core.protocol.Bytes.encode;
import static io.vfu.core.protocol.Bytes.hex;
import static io.vfu.core.protocol.Bytes.norm;
import static io.vfu.core.protocol.Bytes.toHex;
import static io.vfu.core.protocol.Rejects.einval;
import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** REGION_READ / REGION_WRITE golden bytes, from protocol reference §9.1 and the worked example of §3.4. */
class RegionAccessTest {
    // §3.4 verbatim: REGION_READ msg_id 5, region 7, offset 0x10, 4 bytes.
    static final String READ_HEADER = "05 00 09 00 20 00 00 00 00 00 00 00 00 00 00 00";
    static final String READ_REQUEST = "10 00 00 00 00 00 00 00 07 00 00 00 04 00 00 00";
    static final String READ_REPLY_HEADER = "05 00 09 00 24 00 00 00 01 00 00 00 00 00 00 00";
    static final String READ_REPLY = "10 00 00 00 00 00 00 00 07 00 00 00 04 00 00 00  01 80 00 00";
    static final String READ_ERROR_REPLY = "05 00 09 00 10 00 00 00 21 00 00 00 16 00 00 00";

    // offset 0x1000 of region 0 (BAR0), 8 bytes 0x12345678 little-endian.
    static final String WRITE_REQUEST = "00 10 00 00 00 00 00 00  00 00 00 00  08 00 00 00  78 56 34 12 00 00 00 00";
    static final String WRITE_REPLY = "00 10 00 00 00 00 00 00  00 00 00 00  08 00 00 00";

    @Test
    void readRequestMatchesWorkedExample() {
        RegionReadRequest request = new RegionReadRequest(0x10, 7, 4);
        assertThat(encode(request)).isEqualTo(norm(READ_REQUEST));
        assertThat(RegionReadRequest.decode(hex(READ_REQUEST))).isEqualTo(request);

        MemorySegment message = MemorySegment.ofArray(new byte[32]);
        Header.command(5, Command.REGION_READ, request.payloadSize(), false).encode(message, 0);
        request.encodeFixed(message.asSlice(Header.SIZE));
        assertThat(toHex(message)).isEqualTo(norm(READ_HEADER + READ_REQUEST));
    }

    @Test
    void readReplyMatchesWorkedExample() {
        RegionReadReply reply = new RegionReadReply(0x10, 7, hex("01 80 00 00"));
        assertThat(reply.count()).isEqualTo(4);
        assertThat(encode(reply)).isEqualTo(norm(READ_REPLY));
        assertThat(RegionReadReply.decode(hex(READ_REPLY))).isEqualTo(reply);

        Header header = Header.reply(5, Command.REGION_READ.code(), reply.payloadSize());
        MemorySegment h = MemorySegment.ofArray(new byte[16]);
        header.encode(h, 0);
        assertThat(toHex(h)).isEqualTo(norm(READ_REPLY_HEADER));
        Header.errorReply(5, 9, 22).encode(h, 0);
        assertThat(toHex(h)).isEqualTo(norm(READ_ERROR_REPLY));
    }

    @Test
    void readReplyDataIsASliceOfTheInput() {
        MemorySegment payload = hex(READ_REPLY);
        RegionReadReply reply = RegionReadReply.decode(payload);
        assertThat(payload.asOverlappingSlice(reply.data())).isPresent();
        assertThat(reply.data().byteSize()).isEqualTo(4);

        MemorySegment fixed = hex("10 00 00 00 00 00 00 00 07 00 00 00 04 00 00 00");
        MemorySegment data = hex("01 80 00 00");
        RegionReadReply split = RegionReadReply.decode(fixed, data);
        assertThat(split).isEqualTo(reply);
        assertThat(split.data()).isSameAs(data);
    }

    @Test
    void countZeroIsConsistent() {
        String zero = "10 00 00 00 00 00 00 00 07 00 00 00 00 00 00 00";
        assertThat(RegionReadRequest.decode(hex(zero))).isEqualTo(new RegionReadRequest(0x10, 7, 0));
        assertThat(RegionReadReply.decode(hex(zero))).isEqualTo(new RegionReadReply(0x10, 7, Wire.EMPTY));
        // libvfio-user answers count 0 with an empty payload: not a decodable reply (documented).
        einval(() -> RegionReadReply.decode(hex("")));
    }

    @Test
    void writeRequestAndReplyBytes() {
        RegionWriteRequest request = new RegionWriteRequest(0x1000, 0, hex("78 56 34 12 00 00 00 00"));
        assertThat(encode(request)).isEqualTo(norm(WRITE_REQUEST));
        assertThat(RegionWriteRequest.decode(hex(WRITE_REQUEST))).isEqualTo(request);
        MemorySegment fixed = hex("00 10 00 00 00 00 00 00  00 00 00 00  08 00 00 00");
        assertThat(RegionWriteRequest.decode(fixed, hex("78 56 34 12 00 00 00 00"))).isEqualTo(request);

        RegionWriteReply reply = new RegionWriteReply(0x1000, 0, 8);
        assertThat(encode(reply)).isEqualTo(norm(WRITE_REPLY));
        assertThat(RegionWriteReply.decode(hex(WRITE_REPLY))).isEqualTo(reply);
    }

    @Test
    void largeUnsignedFieldsSurvive() {
        String bytes = "ef cd ab 89 67 45 23 01  ff ff ff ff  ff ff ff 00";
        RegionReadRequest r = RegionReadRequest.decode(hex(bytes));
        assertThat(r).isEqualTo(new RegionReadRequest(0x0123456789abcdefL, 0xFFFF_FFFFL, 0x00FF_FFFFL));
        assertThat(encode(r)).isEqualTo(norm(bytes));
    }

    @Test
    void malformedReadRequests() {
        einval(() -> RegionReadRequest.decode(hex("10 00 00 00 00 00 00 00 07 00 00 00 04 00 00")));       // 15 bytes
        einval(() -> RegionReadRequest.decode(hex(READ_REQUEST + " 00")));                                 // 17 bytes
        einval(() -> RegionReadRequest.decode(hex("f0 ff ff ff ff ff ff ff 07 00 00 00 10 00 00 00")));    // end = 2^64
        assertThat(RegionReadRequest.decode(hex("f0 ff ff ff ff ff ff ff 07 00 00 00 0f 00 00 00")).count()).isEqualTo(15);
    }

    @Test
    void malformedReadReplies() {
        einval(() -> RegionReadReply.decode(hex("10 00 00 00 00 00 00 00 07 00 00 00 04 00 00")));                 // short
        einval(() -> RegionReadReply.decode(hex("10 00 00 00 00 00 00 00 07 00 00 00 04 00 00 00 01 80 00")));     // 3 < 4
        einval(() -> RegionReadReply.decode(hex(READ_REPLY + " 00")));                                              // 5 > 4
        einval(() -> RegionReadReply.decode(hex("f8 ff ff ff ff ff ff ff 07 00 00 00 08 00 00 00 00 00 00 00 00 00 00 00")));
        einval(() -> RegionReadReply.decode(hex("10 00 00 00 00 00 00 00 07 00 00 00 04"), hex("01 80 00 00")));    // fixed 13
        einval(() -> RegionReadReply.decode(hex("10 00 00 00 00 00 00 00 07 00 00 00 ff ff ff ff"), hex("00")));    // count 2^32-1
    }

    @Test
    void malformedWrites() {
        einval(() -> RegionWriteRequest.decode(hex("00 10 00 00 00 00 00 00 00 00 00 00 08 00 00 00 78 56 34 12 00 00 00"))); // 7 < 8
        einval(() -> RegionWriteRequest.decode(hex(WRITE_REQUEST + " 00")));                                                // 9 > 8
        einval(() -> RegionWriteRequest.decode(hex("00 10 00 00 00 00 00 00 00 00 00 00")));                                // short
        einval(() -> RegionWriteRequest.decode(hex("ff ff ff ff ff ff ff ff 00 00 00 00 01 00 00 00 aa")));                 // overflow
        einval(() -> RegionWriteReply.decode(hex(WRITE_REPLY + " 00")));
        einval(() -> RegionWriteReply.decode(hex("00 10 00 00 00 00 00 00 00 00 00 00 08 00 00")));
        einval(() -> RegionWriteReply.decode(hex("fc ff ff ff ff ff ff ff 00 00 00 00 08 00 00 00")));
    }
}
