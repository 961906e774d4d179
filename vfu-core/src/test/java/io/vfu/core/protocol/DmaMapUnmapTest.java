package io.vfu.core.protocol;

import static io.vfu.core.protocol.Bytes.encode;
import static io.vfu.core.protocol.Bytes.hex;
import static io.vfu.core.protocol.Bytes.norm;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/** DMA_MAP / DMA_UNMAP golden bytes, written from the tables in protocol reference §7.1 and §7.2. */
class DmaMapUnmapTest {
    // argsz 32, flags READ|WRITE, offset 0x1000, address 0x80000000, size 0x10000
    static final String MAP = """
            20 00 00 00  03 00 00 00
            00 10 00 00 00 00 00 00
            00 00 00 80 00 00 00 00
            00 00 01 00 00 00 00 00""";
    // the libvfio-user sample client's map #1: offset = address = 4096, size 4096
    static final String MAP_SAMPLE = """
            20 00 00 00  03 00 00 00
            00 10 00 00 00 00 00 00
            00 10 00 00 00 00 00 00
            00 10 00 00 00 00 00 00""";
    // argsz 24, flags 0, address 0x1000, size 0x1000
    static final String UNMAP = """
            18 00 00 00  00 00 00 00
            00 10 00 00 00 00 00 00
            00 10 00 00 00 00 00 00""";
    // argsz 24, flags ALL, address 0, size 0
    static final String UNMAP_ALL = """
            18 00 00 00  02 00 00 00
            00 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00""";

    static void fails(Errno errno, Function<MemorySegment, ?> decoder, String bytes) {
        assertThatThrownBy(() -> decoder.apply(hex(bytes)))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(errno));
    }

    @Test
    void mapRequestBytes() {
        DmaMapRequest map = new DmaMapRequest(DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE, 0x1000, 0x8000_0000L, 0x10000);
        assertThat(encode(map)).isEqualTo(norm(MAP));
        assertThat(DmaMapRequest.decode(hex(MAP))).isEqualTo(map);
        assertThat(map.readable()).isTrue();
        assertThat(map.writable()).isTrue();
        assertThat(DmaMapRequest.decode(hex(MAP_SAMPLE))).isEqualTo(new DmaMapRequest(32, 3, 4096, 4096, 4096));
        // read-only mapping without fd
        DmaMapRequest ro = DmaMapRequest.decode(hex("20 00 00 00 01 00 00 00" + " 00".repeat(8)
                + " 00 00 10 00 00 00 00 00  00 10 00 00 00 00 00 00"));
        assertThat(ro).isEqualTo(new DmaMapRequest(1, 0, 0x100000, 0x1000));
        assertThat(ro.writable()).isFalse();
    }

    @Test
    void mapTrailingBytesIgnoredAsInLibvfioUser() {
        assertThat(DmaMapRequest.decode(hex(MAP + " ff ff ff ff"))).isEqualTo(DmaMapRequest.decode(hex(MAP)));
    }

    @Test
    void mapReplyIsEmpty() {
        assertThat(encode(new DmaMapReply())).isEmpty();
        assertThat(DmaMapReply.decode(hex(""))).isEqualTo(new DmaMapReply());
        fails(Errno.EINVAL, DmaMapReply::decode, "00");
    }

    @Test
    void malformedMapRequests() {
        fails(Errno.EINVAL, DmaMapRequest::decode, MAP.substring(0, MAP.length() - 2)); // 31 bytes
        fails(Errno.EINVAL, DmaMapRequest::decode, "1f" + MAP.substring(2)); // argsz 31
        fails(Errno.EINVAL, DmaMapRequest::decode, MAP.replace("03 00 00 00", "07 00 00 00")); // LVU MMAP
        fails(Errno.EINVAL, DmaMapRequest::decode, MAP.replace("03 00 00 00", "0b 00 00 00")); // LVU FILE_IO
        fails(Errno.EINVAL, DmaMapRequest::decode, MAP.replace("03 00 00 00", "03 00 00 80")); // reserved bit 31
        fails(Errno.EINVAL, DmaMapRequest::decode, """
                20 00 00 00  03 00 00 00
                00 10 00 00 00 00 00 00
                00 00 00 80 00 00 00 00
                00 00 00 00 00 00 00 00"""); // size 0
        fails(Errno.EINVAL, DmaMapRequest::decode, """
                20 00 00 00  03 00 00 00
                00 00 00 00 00 00 00 00
                00 f0 ff ff ff ff ff ff
                00 20 00 00 00 00 00 00"""); // address + size overflows u64
        fails(Errno.EINVAL, DmaMapRequest::decode, """
                20 00 00 00  03 00 00 00
                00 f0 ff ff ff ff ff ff
                00 00 00 00 00 00 00 00
                00 20 00 00 00 00 00 00"""); // offset + size overflows u64
    }

    @Test
    void unmapRequestAndEchoReplyBytes() {
        DmaUnmapRequest unmap = new DmaUnmapRequest(0x1000, 0x1000);
        assertThat(encode(unmap)).isEqualTo(norm(UNMAP));
        assertThat(DmaUnmapRequest.decode(hex(UNMAP))).isEqualTo(unmap);
        DmaUnmapReply echo = DmaUnmapReply.echo(unmap);
        assertThat(encode(echo)).isEqualTo(norm(UNMAP));
        assertThat(DmaUnmapReply.decode(hex(UNMAP))).isEqualTo(echo);
    }

    @Test
    void unmapAll() {
        assertThat(encode(DmaUnmapRequest.all())).isEqualTo(norm(UNMAP_ALL));
        DmaUnmapRequest all = DmaUnmapRequest.decode(hex(UNMAP_ALL));
        assertThat(all.unmapAll()).isTrue();
        assertThat(all).isEqualTo(DmaUnmapRequest.all());
        assertThat(encode(DmaUnmapReply.echo(all))).isEqualTo(norm(UNMAP_ALL));
    }

    @Test
    void unmapArgszRange() {
        // 1 MiB is the largest accepted argsz; the reply echoes the client's argsz
        String big = "00 00 10 00" + UNMAP.substring(11);
        assertThat(DmaUnmapRequest.decode(hex(big)).argsz()).isEqualTo(0x100000);
        assertThat(encode(DmaUnmapReply.echo(DmaUnmapRequest.decode(hex(big))))).isEqualTo(norm(big));
        fails(Errno.EINVAL, DmaUnmapRequest::decode, "01 00 10 00" + UNMAP.substring(11));
        fails(Errno.EINVAL, DmaUnmapRequest::decode, "17 00 00 00" + UNMAP.substring(11));
    }

    @Test
    void malformedUnmapRequests() {
        fails(Errno.EINVAL, DmaUnmapRequest::decode, UNMAP.substring(0, UNMAP.length() - 2)); // 23 bytes
        fails(Errno.EINVAL, DmaUnmapRequest::decode, UNMAP.replace("18 00 00 00  00", "18 00 00 00  01")); // dirty bitmap
        fails(Errno.EINVAL, DmaUnmapRequest::decode, UNMAP_ALL.replace("02 00 00 00", "03 00 00 00"));
        fails(Errno.EINVAL, DmaUnmapRequest::decode, UNMAP_ALL.replace("02 00 00 00", "04 00 00 00"));
        fails(Errno.EINVAL, DmaUnmapRequest::decode, UNMAP.replace("18 00 00 00  00", "18 00 00 00  02")); // ALL + range
        fails(Errno.EINVAL, DmaUnmapRequest::decode, """
                18 00 00 00  00 00 00 00
                00 00 00 00 00 00 00 ff
                00 00 00 00 00 00 00 01"""); // overflow
    }

    @Test
    void malformedUnmapReplies() {
        fails(Errno.EINVAL, DmaUnmapReply::decode, UNMAP + " 00");
        fails(Errno.EINVAL, DmaUnmapReply::decode, UNMAP.substring(0, UNMAP.length() - 2));
        fails(Errno.EINVAL, DmaUnmapReply::decode, "10" + UNMAP.substring(2));
    }
}
