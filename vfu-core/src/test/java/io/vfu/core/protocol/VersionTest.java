package io.vfu.core.protocol;

import static io.vfu.core.protocol.Bytes.encode;
import static io.vfu.core.protocol.Bytes.hex;
import static io.vfu.core.protocol.Bytes.norm;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.Capabilities.LegacyMigration;
import io.vfu.core.protocol.Capabilities.TwinSocket;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.Optional;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/** VERSION golden bytes and capability JSON (protocol reference §5). */
class VersionTest {
    // major 0, minor 2, {"capabilities":{"max_msg_fds":8}} + NUL, every byte by hand
    static final String VERSION_0_2_FDS_8 = """
            00 00 02 00
            7b 22 63 61 70 61 62 69 6c 69 74 69 65 73 22 3a
            7b 22 6d 61 78 5f 6d 73 67 5f 66 64 73 22 3a 38
            7d 7d 00""";
    // §5.4 examples
    static final String CLIENT_JSON =
            "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":1048576,\"twin_socket\":{\"supported\":true}}}";
    static final String LVU_REPLY_JSON = "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":1048576,"
            + "\"migration\":{\"pgsize\":4096},\"twin_socket\":{\"supported\":true,\"fd_index\":0}}}";
    // QEMU's client, as sent
    static final String QEMU_JSON = "{\"capabilities\":{\"pgsizes\":4096,\"max_msg_fds\":16,\"max_dma_maps\":65535,"
            + "\"max_data_xfer_size\":1048576,\"migration\":{\"max_bitmap_size\":268435456,\"pgsize\":4096},"
            + "\"write_multiple\":true}}";
    // libvfio-user's sample server, json-c spaced format (105 bytes with the NUL)
    static final String LVU_SPACED_JSON =
            "{ \"capabilities\": { \"max_msg_fds\": 8, \"max_data_xfer_size\": 1048576, \"migration\": { \"pgsize\": 4096 } } }";

    /** Payload: major, minor (hand-written hex), the JSON text as written in the reference, NUL. */
    static String payload(String majorMinorHex, String json) {
        return norm(majorMinorHex + HexFormat.of().formatHex(json.getBytes(StandardCharsets.UTF_8)) + "00");
    }

    static void fails(Errno errno, String payloadHex) {
        assertThatThrownBy(() -> VersionRequest.decode(hex(payloadHex)))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(errno));
        assertThatThrownBy(() -> VersionReply.decode(hex(payloadHex)))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(errno));
    }

    static void failsJson(String json) {
        fails(Errno.EINVAL, payload("00 00 00 00", json));
    }

    @Test
    void handWrittenPayload() {
        VersionReply reply = new VersionReply(0, 2, Capabilities.NONE.withMaxMsgFds(8));
        assertThat(encode(reply)).isEqualTo(norm(VERSION_0_2_FDS_8));
        assertThat(reply.payloadSize()).isEqualTo(39);
        assertThat(VersionReply.decode(hex(VERSION_0_2_FDS_8))).isEqualTo(reply);
        assertThat(VersionRequest.decode(hex(VERSION_0_2_FDS_8)).capabilitiesOrNone().maxMsgFdsOrDefault()).isEqualTo(8);
    }

    @Test
    void clientExampleOfSection54() {
        VersionRequest req = new VersionRequest(ProtocolVersion.MAJOR, ProtocolVersion.CLIENT_MINOR, Capabilities.NONE
                .withMaxMsgFds(8).withMaxDataXferSize(1048576).withTwinSocket(TwinSocket.offer()));
        assertThat(encode(req)).isEqualTo(payload("00 00 00 00", CLIENT_JSON));
        assertThat(VersionRequest.decode(hex(payload("00 00 00 00", CLIENT_JSON)))).isEqualTo(req);
        assertThat(req.capabilitiesOrNone().twinSocketSupported()).isTrue();
    }

    @Test
    void libvfioUserReplyOfSection54() {
        VersionReply reply = new VersionReply(0, 2, Capabilities.NONE.withMaxMsgFds(8).withMaxDataXferSize(1048576)
                .withMigration(new LegacyMigration(OptionalLong.of(4096), OptionalLong.empty()))
                .withTwinSocket(TwinSocket.accepted(0)));
        assertThat(encode(reply)).isEqualTo(payload("00 00 02 00", LVU_REPLY_JSON));
        VersionReply decoded = VersionReply.decode(hex(payload("00 00 02 00", LVU_REPLY_JSON)));
        assertThat(decoded).isEqualTo(reply);
        assertThat(decoded.capabilitiesOrNone().twinSocket().orElseThrow().fdIndex()).hasValue(0);
    }

    @Test
    void libvfioUserSpacedJsonParses() {
        MemorySegment p = hex(payload("00 00 02 00", LVU_SPACED_JSON));
        assertThat(p.byteSize()).isEqualTo(4 + 105);
        Capabilities caps = VersionReply.decode(p).capabilitiesOrNone();
        assertThat(caps.maxMsgFds()).hasValue(8);
        assertThat(caps.maxDataXferSize()).hasValue(1048576);
        assertThat(caps.migration().orElseThrow().pgsize()).hasValue(4096);
        assertThat(caps.twinSocketSupported()).isFalse();
    }

    @Test
    void qemuJsonParses() {
        Capabilities caps = VersionRequest.decode(hex(payload("00 00 00 00", QEMU_JSON))).capabilitiesOrNone();
        assertThat(caps.pgsizes()).hasValue(4096);
        assertThat(caps.maxMsgFds()).hasValue(16);
        assertThat(caps.maxDmaMaps()).hasValue(65535);
        assertThat(caps.maxDataXferSize()).hasValue(1048576);
        assertThat(caps.migration()).contains(new LegacyMigration(OptionalLong.of(4096), OptionalLong.of(268435456)));
        assertThat(caps.writeMultipleOrDefault()).isTrue();
        assertThat(caps.twinSocket()).isEmpty();
        assertThat(caps.extensions()).isEmpty();
    }

    @Test
    void noJsonMeansDefaults() {
        VersionRequest bare = new VersionRequest(0, 0, Optional.empty());
        assertThat(encode(bare)).isEqualTo(norm("00 00 00 00"));
        assertThat(VersionRequest.decode(hex("00 00 00 00"))).isEqualTo(bare);
        Capabilities caps = bare.capabilitiesOrNone();
        assertThat(caps.maxMsgFdsOrDefault()).isEqualTo(1);
        assertThat(caps.maxDataXferSizeOrDefault()).isEqualTo(1048576);
        assertThat(caps.maxDmaMapsOrDefault()).isEqualTo(65535);
        assertThat(caps.pgsizesOrDefault()).isEqualTo(4096);
        assertThat(caps.writeMultipleOrDefault()).isFalse();
        assertThat(caps.twinSocketSupported()).isFalse();
        // {} and {"capabilities":{}} also mean "all defaults"
        assertThat(VersionRequest.decode(hex(payload("00 00 00 00", "{}"))).capabilities()).contains(Capabilities.NONE);
        assertThat(encode(new VersionRequest(0, 0, Capabilities.NONE))).isEqualTo(payload("00 00 00 00", "{\"capabilities\":{}}"));
    }

    @Test
    void unknownKeysAreIgnoredButKept() {
        Capabilities caps = Capabilities.fromJson(
                "{\"capabilities\":{\"max_msg_fds\":4,\"vfu_precopy_info\":{\"v\":1},\"future\":[1,2]},\"other\":true}");
        assertThat(caps.maxMsgFds()).hasValue(4);
        assertThat(caps.extensions()).containsOnlyKeys("vfu_precopy_info", "future");
        // nested unknown keys too
        assertThat(Capabilities.fromJson("{\"capabilities\":{\"twin_socket\":{\"supported\":true,\"x\":\"y\"}}}")
                .twinSocket()).contains(TwinSocket.offer());
        // extensions are written after the standard keys
        Capabilities ext = Capabilities.NONE.withMaxMsgFds(1).withExtension("vfu_x", JsonNodeFactory.instance.booleanNode(true));
        assertThat(ext.toJson()).isEqualTo("{\"capabilities\":{\"max_msg_fds\":1,\"vfu_x\":true}}");
        assertThat(Capabilities.fromJson(ext.toJson())).isEqualTo(ext);
    }

    @Test
    void u64PgsizesRoundTrip() {
        Capabilities caps = Capabilities.fromJson("{\"capabilities\":{\"pgsizes\":18446744073709547520}}");
        assertThat(caps.pgsizes()).hasValue(0xFFFF_FFFF_FFFF_F000L);
        assertThat(caps.toJson()).isEqualTo("{\"capabilities\":{\"pgsizes\":18446744073709547520}}");
    }

    @Test
    void boundaries() {
        assertThat(Capabilities.fromJson("{\"capabilities\":{\"max_msg_fds\":0}}").maxMsgFds()).hasValue(0);
        assertThat(Capabilities.fromJson("{\"capabilities\":{\"max_msg_fds\":1024}}").maxMsgFds()).hasValue(1024);
        assertThat(Capabilities.fromJson("{\"capabilities\":{\"max_data_xfer_size\":4294967295}}").maxDataXferSize())
                .hasValue(0xFFFF_FFFFL);
    }

    @Test
    void malformedPayloads() {
        fails(Errno.EINVAL, "00 00 00"); // shorter than 4
        fails(Errno.EINVAL, VERSION_0_2_FDS_8.substring(0, VERSION_0_2_FDS_8.length() - 3)); // no NUL
        fails(Errno.EINVAL, "00 00 00 00  00"); // empty text
        fails(Errno.EINVAL, "00 00 00 00  7b 7d 00 7b 7d 00"); // {} NUL {} NUL: NUL in the middle
        fails(Errno.EINVAL, "00 00 00 00  7b 22 ff 22 3a 31 7d 00"); // {"\xff":1}: not UTF-8
        String big = "{\"capabilities\":{},\"pad\":\"" + "x".repeat(Capabilities.MAX_JSON_LENGTH) + "\"}";
        fails(Errno.E2BIG, payload("00 00 00 00", big));
    }

    @Test
    void malformedJson() {
        failsJson("not json");
        failsJson("[1,2]");
        failsJson("8");
        failsJson("{\"capabilities\":{}} {}");
        failsJson("{\"capabilities\":{\"max_msg_fds\":1,\"max_msg_fds\":2}}");
        failsJson("{\"capabilities\":[]}");
        failsJson("{\"capabilities\":null}");
        failsJson("{\"capabilities\":\"x\"}");
        failsJson("{\"capabilities\":{\"max_msg_fds\":2000}}");
        failsJson("{\"capabilities\":{\"max_msg_fds\":1025}}");
        failsJson("{\"capabilities\":{\"max_msg_fds\":-1}}");
        failsJson("{\"capabilities\":{\"max_msg_fds\":8.0}}");
        failsJson("{\"capabilities\":{\"max_msg_fds\":1e1}}");
        failsJson("{\"capabilities\":{\"max_msg_fds\":\"8\"}}");
        failsJson("{\"capabilities\":{\"max_msg_fds\":true}}");
        failsJson("{\"capabilities\":{\"max_data_xfer_size\":0}}");
        failsJson("{\"capabilities\":{\"max_data_xfer_size\":4294967296}}");
        failsJson("{\"capabilities\":{\"max_dma_maps\":-5}}");
        failsJson("{\"capabilities\":{\"pgsizes\":0}}");
        failsJson("{\"capabilities\":{\"pgsizes\":18446744073709551616}}");
        failsJson("{\"capabilities\":{\"write_multiple\":1}}");
        failsJson("{\"capabilities\":{\"twin_socket\":true}}");
        failsJson("{\"capabilities\":{\"twin_socket\":{\"supported\":\"yes\"}}}");
        failsJson("{\"capabilities\":{\"twin_socket\":{\"supported\":true,\"fd_index\":-1}}}");
        failsJson("{\"capabilities\":{\"twin_socket\":{\"supported\":true,\"fd_index\":1024}}}");
        failsJson("{\"capabilities\":{\"migration\":4096}}");
        failsJson("{\"capabilities\":{\"migration\":{\"pgsize\":0}}}");
        failsJson("{\"capabilities\":{\"migration\":{\"pgsize\":4096.5}}}");
        failsJson("[".repeat(1000) + "]".repeat(1000));
    }

    @Test
    void negotiation() {
        assertThat(ProtocolVersion.negotiateMinor(0, ProtocolVersion.SERVER_MINOR)).isZero();
        assertThat(ProtocolVersion.negotiateMinor(5, ProtocolVersion.SERVER_MINOR)).isEqualTo(2);
        VersionRequest qemu = VersionRequest.decode(hex(payload("00 00 00 00", QEMU_JSON)));
        VersionReply reply = VersionReply.answer(qemu, ProtocolVersion.SERVER_MINOR, Capabilities.NONE.withMaxMsgFds(8));
        assertThat(reply.major()).isZero();
        assertThat(reply.minor()).isZero();
        assertThatThrownBy(() -> VersionReply.answer(new VersionRequest(1, 0, Optional.empty()), 2, Capabilities.NONE))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
        // major 0xffff decodes (the major check is the caller's)
        assertThat(VersionRequest.decode(hex("ff ff 01 00")).major()).isEqualTo(0xFFFF);
    }

    @Test
    void constructorsCheckRanges() {
        assertThatThrownBy(() -> Capabilities.NONE.withMaxMsgFds(1025)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Capabilities.NONE.withMaxDataXferSize(0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> TwinSocket.accepted(-1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Capabilities.NONE.withExtension("max_msg_fds", JsonNodeFactory.instance.numberNode(1)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new VersionRequest(0x10000, 0, Optional.empty())).isInstanceOf(IllegalArgumentException.class);
    }
}
