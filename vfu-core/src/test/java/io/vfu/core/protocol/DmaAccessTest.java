package io.vfu.core.protocol;

import static io.vfu.core.protocol.Bytes.encode;
import static io.vfu.core.protocol.Bytes.hex;
import static io.vfu.core.protocol.Bytes.norm;
import static io.vfu.core.protocol.Rejects.einval;
import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** DMA_READ / DMA_WRITE golden bytes, from protocol reference §7.3 (u64 count, 16-byte fixed part). */
class DmaAccessTest {
    // address 0x10000000, count 0x400
    static final String READ_REQUEST = "00 00 00 10 00 00 00 00  00 04 00 00 00 00 00 00";
    // address 0x2000, 4 bytes
    static final String READ_REPLY = "00 20 00 00 00 00 00 00  04 00 00 00 00 00 00 00  de ad be ef";
    // address 0x3000, 3 bytes
    static final String WRITE_REQUEST = "00 30 00 00 00 00 00 00  03 00 00 00 00 00 00 00  01 02 03";
    static final String WRITE_REPLY = "00 30 00 00 00 00 00 00  03 00 00 00 00 00 00 00";

    @Test
    void readBytes() {
        DmaReadRequest request = new DmaReadRequest(0x1000_0000L, 0x400);
        assertThat(encode(request)).isEqualTo(norm(READ_REQUEST));
        assertThat(DmaReadRequest.decode(hex(READ_REQUEST))).isEqualTo(request);

        DmaReadReply reply = new DmaReadReply(0x2000, hex("de ad be ef"));
        assertThat(encode(reply)).isEqualTo(norm(READ_REPLY));
        MemorySegment payload = hex(READ_REPLY);
        DmaReadReply decoded = DmaReadReply.decode(payload);
        assertThat(decoded).isEqualTo(reply);
        assertThat(payload.asOverlappingSlice(decoded.data())).isPresent();
        assertThat(DmaReadReply.decode(hex("00 20 00 00 00 00 00 00  04 00 00 00 00 00 00 00"), hex("de ad be ef")))
                .isEqualTo(reply);
    }

    @Test
    void writeBytes() {
        DmaWriteRequest request = new DmaWriteRequest(0x3000, hex("01 02 03"));
        assertThat(encode(request)).isEqualTo(norm(WRITE_REQUEST));
        assertThat(DmaWriteRequest.decode(hex(WRITE_REQUEST))).isEqualTo(request);
        assertThat(DmaWriteRequest.decode(hex("00 30 00 00 00 00 00 00  03 00 00 00 00 00 00 00"), hex("01 02 03")))
                .isEqualTo(request);

        DmaWriteReply reply = new DmaWriteReply(0x3000, 3);
        assertThat(encode(reply)).isEqualTo(norm(WRITE_REPLY));
        assertThat(DmaWriteReply.decode(hex(WRITE_REPLY))).isEqualTo(reply);
    }

    @Test
    void recordsCompareDataByContent() {
        assertThat(new DmaWriteRequest(1, hex("01 02"))).isEqualTo(new DmaWriteRequest(1, hex("01 02")));
        assertThat(new DmaWriteRequest(1, hex("01 02"))).isNotEqualTo(new DmaWriteRequest(1, hex("01 03")));
    }

    @Test
    void malformedRequests() {
        einval(() -> DmaReadRequest.decode(hex("00 00 00 10 00 00 00 00  00 04 00 00")));          // QEMU-C's u32 count: 12 bytes
        einval(() -> DmaReadRequest.decode(hex(READ_REQUEST + " 00")));
        einval(() -> DmaReadRequest.decode(hex("00 f0 ff ff ff ff ff ff  00 10 00 00 00 00 00 00"))); // end = 2^64
        einval(() -> DmaWriteRequest.decode(hex("00 30 00 00 00 00 00 00  03 00 00 00 00 00 00 00  01 02")));    // 2 < 3
        einval(() -> DmaWriteRequest.decode(hex(WRITE_REQUEST + " 04")));                                        // 4 > 3
        einval(() -> DmaWriteRequest.decode(hex("00 30 00 00 00 00 00 00  ff ff ff ff ff ff ff ff  01 02 03")));  // count 2^64-1
        einval(() -> DmaWriteRequest.decode(hex("00 30 00 00 00 00 00 00  03 00 00 00")));                        // short
        einval(() -> DmaWriteRequest.decode(hex("ff ff ff ff ff ff ff ff  01 00 00 00 00 00 00 00  01")));        // overflow
    }

    @Test
    void malformedReplies() {
        einval(() -> DmaReadReply.decode(hex("00 20 00 00 00 00 00 00  04 00 00 00 00 00 00 00  de ad be")));
        einval(() -> DmaReadReply.decode(hex("00 20 00 00 00 00 00 00  00 00 00 00 00 00 00 80")));      // count 2^63, no data
        einval(() -> DmaReadReply.decode(hex("00 20 00 00 00 00 00 00  04 00 00 00  de ad be ef")));     // QEMU-C layout
        einval(() -> DmaWriteReply.decode(hex("00 30 00 00 00 00 00 00  03 00 00 00")));                  // spec typo: u32 count
        einval(() -> DmaWriteReply.decode(hex(WRITE_REPLY + " 00")));
        einval(() -> DmaWriteReply.decode(hex("ff ff ff ff ff ff ff ff  03 00 00 00 00 00 00 00")));
    }
}
