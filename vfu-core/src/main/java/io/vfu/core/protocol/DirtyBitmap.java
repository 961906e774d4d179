package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.U64;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

/**
 * The dirty-page bitmap of DMA_LOGGING_REPORT (protocol reference §11.4), as static operations over a
 * {@link MemorySegment}.
 *
 * <p>Layout: for a range starting at {@code iova}, page {@code n = (addr − iova) / page_size} is bit
 * {@code n % 64} of little-endian u64 word {@code n / 64}; equivalently bit {@code n % 8} of byte
 * {@code n / 8}. The bitmap has {@code ceil(length / page_size)} meaningful bits, rounded up to whole
 * u64 words; the bits past the range are 0.
 *
 * <p>Sizes and page counts are computed with shifts (page sizes are powers of two), so no intermediate
 * value overflows: for any u64 length the bitmap is at most 2⁶¹ bytes. Page sizes come from the wire and
 * are rejected with EINVAL ({@link VfioUserException}) when not a power of two; bit indexes outside the
 * given segment are caller bugs ({@link IndexOutOfBoundsException}).
 */
public final class DirtyBitmap {
    private DirtyBitmap() {
    }

    /** True if {@code value}, read as u64, is a power of two (so 0 is not, 2⁶³ is). */
    public static boolean isPowerOfTwo(long value) {
        return Long.bitCount(value) == 1;
    }

    /** @throws VfioUserException EINVAL unless {@code pageSize} is a power of two */
    static void requirePowerOfTwo(long pageSize, String what) {
        if (!isPowerOfTwo(pageSize)) {
            throw VfioUserException.einval(what + ": page_size " + Long.toUnsignedString(pageSize)
                    + " is not a power of two");
        }
    }

    /**
     * {@code ceil(length / pageSize)}, as an unsigned u64 (only {@code pageSize} 1 with a length ≥ 2⁶³ gives
     * a value that is negative as a signed {@code long}).
     *
     * @throws VfioUserException EINVAL unless {@code pageSize} is a power of two
     */
    public static long pageCount(long length, long pageSize) {
        requirePowerOfTwo(pageSize, "dirty bitmap");
        int shift = Long.numberOfTrailingZeros(pageSize);
        return (length >>> shift) + ((length & (pageSize - 1)) != 0 ? 1 : 0);
    }

    /**
     * The bitmap size in bytes for {@code length} bytes at {@code pageSize} granularity:
     * {@code 8 · ceil(ceil(length / pageSize) / 64)}; at most 2⁶¹.
     *
     * @throws VfioUserException EINVAL unless {@code pageSize} is a power of two
     */
    public static long byteSize(long length, long pageSize) {
        long pages = pageCount(length, pageSize);
        long words = (pages >>> 6) + ((pages & 63) != 0 ? 1 : 0);
        return words << 3;
    }

    /** Whether page {@code page} is dirty. */
    public static boolean test(MemorySegment bitmap, long page) {
        return (bitmap.get(ValueLayout.JAVA_BYTE, byteIndex(bitmap, page)) & (1 << (page & 7))) != 0;
    }

    /** Marks page {@code page} dirty. */
    public static void set(MemorySegment bitmap, long page) {
        long at = byteIndex(bitmap, page);
        bitmap.set(ValueLayout.JAVA_BYTE, at, (byte) (bitmap.get(ValueLayout.JAVA_BYTE, at) | (1 << (page & 7))));
    }

    /** Marks page {@code page} clean. */
    public static void clear(MemorySegment bitmap, long page) {
        long at = byteIndex(bitmap, page);
        bitmap.set(ValueLayout.JAVA_BYTE, at, (byte) (bitmap.get(ValueLayout.JAVA_BYTE, at) & ~(1 << (page & 7))));
    }

    /** Marks pages {@code first .. first + count − 1} dirty (whole bytes at once). */
    public static void setRange(MemorySegment bitmap, long first, long count) {
        if (count == 0) {
            return;
        }
        Objects.checkFromIndexSize(first, count, bitmap.byteSize() * 8);
        long end = first + count;
        long page = first;
        while (page < end && (page & 7) != 0) {
            set(bitmap, page++);
        }
        long fullBytes = (end - page) >>> 3;
        if (fullBytes > 0) {
            bitmap.asSlice(page >>> 3, fullBytes).fill((byte) 0xFF);
            page += fullBytes << 3;
        }
        while (page < end) {
            set(bitmap, page++);
        }
    }

    /** Number of dirty pages (set bits) in the whole segment. */
    public static long cardinality(MemorySegment bitmap) {
        long n = 0;
        long words = bitmap.byteSize() >>> 3;
        for (long w = 0; w < words; w++) {
            n += Long.bitCount(bitmap.get(U64, w << 3));
        }
        for (long b = words << 3; b < bitmap.byteSize(); b++) {
            n += Integer.bitCount(bitmap.get(ValueLayout.JAVA_BYTE, b) & 0xFF);
        }
        return n;
    }

    /**
     * Re-expresses a bitmap of {@code length} bytes at {@code srcPageSize} granularity at
     * {@code dstPageSize} granularity, both starting at the same iova. Coarser target: a target page is
     * dirty if any source page inside it is (OR). Finer target: every target page inside a dirty source
     * page is dirty (replicate), clipped to the range. The first {@link #byteSize byteSize(length,
     * dstPageSize)} bytes of {@code dst} are overwritten (bits past the range are 0); source bits past the
     * range are ignored. Work is proportional to the source size plus the dirty target bits.
     *
     * @throws VfioUserException         EINVAL unless both page sizes are powers of two
     * @throws IllegalArgumentException if a segment is smaller than its bitmap size, or they overlap
     */
    public static void convert(MemorySegment src, long srcPageSize, MemorySegment dst, long dstPageSize, long length) {
        long srcBytes = byteSize(length, srcPageSize);
        long dstBytes = byteSize(length, dstPageSize);
        if (src.byteSize() < srcBytes || dst.byteSize() < dstBytes) {
            throw new IllegalArgumentException("bitmap segments too small: src " + src.byteSize() + " < " + srcBytes
                    + " or dst " + dst.byteSize() + " < " + dstBytes);
        }
        if (src.asOverlappingSlice(dst).isPresent()) {
            throw new IllegalArgumentException("source and target bitmaps overlap");
        }
        long srcPages = pageCount(length, srcPageSize);
        long dstPages = pageCount(length, dstPageSize);
        int srcShift = Long.numberOfTrailingZeros(srcPageSize);
        int dstShift = Long.numberOfTrailingZeros(dstPageSize);
        dst.asSlice(0, dstBytes).fill((byte) 0);
        for (long w = 0; w < srcBytes >>> 3; w++) {
            long bits = src.get(U64, w << 3);
            while (bits != 0) {
                long page = (w << 6) + Long.numberOfTrailingZeros(bits);
                bits &= bits - 1;
                if (Long.compareUnsigned(page, srcPages) >= 0) {
                    break;
                }
                if (dstShift >= srcShift) {
                    set(dst, page >>> (dstShift - srcShift));
                } else {
                    int ratio = srcShift - dstShift;
                    long first = page << ratio;
                    long left = dstPages - first; // > 0: the source page starts inside the range
                    setRange(dst, first, ratio >= 63 ? left : Math.min(1L << ratio, left));
                }
            }
        }
    }

    private static long byteIndex(MemorySegment bitmap, long page) {
        return Objects.checkIndex(page, bitmap.byteSize() * 8) >>> 3;
    }
}
