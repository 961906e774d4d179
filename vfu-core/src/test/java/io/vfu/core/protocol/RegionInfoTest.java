package io.vfu.core.protocol;

import static io.vfu.core.protocol.Bytes.encode;
import static io.vfu.core.protocol.Bytes.hex;
import static io.vfu.core.protocol.Bytes.norm;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.RegionCapability.Area;
import io.vfu.core.protocol.RegionCapability.MsixMappable;
import io.vfu.core.protocol.RegionCapability.RegionType;
import io.vfu.core.protocol.RegionCapability.SparseMmap;
import io.vfu.core.protocol.RegionCapability.Unknown;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * DEVICE_GET_REGION_INFO golden bytes, written from the tables in protocol reference §8.3 and the
 * libvfio-user sample server's BAR1 replies (samples §3.3).
 */
class RegionInfoTest {
    static final String REQUEST_BAR1 = """
            20 00 00 00  00 00 00 00  01 00 00 00  00 00 00 00
            00 00 00 00 00 00 00 00   00 00 00 00 00 00 00 00""";
    // BAR1, argsz 80: flags R|W|MMAP|CAPS, size 0x3000, offset 0, one SPARSE_MMAP cap with 2 areas
    static final String REPLY_BAR1 = """
            50 00 00 00  0f 00 00 00  01 00 00 00  20 00 00 00
            00 30 00 00 00 00 00 00   00 00 00 00 00 00 00 00
            01 00 01 00  00 00 00 00  02 00 00 00  00 00 00 00
            00 00 00 00 00 00 00 00   00 10 00 00 00 00 00 00
            00 20 00 00 00 00 00 00   00 10 00 00 00 00 00 00""";
    // BAR1 asked with argsz 32: argsz 80, flags R|W|MMAP, no CAPS, no caps
    static final String REPLY_BAR1_TRUNCATED = """
            50 00 00 00  07 00 00 00  01 00 00 00  00 00 00 00
            00 30 00 00 00 00 00 00   00 00 00 00 00 00 00 00""";
    // config space: argsz 32, flags R|W, index 7, size 256
    static final String REPLY_CONFIG = """
            20 00 00 00  03 00 00 00  07 00 00 00  00 00 00 00
            00 01 00 00 00 00 00 00   00 00 00 00 00 00 00 00""";
    // region 9: flags R|W|CAPS, size 0x1000, offset 0x10000; TYPE(1, 2) @32 → MSIX_MAPPABLE @48
    // → unknown id 0x1234 version 7 with 8 body bytes @56 → SPARSE_MMAP {0, 0x1000} @72; argsz 104
    static final String REPLY_CHAIN = """
            68 00 00 00  0b 00 00 00  09 00 00 00  20 00 00 00
            00 10 00 00 00 00 00 00   00 00 01 00 00 00 00 00
            02 00 01 00  30 00 00 00  01 00 00 00  02 00 00 00
            03 00 01 00  38 00 00 00
            34 12 07 00  48 00 00 00  aa bb cc dd ee ff 00 11
            01 00 01 00  00 00 00 00  01 00 00 00  00 00 00 00
            00 00 00 00 00 00 00 00   00 10 00 00 00 00 00 00""";

    static final RegionInfoReply BAR1 = new RegionInfoReply(
            RegionInfoReply.FLAG_READ | RegionInfoReply.FLAG_WRITE | RegionInfoReply.FLAG_MMAP, 1, 0x3000, 0,
            List.of(new SparseMmap(new Area(0, 0x1000), new Area(0x2000, 0x1000))));

    static void fails(Errno errno, Function<MemorySegment, ?> decoder, String bytes) {
        assertThatThrownBy(() -> decoder.apply(hex(bytes)))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(errno));
    }

    @Test
    void requestBytes() {
        assertThat(encode(new RegionInfoRequest(RegionIndex.BAR1))).isEqualTo(norm(REQUEST_BAR1));
        assertThat(RegionInfoRequest.decode(hex(REQUEST_BAR1))).isEqualTo(new RegionInfoRequest(32, 1));
        // the retry with the reply's argsz
        assertThat(encode(new RegionInfoRequest(80, 1))).isEqualTo(norm("50" + REQUEST_BAR1.substring(2)));
    }

    @Test
    void malformedRequests() {
        fails(Errno.EINVAL, RegionInfoRequest::decode, REQUEST_BAR1.substring(0, REQUEST_BAR1.length() - 2));
        fails(Errno.EINVAL, RegionInfoRequest::decode, "1f" + REQUEST_BAR1.substring(2));
    }

    @Test
    void sparseMmapReplyBytes() {
        assertThat(BAR1.argsz()).isEqualTo(80);
        assertThat(BAR1.flags()).isEqualTo(0xf);
        assertThat(encode(BAR1)).isEqualTo(norm(REPLY_BAR1));
        RegionInfoReply decoded = RegionInfoReply.decode(hex(REPLY_BAR1));
        assertThat(decoded).isEqualTo(BAR1);
        assertThat(decoded.truncated()).isFalse();
        assertThat(decoded.sparseMmapAreas()).containsExactly(new Area(0, 0x1000), new Area(0x2000, 0x1000));
        assertThat(decoded.regionType()).isEmpty();
    }

    @Test
    void argszTooSmall() {
        assertThat(BAR1.forClient(80)).isSameAs(BAR1);
        RegionInfoReply small = BAR1.forClient(32);
        assertThat(small.truncated()).isTrue();
        assertThat(encode(small)).isEqualTo(norm(REPLY_BAR1_TRUNCATED));
        RegionInfoReply decoded = RegionInfoReply.decode(hex(REPLY_BAR1_TRUNCATED));
        assertThat(decoded).isEqualTo(small);
        assertThat(decoded.truncated()).isTrue();
        assertThat(decoded.argsz()).isEqualTo(80);
        assertThat(decoded.flags() & RegionInfoReply.FLAG_MMAP).isNotZero();
        // libvfio-user pads to min(needed, client argsz): a client that asked with 40 gets 40 bytes
        RegionInfoReply padded = RegionInfoReply.decode(hex(REPLY_BAR1_TRUNCATED + " 00 00 00 00 00 00 00 00"));
        assertThat(padded).isEqualTo(small);
    }

    @Test
    void noCapsReplyBytes() {
        RegionInfoReply config = new RegionInfoReply(RegionInfoReply.FLAG_READ | RegionInfoReply.FLAG_WRITE, RegionIndex.CONFIG, 256, 0);
        assertThat(encode(config)).isEqualTo(norm(REPLY_CONFIG));
        assertThat(RegionInfoReply.decode(hex(REPLY_CONFIG))).isEqualTo(config);
        assertThat(config.truncated()).isFalse();
        assertThat(config.forClient(32)).isSameAs(config);
        // unimplemented region: size 0, flags 0
        assertThat(encode(new RegionInfoReply(0, 2, 0, 0)))
                .isEqualTo(norm("20 00 00 00  00 00 00 00  02 00 00 00  00 00 00 00" + " 00".repeat(16)));
    }

    @Test
    void capabilityChainBytes() {
        RegionInfoReply reply = new RegionInfoReply(RegionInfoReply.FLAG_READ | RegionInfoReply.FLAG_WRITE, 9, 0x1000, 0x10000,
                List.of(new RegionType(1, 2), new MsixMappable(),
                        new Unknown(0x1234, 7, new byte[] {(byte) 0xaa, (byte) 0xbb, (byte) 0xcc, (byte) 0xdd, (byte) 0xee, (byte) 0xff, 0, 0x11}),
                        new SparseMmap(new Area(0, 0x1000))));
        assertThat(reply.argsz()).isEqualTo(104);
        assertThat(encode(reply)).isEqualTo(norm(REPLY_CHAIN));
        RegionInfoReply decoded = RegionInfoReply.decode(hex(REPLY_CHAIN));
        assertThat(decoded).isEqualTo(reply);
        assertThat(decoded.regionType()).contains(new RegionType(1, 2));
        assertThat(decoded.sparseMmapAreas()).containsExactly(new Area(0, 0x1000));
    }

    @Test
    void knownIdWithOtherVersionIsKeptRaw() {
        // SPARSE_MMAP version 2: not understood, skipped as Unknown (body = 8 bytes up to the payload end)
        RegionInfoReply r = RegionInfoReply.decode(hex("""
                28 00 00 00  0b 00 00 00  01 00 00 00  20 00 00 00
                00 10 00 00 00 00 00 00   00 00 00 00 00 00 00 00
                01 00 02 00  00 00 00 00"""));
        assertThat(r.capabilities()).containsExactly(new Unknown(1, 2, new byte[0]));
        assertThat(r.sparseMmapAreas()).isEmpty();
    }

    @Test
    void capsWithGapsAreFollowedByNext() {
        // TYPE @40 (cap_offset 40, 8 padding bytes before), next → MSIX @64 (8 padding bytes between)
        RegionInfoReply r = RegionInfoReply.decode(hex("""
                48 00 00 00  08 00 00 00  0a 00 00 00  28 00 00 00
                00 10 00 00 00 00 00 00   00 00 00 00 00 00 00 00
                ff ff ff ff ff ff ff ff
                02 00 01 00  40 00 00 00  05 00 00 00  06 00 00 00
                ff ff ff ff ff ff ff ff
                03 00 01 00  00 00 00 00"""));
        assertThat(r.capabilities()).containsExactly(new RegionType(5, 6), new MsixMappable());
    }

    @Test
    void malformedReplies() {
        fails(Errno.EINVAL, RegionInfoReply::decode, REPLY_CONFIG.substring(0, REPLY_CONFIG.length() - 2)); // 31 bytes
        fails(Errno.EINVAL, RegionInfoReply::decode, "1f" + REPLY_CONFIG.substring(2)); // argsz 31
        fails(Errno.EINVAL, RegionInfoReply::decode, REPLY_CONFIG + " 00"); // longer than argsz
        assertThatThrownBy(() -> RegionInfoReply.decode(hex(REPLY_BAR1).asSlice(0, 48))) // CAPS but truncated (48 of 80)
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.getMessage()).contains("truncated"));
        fails(Errno.EINVAL, RegionInfoReply::decode, REPLY_BAR1.replace("01 00 00 00  20 00", "01 00 00 00  10 00")); // cap_offset 16
        fails(Errno.EINVAL, RegionInfoReply::decode, REPLY_BAR1.replace("01 00 00 00  20 00", "01 00 00 00  00 00")); // cap_offset 0
        fails(Errno.EINVAL, RegionInfoReply::decode, REPLY_BAR1.replace("01 00 00 00  20 00", "01 00 00 00  4c 00")); // header outside
        fails(Errno.EINVAL, RegionInfoReply::decode, REPLY_BAR1.replace("01 00 01 00  00 00 00 00", "01 00 01 00  20 00 00 00")); // next = self
        fails(Errno.EINVAL, RegionInfoReply::decode, REPLY_BAR1.replace("01 00 01 00  00 00 00 00", "01 00 01 00  50 00 00 00")); // next beyond
        fails(Errno.EINVAL, RegionInfoReply::decode, REPLY_BAR1.replace("02 00 00 00  00 00 00 00", "03 00 00 00  00 00 00 00")); // nr_areas 3
        fails(Errno.EINVAL, RegionInfoReply::decode, REPLY_BAR1.replace("02 00 00 00  00 00 00 00", "ff ff ff ff  00 00 00 00")); // nr_areas 2^32-1
        fails(Errno.EINVAL, RegionInfoReply::decode, REPLY_BAR1.replace("00 30 00 00 00 00 00 00", "00 20 00 00 00 00 00 00")); // area beyond size
        fails(Errno.EINVAL, RegionInfoReply::decode, """
                28 00 00 00  08 00 00 00  01 00 00 00  20 00 00 00
                00 10 00 00 00 00 00 00   00 00 00 00 00 00 00 00
                02 00 01 00  00 00 00 00"""); // TYPE cap cut short
        fails(Errno.EINVAL, RegionInfoReply::decode, """
                30 00 00 00  08 00 00 00  01 00 00 00  20 00 00 00
                00 10 00 00 00 00 00 00   00 00 00 00 00 00 00 00
                03 00 01 00  28 00 00 00
                03 00 01 00  20 00 00 00"""); // loop: second cap points back to the first
        fails(Errno.EINVAL, RegionInfoReply::decode, """
                30 00 00 00  08 00 00 00  01 00 00 00  20 00 00 00
                00 10 00 00 00 00 00 00   00 00 00 00 00 00 00 00
                01 00 01 00  24 00 00 00  00 00 00 00 00 00 00 00"""); // next inside the current header
        fails(Errno.EINVAL, RegionInfoReply::decode, """
                2c 00 00 00  08 00 00 00  01 00 00 00  20 00 00 00
                00 10 00 00 00 00 00 00   00 00 00 00 00 00 00 00
                03 00 01 00  24 00 00 00  00 00 00 00"""); // overlapping headers that would each parse
    }

    @Test
    void chainLengthIsBounded() {
        assertThat(RegionInfoReply.decode(msixChain(RegionInfoReply.MAX_CAPS)).capabilities()).hasSize(RegionInfoReply.MAX_CAPS);
        assertThatThrownBy(() -> RegionInfoReply.decode(msixChain(RegionInfoReply.MAX_CAPS + 1)))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
    }

    private static MemorySegment msixChain(int n) {
        List<RegionCapability> caps = java.util.Collections.nCopies(n, new MsixMappable());
        return new RegionInfoReply(RegionInfoReply.FLAG_READ, 1, 0x1000, 0, caps).toSegment();
    }

    @Test
    void capsFlagMustMatchTheChain() {
        assertThatThrownBy(() -> new RegionInfoReply(32, RegionInfoReply.FLAG_CAPS, 1, 0, 0, List.of()))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new RegionInfoReply(40, 0, 1, 0, 0, List.of(new MsixMappable())))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
