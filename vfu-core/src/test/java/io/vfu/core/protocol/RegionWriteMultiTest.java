package io.vfu.core.protocol;

import static io.vfu.core.protocol.Bytes.encode;
import static io.vfu.core.protocol.Bytes.hex;
import static io.vfu.core.protocol.Bytes.norm;
import static io.vfu.core.protocol.Bytes.toHex;
import static io.vfu.core.protocol.Rejects.einval;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.protocol.RegionWriteMultiRequest.Entry;
import java.util.List;
import org.junit.jupiter.api.Test;

/** REGION_WRITE_MULTI golden bytes, from protocol reference §9.2. */
class RegionWriteMultiTest {
    static final String WR_CNT_2 = "02 00 00 00 00 00 00 00";
    // offset 0x20, region 1, 4 bytes 0x12345678
    static final String ENTRY_0 = "20 00 00 00 00 00 00 00  01 00 00 00  04 00 00 00  78 56 34 12 00 00 00 00";
    // offset 0x2a, region 2, 1 byte 0xab
    static final String ENTRY_1 = "2a 00 00 00 00 00 00 00  02 00 00 00  01 00 00 00  ab 00 00 00 00 00 00 00";
    static final String REQUEST = WR_CNT_2 + ENTRY_0 + ENTRY_1;
    static final String REPLY = "02 00 00 00 00 00 00 00";

    static final Entry E0 = new Entry(0x20, 1, 4, 0x12345678L);
    static final Entry E1 = new Entry(0x2a, 2, 1, 0xab);

    @Test
    void requestBytes() {
        RegionWriteMultiRequest request = RegionWriteMultiRequest.of(E0, E1);
        assertThat(encode(request)).isEqualTo(norm(REQUEST));
        RegionWriteMultiRequest decoded = RegionWriteMultiRequest.decode(hex(REQUEST));
        assertThat(decoded).isEqualTo(request);
        assertThat(decoded.wrCnt()).isEqualTo(2);
        assertThat(decoded.toList()).containsExactly(E0, E1);
        assertThat(decoded.offset(1)).isEqualTo(0x2a);
        assertThat(decoded.region(1)).isEqualTo(2);
        assertThat(decoded.count(0)).isEqualTo(4);
        assertThat(toHex(decoded.data(0))).isEqualTo("78 56 34 12");
        assertThat(RegionWriteMultiRequest.decode(hex(WR_CNT_2), hex(ENTRY_0 + ENTRY_1))).isEqualTo(request);
    }

    @Test
    void paddingIsIgnored() {
        String padded = "01 00 00 00 00 00 00 00  2a 00 00 00 00 00 00 00  02 00 00 00  01 00 00 00  ab cc cc cc cc cc cc cc";
        RegionWriteMultiRequest decoded = RegionWriteMultiRequest.decode(hex(padded));
        assertThat(decoded.entry(0)).isEqualTo(E1);
        assertThat(toHex(decoded.data(0))).isEqualTo("ab");
    }

    @Test
    void eightByteEntryAndEmptyBatch() {
        String full = "01 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  00 00 00 00  08 00 00 00  01 02 03 04 05 06 07 88";
        RegionWriteMultiRequest r = RegionWriteMultiRequest.of(List.of(new Entry(0, 0, 8, 0x8807060504030201L)));
        assertThat(encode(r)).isEqualTo(norm(full));
        assertThat(RegionWriteMultiRequest.decode(hex(full))).isEqualTo(r);

        RegionWriteMultiRequest empty = RegionWriteMultiRequest.decode(hex("00 00 00 00 00 00 00 00"));
        assertThat(empty.wrCnt()).isZero();
        assertThat(encode(empty)).isEqualTo(norm("00 00 00 00 00 00 00 00"));
    }

    @Test
    void replyBytes() {
        assertThat(encode(new RegionWriteMultiReply(2))).isEqualTo(norm(REPLY));
        assertThat(RegionWriteMultiReply.decode(hex(REPLY))).isEqualTo(new RegionWriteMultiReply(2));
        einval(() -> RegionWriteMultiReply.decode(hex(REPLY + " 00")));
        einval(() -> RegionWriteMultiReply.decode(hex("02 00 00 00 00 00 00")));
    }

    @Test
    void malformedRequests() {
        einval(() -> RegionWriteMultiRequest.decode(hex("02 00 00 00 00 00 00")));                         // short
        einval(() -> RegionWriteMultiRequest.decode(hex("03 00 00 00 00 00 00 00" + ENTRY_0 + ENTRY_1)));  // wr_cnt > entries
        einval(() -> RegionWriteMultiRequest.decode(hex("01 00 00 00 00 00 00 00" + ENTRY_0 + ENTRY_1)));  // wr_cnt < entries
        einval(() -> RegionWriteMultiRequest.decode(hex("ff ff ff ff ff ff ff ff")));                      // huge wr_cnt, no entries
        einval(() -> RegionWriteMultiRequest.decode(hex("00 00 00 00 00 00 00 80" + ENTRY_0)));            // wr_cnt 2^63
        einval(() -> RegionWriteMultiRequest.decode(hex(REQUEST + " 00")));                                // not 24·n
        einval(() -> RegionWriteMultiRequest.decode(hex(
                "01 00 00 00 00 00 00 00  20 00 00 00 00 00 00 00  01 00 00 00  00 00 00 00  00 00 00 00 00 00 00 00"))); // count 0
        einval(() -> RegionWriteMultiRequest.decode(hex(
                "01 00 00 00 00 00 00 00  20 00 00 00 00 00 00 00  01 00 00 00  09 00 00 00  00 00 00 00 00 00 00 00"))); // count 9
        einval(() -> RegionWriteMultiRequest.decode(hex(
                "01 00 00 00 00 00 00 00  fe ff ff ff ff ff ff ff  01 00 00 00  04 00 00 00  00 00 00 00 00 00 00 00"))); // overflow
    }

    @Test
    void entryRejectsInconsistentValues() {
        assertThatThrownBy(() -> new Entry(0, 0, 0, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Entry(0, 0, 2, 0x10000)).isInstanceOf(IllegalArgumentException.class);
    }
}
