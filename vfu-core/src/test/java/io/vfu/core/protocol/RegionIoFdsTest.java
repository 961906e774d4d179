package io.vfu.core.protocol;

import static io.vfu.core.protocol.Bytes.encode;
import static io.vfu.core.protocol.Bytes.hex;
import static io.vfu.core.protocol.Bytes.norm;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.IoFdEntry.IoEventFd;
import io.vfu.core.protocol.IoFdEntry.IoRegionFd;
import io.vfu.core.protocol.IoFdEntry.Layout;
import io.vfu.core.protocol.IoFdEntry.ShadowIoEventFd;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/** DEVICE_GET_REGION_IO_FDS golden bytes, written from the tables in protocol reference §8.4. */
class RegionIoFdsTest {
    static final String REQUEST = "10 00 00 00  00 00 00 00  01 00 00 00  00 00 00 00";
    // argsz 96 = 16 + 2 × 40, flags 0, region 1, count 2; SPEC 40-byte entries
    static final String REPLY_SPEC = """
            60 00 00 00  00 00 00 00  01 00 00 00  02 00 00 00
            00 01 00 00 00 00 00 00  04 00 00 00 00 00 00 00  00 00 00 00  00 00 00 00  01 00 00 00  00 00 00 00
            2a 00 00 00 00 00 00 00
            00 02 00 00 00 00 00 00  08 00 00 00 00 00 00 00  01 00 00 00  01 00 00 00  00 00 00 00  00 00 00 00
            88 77 66 55 44 33 22 11""";
    // argsz 112 = 16 + 2 × 48, region 1, count 2; libvfio-user 48-byte entries (ioeventfd + shadow ioeventfd)
    static final String REPLY_LVU = """
            70 00 00 00  00 00 00 00  01 00 00 00  02 00 00 00
            00 01 00 00 00 00 00 00  04 00 00 00 00 00 00 00  00 00 00 00  00 00 00 00  01 00 00 00  00 00 00 00
            00 00 00 00 00 00 00 00  2a 00 00 00 00 00 00 00
            00 03 00 00 00 00 00 00  04 00 00 00 00 00 00 00  01 00 00 00  02 00 00 00  00 00 00 00  02 00 00 00
            40 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00""";
    // "argsz too small": header only, argsz and count of the complete answer
    static final String REPLY_TRUNCATED = "60 00 00 00  00 00 00 00  01 00 00 00  02 00 00 00";
    static final String REPLY_EMPTY = "10 00 00 00  00 00 00 00  01 00 00 00  00 00 00 00";

    static final IoEventFd EVENTFD = new IoEventFd(0x100, 4, 0, IoFdEntry.KVM_IOEVENTFD_FLAG_DATAMATCH, 0x2a);
    static final IoRegionFd REGIONFD = new IoRegionFd(0x200, 8, 1, 0, 0x1122334455667788L);
    static final ShadowIoEventFd SHADOW = new ShadowIoEventFd(0x300, 4, 1, 0, 2, 0x40, 0);

    static void fails(Errno errno, Function<MemorySegment, ?> decoder, String bytes) {
        assertThatThrownBy(() -> decoder.apply(hex(bytes)))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(errno));
    }

    @Test
    void requestBytes() {
        assertThat(encode(new RegionIoFdsRequest(1))).isEqualTo(norm(REQUEST));
        assertThat(RegionIoFdsRequest.decode(hex(REQUEST))).isEqualTo(new RegionIoFdsRequest(16, 1));
        assertThat(RegionIoFdsRequest.decode(hex("00 00 10 00" + REQUEST.substring(11))).argsz()).isEqualTo(0x100000);
    }

    @Test
    void malformedRequests() {
        fails(Errno.EINVAL, RegionIoFdsRequest::decode, "10 00 00 00  00 00 00 00  01 00 00 00");
        fails(Errno.EINVAL, RegionIoFdsRequest::decode, "0f 00 00 00  00 00 00 00  01 00 00 00  00 00 00 00");
        fails(Errno.EINVAL, RegionIoFdsRequest::decode, "01 00 10 00  00 00 00 00  01 00 00 00  00 00 00 00");
        fails(Errno.EINVAL, RegionIoFdsRequest::decode, "10 00 00 00  01 00 00 00  01 00 00 00  00 00 00 00");
        fails(Errno.EINVAL, RegionIoFdsRequest::decode, "10 00 00 00  00 00 00 00  01 00 00 00  01 00 00 00");
    }

    @Test
    void specReplyBytes() {
        RegionIoFdsReply reply = new RegionIoFdsReply(1, List.of(EVENTFD, REGIONFD));
        assertThat(reply.layout()).isEqualTo(Layout.SPEC);
        assertThat(encode(reply)).isEqualTo(norm(REPLY_SPEC));
        RegionIoFdsReply decoded = RegionIoFdsReply.decode(hex(REPLY_SPEC));
        assertThat(decoded).isEqualTo(reply);
        assertThat(decoded.truncated()).isFalse();
    }

    @Test
    void lvuReplyBytes() {
        RegionIoFdsReply reply = new RegionIoFdsReply(1, Layout.LVU, List.of(EVENTFD, SHADOW));
        assertThat(encode(reply)).isEqualTo(norm(REPLY_LVU));
        RegionIoFdsReply decoded = RegionIoFdsReply.decode(hex(REPLY_LVU));
        assertThat(decoded.layout()).isEqualTo(Layout.LVU);
        assertThat(decoded).isEqualTo(reply);
    }

    @Test
    void argszTooSmall() {
        RegionIoFdsReply full = new RegionIoFdsReply(1, List.of(EVENTFD, REGIONFD));
        assertThat(full.forClient(96)).isSameAs(full);
        RegionIoFdsReply small = full.forClient(16);
        assertThat(small.truncated()).isTrue();
        assertThat(encode(small)).isEqualTo(norm(REPLY_TRUNCATED));
        RegionIoFdsReply decoded = RegionIoFdsReply.decode(hex(REPLY_TRUNCATED));
        assertThat(decoded).isEqualTo(small);
        assertThat(decoded.truncated()).isTrue();
        assertThat(decoded.count()).isEqualTo(2);
        assertThat(decoded.argsz()).isEqualTo(96);
        // an LVU-sized truncated reply tells the layout too
        assertThat(RegionIoFdsReply.decode(hex("70 00 00 00  00 00 00 00  01 00 00 00  02 00 00 00")).layout())
                .isEqualTo(Layout.LVU);
    }

    @Test
    void noEntries() {
        RegionIoFdsReply empty = new RegionIoFdsReply(1, List.of());
        assertThat(encode(empty)).isEqualTo(norm(REPLY_EMPTY));
        assertThat(RegionIoFdsReply.decode(hex(REPLY_EMPTY))).isEqualTo(empty);
        assertThat(empty.truncated()).isFalse();
    }

    @Test
    void encoderRefusesEntriesOfTheOtherLayout() {
        assertThatThrownBy(() -> new RegionIoFdsReply(1, List.of(SHADOW))).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new RegionIoFdsReply(1, Layout.LVU, List.of(REGIONFD)))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void malformedReplies() {
        fails(Errno.EINVAL, RegionIoFdsReply::decode, "60 00 00 00  00 00 00 00  01 00 00 00"); // short
        fails(Errno.EINVAL, RegionIoFdsReply::decode, "0f 00 00 00  00 00 00 00  01 00 00 00  00 00 00 00"); // argsz 15
        fails(Errno.EINVAL, RegionIoFdsReply::decode, "68 00 00 00  00 00 00 00  01 00 00 00  02 00 00 00"); // stride 44
        fails(Errno.EINVAL, RegionIoFdsReply::decode, "61 00 00 00  00 00 00 00  01 00 00 00  02 00 00 00"); // remainder
        fails(Errno.EINVAL, RegionIoFdsReply::decode, "60 00 00 00  00 00 00 00  01 00 00 00  00 00 00 00"); // no count
        fails(Errno.EINVAL, RegionIoFdsReply::decode, "10 00 00 00  00 00 00 00  01 00 00 00  ff ff ff ff"); // count, no argsz
        fails(Errno.EINVAL, RegionIoFdsReply::decode, "f0 ff ff ff  00 00 00 00  01 00 00 00  ff ff ff 05"
                + " 00".repeat(40)); // huge count: payload neither 16 nor argsz, nothing allocated
        fails(Errno.EINVAL, RegionIoFdsReply::decode, REPLY_SPEC.substring(0, REPLY_SPEC.length() - 24)); // partial
        fails(Errno.EINVAL, RegionIoFdsReply::decode, REPLY_SPEC + " 00"); // longer than argsz
        fails(Errno.EINVAL, RegionIoFdsReply::decode, REPLY_SPEC.replace("01 00 00 00  01 00 00 00", "01 00 00 00  02 00 00 00"));
        fails(Errno.EINVAL, RegionIoFdsReply::decode, REPLY_LVU.replace("01 00 00 00  02 00 00 00", "01 00 00 00  01 00 00 00"));
    }
}
