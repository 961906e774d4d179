package io.vfu.core.protocol;

import static io.vfu.core.protocol.Bytes.encode;
import static io.vfu.core.protocol.Bytes.hex;
import static io.vfu.core.protocol.Bytes.norm;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import org.junit.jupiter.api.Test;

/** DEVICE_GET_INFO golden bytes, written from the table in protocol reference §8.1. */
class DeviceInfoTest {
    static final String REQUEST = "10 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00";
    // argsz 16, flags RESET|PCI, 9 regions, 5 irq types
    static final String REPLY = "10 00 00 00  03 00 00 00  09 00 00 00  05 00 00 00";

    @Test
    void requestBytes() {
        assertThat(encode(new DeviceInfoRequest())).isEqualTo(norm(REQUEST));
        assertThat(DeviceInfoRequest.decode(hex(REQUEST))).isEqualTo(new DeviceInfoRequest(16));
    }

    @Test
    void replyBytes() {
        DeviceInfoReply reply = new DeviceInfoReply(DeviceInfoReply.FLAG_RESET | DeviceInfoReply.FLAG_PCI, 9, 5);
        assertThat(encode(reply)).isEqualTo(norm(REPLY));
        assertThat(DeviceInfoReply.decode(hex(REPLY))).isEqualTo(reply);
    }

    @Test
    void malformedRequestsFailWithEinval() {
        assertThatThrownBy(() -> DeviceInfoRequest.decode(hex("10 00 00 00 00 00 00 00")))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
        assertThatThrownBy(() -> DeviceInfoRequest.decode(hex("0f 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00")))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
    }

    @Test
    void malformedRepliesFailWithEinval() {
        assertThatThrownBy(() -> DeviceInfoReply.decode(hex(REPLY + " 00")))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
        assertThatThrownBy(() -> DeviceInfoReply.decode(hex("08 00 00 00  03 00 00 00  09 00 00 00  05 00 00 00")))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
    }
}
