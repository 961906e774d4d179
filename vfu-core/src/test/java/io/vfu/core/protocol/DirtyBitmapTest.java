package io.vfu.core.protocol;

import static io.vfu.core.protocol.Bytes.hex;
import static io.vfu.core.protocol.Bytes.norm;
import static io.vfu.core.protocol.Bytes.toHex;
import static io.vfu.core.protocol.Rejects.einval;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** The DMA_LOGGING_REPORT bitmap of protocol reference §11.4: u64 LE words, bit n = page n, LSB first. */
class DirtyBitmapTest {
    static MemorySegment zeros(int bytes) {
        return MemorySegment.ofArray(new byte[bytes]);
    }

    @Test
    void sizes() {
        assertThat(DirtyBitmap.byteSize(0x1000, 0x1000)).isEqualTo(8);
        assertThat(DirtyBitmap.byteSize(0, 0x1000)).isZero();
        assertThat(DirtyBitmap.byteSize(1, 0x1000)).isEqualTo(8);
        assertThat(DirtyBitmap.byteSize(64 * 0x1000, 0x1000)).isEqualTo(8);
        assertThat(DirtyBitmap.byteSize(64 * 0x1000 + 1, 0x1000)).isEqualTo(16);
        assertThat(DirtyBitmap.byteSize(8L << 40, 0x1000)).isEqualTo(256L << 20);         // 8 TiB at 4 KiB: 256 MiB
        assertThat(DirtyBitmap.byteSize(-1L, 1)).isEqualTo(1L << 61);                    // 2^64-1 pages
        assertThat(DirtyBitmap.byteSize(-1L, 1L << 63)).isEqualTo(8);                    // 2 pages
        assertThat(DirtyBitmap.pageCount(-1L, 1)).isEqualTo(-1L);                        // unsigned 2^64-1
        assertThat(DirtyBitmap.pageCount(0x2001, 0x1000)).isEqualTo(3);
    }

    @Test
    void pageSizeMustBeAPowerOfTwo() {
        einval(() -> DirtyBitmap.byteSize(0x1000, 0));
        einval(() -> DirtyBitmap.byteSize(0x1000, 3));
        einval(() -> DirtyBitmap.byteSize(0x1000, 0x1800));
        einval(() -> DirtyBitmap.byteSize(0x1000, -1L));
        assertThat(DirtyBitmap.isPowerOfTwo(1L << 63)).isTrue();
    }

    @Test
    void setTestClearFollowTheWireLayout() {
        MemorySegment bitmap = zeros(16);
        DirtyBitmap.set(bitmap, 0);
        DirtyBitmap.set(bitmap, 9);
        DirtyBitmap.set(bitmap, 64);
        DirtyBitmap.set(bitmap, 127);
        assertThat(toHex(bitmap)).isEqualTo(norm("01 02 00 00 00 00 00 00  01 00 00 00 00 00 00 80"));
        assertThat(bitmap.get(Wire.U64, 0)).isEqualTo(0x201L);
        assertThat(DirtyBitmap.test(bitmap, 9)).isTrue();
        assertThat(DirtyBitmap.test(bitmap, 8)).isFalse();
        assertThat(DirtyBitmap.cardinality(bitmap)).isEqualTo(4);
        DirtyBitmap.clear(bitmap, 9);
        assertThat(toHex(bitmap)).isEqualTo(norm("01 00 00 00 00 00 00 00  01 00 00 00 00 00 00 80"));
        assertThatThrownBy(() -> DirtyBitmap.set(bitmap, 128)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> DirtyBitmap.test(bitmap, -1)).isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void setRange() {
        MemorySegment bitmap = zeros(8);
        DirtyBitmap.setRange(bitmap, 3, 14);                                               // pages 3..16
        assertThat(toHex(bitmap)).isEqualTo(norm("f8 ff 01 00 00 00 00 00"));
        DirtyBitmap.setRange(bitmap, 40, 0);
        DirtyBitmap.setRange(bitmap, 60, 4);                                               // pages 60..63
        assertThat(toHex(bitmap)).isEqualTo(norm("f8 ff 01 00 00 00 00 f0"));
        assertThat(DirtyBitmap.cardinality(bitmap)).isEqualTo(18);
        assertThatThrownBy(() -> DirtyBitmap.setRange(bitmap, 60, 5)).isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void convertToCoarserPagesOrsBits() {
        // 16 pages of 4 KiB, dirty 1, 5, 6, 15 -> 4 pages of 16 KiB, dirty 0, 1, 3
        MemorySegment src = hex("62 80 00 00 00 00 00 00");
        MemorySegment dst = hex("ff ff ff ff ff ff ff ff");
        DirtyBitmap.convert(src, 0x1000, dst, 0x4000, 0x10000);
        assertThat(toHex(dst)).isEqualTo(norm("0b 00 00 00 00 00 00 00"));
    }

    @Test
    void convertToFinerPagesReplicatesBitsWithinTheRange() {
        // 36 KiB = 3 pages of 16 KiB, dirty 0 and 2 -> 9 pages of 4 KiB: 0..3 and 8 (page 2 clipped)
        MemorySegment src = hex("05 00 00 00 00 00 00 00");
        MemorySegment dst = zeros(8);
        DirtyBitmap.convert(src, 0x4000, dst, 0x1000, 0x9000);
        assertThat(toHex(dst)).isEqualTo(norm("0f 01 00 00 00 00 00 00"));
    }

    @Test
    void convertSamePageSizeDropsBitsBeyondTheRange() {
        MemorySegment dst = zeros(8);
        DirtyBitmap.convert(hex("ff 00 00 00 00 00 00 01"), 0x1000, dst, 0x1000, 0x3000);
        assertThat(toHex(dst)).isEqualTo(norm("07 00 00 00 00 00 00 00"));
    }

    @Test
    void convertWithExtremeRatio() {
        // one 2^63-byte page covering 16 bytes -> 16 one-byte pages
        MemorySegment dst = zeros(8);
        DirtyBitmap.convert(hex("01 00 00 00 00 00 00 00"), 1L << 63, dst, 1, 16);
        assertThat(toHex(dst)).isEqualTo(norm("ff ff 00 00 00 00 00 00"));
        MemorySegment back = zeros(8);
        DirtyBitmap.convert(dst, 1, back, 1L << 63, 16);
        assertThat(toHex(back)).isEqualTo(norm("01 00 00 00 00 00 00 00"));
    }

    @Test
    void convertChecksItsArguments() {
        einval(() -> DirtyBitmap.convert(zeros(8), 0x1000, zeros(8), 0x1800, 0x1000));
        assertThatThrownBy(() -> DirtyBitmap.convert(zeros(8), 0x1000, zeros(8), 0x1000, 65 * 0x1000))
                .isInstanceOf(IllegalArgumentException.class);
        MemorySegment same = zeros(16);
        assertThatThrownBy(() -> DirtyBitmap.convert(same.asSlice(0, 8), 0x1000, same.asSlice(4, 8), 0x2000, 0x1000))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
