package io.vfu.server.dma;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.DirtyBitmap;
import io.vfu.core.protocol.FeaturePayload.DmaLoggingControl;
import io.vfu.core.protocol.FeaturePayload.DmaLoggingControl.Range;
import io.vfu.core.protocol.VfioUserException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentSkipListMap;

/**
 * One dirty-logging session (DMA_LOGGING_START .. STOP): which IOVA ranges are logged, and which tracking
 * pages were written.
 *
 * <p>Dirty bits are kept per <em>absolute</em> tracking page ({@code iova >>> shift}) in a sparse map of
 * fixed-size chunks ({@value #CHUNK_PAGES} pages, 4 KiB of bits each), allocated on the first write into
 * them. That serves both "log these ranges" and "log everything" (num_ranges 0, where no fixed bitmap could
 * cover the 64-bit space), lets unaligned and adjacent ranges share an edge tracking page, and keeps dirty
 * bits across an unmap/remap of the same IOVA. Memory is bounded by what the device writes; for explicit
 * ranges it is also at most the {@link DmaController#MAX_BITMAP_BYTES} checked at START.
 *
 * <p>Thread-safe: {@link #mark} may run on any thread concurrently with {@link #report}; bits are set with
 * atomic OR and read-and-cleared with atomic AND, so no write is lost between two reports.
 */
final class DirtyLog {
    static final int CHUNK_SHIFT = 15;
    static final long CHUNK_PAGES = 1L << CHUNK_SHIFT;
    private static final int CHUNK_WORDS = (int) (CHUNK_PAGES >>> 6);
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

    /** The START data as received (for the idempotent-restart comparison). */
    final DmaLoggingControl requested;
    /** Tracking page size (power of two, ≥ {@link DmaController#MIN_TRACKING_PAGE_SIZE}). */
    final long pageSize;
    private final int shift;
    /** Logged ranges by first byte (unsigned order), value = last byte (inclusive); null = everything. */
    private final NavigableMap<Long, Long> ranges;
    private final ConcurrentSkipListMap<Long, long[]> chunks = new ConcurrentSkipListMap<>();

    private DirtyLog(DmaLoggingControl requested, long pageSize, NavigableMap<Long, Long> ranges) {
        this.requested = requested;
        this.pageSize = pageSize;
        this.shift = Long.numberOfTrailingZeros(pageSize);
        this.ranges = ranges;
    }

    /**
     * Validates START data and builds the session.
     *
     * @throws VfioUserException EINVAL (page size 0 or not a power of two, an empty range, overlapping
     *                           ranges, an overflowing range), E2BIG (more than
     *                           {@link DmaController#MAX_LOGGED_RANGES} ranges, or bitmaps for the ranges
     *                           above {@link DmaController#MAX_BITMAP_BYTES} in total)
     */
    static DirtyLog start(DmaLoggingControl control) {
        long requestedPage = control.pageSize();
        if (!DirtyBitmap.isPowerOfTwo(requestedPage)) {
            throw VfioUserException.einval("DMA_LOGGING_START: page_size " + Long.toUnsignedString(requestedPage)
                    + " is not a power of two");
        }
        long pageSize = Long.compareUnsigned(requestedPage, DmaController.MIN_TRACKING_PAGE_SIZE) < 0
                ? DmaController.MIN_TRACKING_PAGE_SIZE : requestedPage;
        List<Range> list = control.ranges();
        if (list.isEmpty()) {
            return new DirtyLog(control, pageSize, null);
        }
        if (list.size() > DmaController.MAX_LOGGED_RANGES) {
            throw new VfioUserException(Errno.E2BIG, "DMA_LOGGING_START: " + list.size() + " ranges, at most "
                    + DmaController.MAX_LOGGED_RANGES);
        }
        List<Range> sorted = new ArrayList<>(list);
        sorted.sort((a, b) -> Long.compareUnsigned(a.iova(), b.iova()));
        int shift = Long.numberOfTrailingZeros(pageSize);
        NavigableMap<Long, Long> ranges = new TreeMap<>(Long::compareUnsigned);
        long total = 0;
        long previousLast = 0;
        boolean first = true;
        for (Range r : sorted) {
            if (r.length() == 0) {
                throw VfioUserException.einval("DMA_LOGGING_START: empty range at iova " + hex(r.iova()));
            }
            if (Long.compareUnsigned(r.iova(), -r.length()) > 0) {
                throw VfioUserException.einval("DMA_LOGGING_START: range " + hex(r.iova()) + " + " + hex(r.length())
                        + " overflows u64");
            }
            long last = r.iova() + r.length() - 1;
            if (!first && Long.compareUnsigned(r.iova(), previousLast) <= 0) {
                throw VfioUserException.einval("DMA_LOGGING_START: range at " + hex(r.iova())
                        + " overlaps the range ending at " + hex(previousLast));
            }
            long pages = (last >>> shift) - (r.iova() >>> shift) + 1;
            long bytes = ((pages + 63) >>> 6) << 3;
            total += bytes; // each term ≤ MAX (checked below), so the sum never overflows
            if (bytes > DmaController.MAX_BITMAP_BYTES || total > DmaController.MAX_BITMAP_BYTES) {
                throw new VfioUserException(Errno.E2BIG, "DMA_LOGGING_START: the ranges need more than "
                        + DmaController.MAX_BITMAP_BYTES + " bitmap bytes at page size " + pageSize);
            }
            ranges.put(r.iova(), last);
            previousLast = last;
            first = false;
        }
        return new DirtyLog(control, pageSize, Collections.unmodifiableNavigableMap(ranges));
    }

    /** Whether every write is logged (num_ranges 0). */
    boolean everything() {
        return ranges == null;
    }

    /** Records a write of {@code [iova, last]} (inclusive, unsigned), clipped to the logged ranges. */
    void mark(long iova, long last) {
        if (ranges == null) {
            markPages(iova >>> shift, last >>> shift);
            return;
        }
        Map.Entry<Long, Long> e = ranges.floorEntry(iova);
        if (e == null || Long.compareUnsigned(iova, e.getValue()) > 0) {
            e = ranges.higherEntry(iova);
        }
        while (e != null && Long.compareUnsigned(e.getKey(), last) <= 0) {
            long lo = Long.compareUnsigned(e.getKey(), iova) > 0 ? e.getKey() : iova;
            long hi = Long.compareUnsigned(e.getValue(), last) < 0 ? e.getValue() : last;
            markPages(lo >>> shift, hi >>> shift);
            e = ranges.higherEntry(e.getKey());
        }
    }

    private void markPages(long first, long last) {
        long page = first;
        while (true) {
            long chunk = page >>> CHUNK_SHIFT;
            long chunkLast = (chunk << CHUNK_SHIFT) + CHUNK_PAGES - 1;
            long stop = Math.min(last, chunkLast); // page indexes are < 2^52: signed compare is fine
            long[] words = chunks.computeIfAbsent(chunk, k -> new long[CHUNK_WORDS]);
            int lo = (int) (page & (CHUNK_PAGES - 1));
            int hi = (int) (stop & (CHUNK_PAGES - 1));
            for (int w = lo >>> 6; w <= hi >>> 6; w++) {
                WORDS.getAndBitwiseOr(words, w, wordMask(w, lo, hi));
            }
            if (stop == last) {
                return;
            }
            page = stop + 1;
        }
    }

    /** The bits of word {@code w} that fall in pages {@code lo..hi} (chunk-relative, inclusive). */
    private static long wordMask(int w, long lo, long hi) {
        long mask = -1L;
        if (w == (int) (lo >>> 6)) {
            mask &= -1L << (lo & 63);
        }
        if (w == (int) (hi >>> 6)) {
            mask &= -1L >>> (63 - (hi & 63));
        }
        return mask;
    }

    /**
     * Whether {@code [iova, last]} lies inside the logged ranges (their union: adjacent ranges may be
     * reported together).
     */
    boolean covers(long iova, long last) {
        if (ranges == null) {
            return true;
        }
        long cur = iova;
        while (true) {
            Map.Entry<Long, Long> e = ranges.floorEntry(cur);
            if (e == null || Long.compareUnsigned(cur, e.getValue()) > 0) {
                return false;
            }
            if (Long.compareUnsigned(e.getValue(), last) >= 0) {
                return true;
            }
            cur = e.getValue() + 1; // < last ≤ 2^64 − 1: no wrap
        }
    }

    /**
     * Read-and-clear of {@code [iova, iova + length)} as a {@link DirtyBitmap} at {@code reportPageSize}.
     * Tracking pages entirely inside the range are cleared; a tracking page only partly inside (a range
     * not aligned to {@link #pageSize}) is reported but kept, so a neighbouring report still sees it.
     *
     * @param length &gt; 0, {@code iova + length} does not overflow; the caller bounded the bitmap size
     */
    MemorySegment report(long iova, long length, long reportPageSize, SegmentAllocator allocator) {
        long bytes = DirtyBitmap.byteSize(length, reportPageSize);
        MemorySegment out = allocator.allocate(bytes, Long.BYTES);
        out.fill((byte) 0);
        long last = iova + length - 1;
        long firstPage = iova >>> shift;
        long lastPage = last >>> shift;
        boolean firstPartial = (firstPage << shift) != iova;
        boolean lastPartial = (lastPage << shift) + (pageSize - 1) != last;
        int reportShift = Long.numberOfTrailingZeros(reportPageSize);
        for (Map.Entry<Long, long[]> e : chunks.subMap(firstPage >>> CHUNK_SHIFT, true, lastPage >>> CHUNK_SHIFT, true)
                .entrySet()) {
            long base = e.getKey() << CHUNK_SHIFT;
            long[] words = e.getValue();
            long lo = Math.max(firstPage, base) - base;
            long hi = Math.min(lastPage, base + CHUNK_PAGES - 1) - base;
            for (int w = (int) (lo >>> 6); w <= (int) (hi >>> 6); w++) {
                long mask = wordMask(w, lo, hi);
                long keep = 0;
                if (firstPartial) {
                    keep |= bitOf(w, firstPage - base);
                }
                if (lastPartial) {
                    keep |= bitOf(w, lastPage - base);
                }
                long clear = mask & ~keep;
                long previous = clear == 0 ? (long) WORDS.getVolatile(words, w)
                        : (long) WORDS.getAndBitwiseAnd(words, w, ~clear);
                long bits = previous & mask;
                while (bits != 0) {
                    long page = base + ((long) w << 6) + Long.numberOfTrailingZeros(bits);
                    bits &= bits - 1;
                    emit(out, page, iova, last, reportShift);
                }
            }
        }
        return out;
    }

    /** The bit of chunk-relative page {@code page} if it is in word {@code w}, else 0. */
    private static long bitOf(int w, long page) {
        return page >= 0 && page < CHUNK_PAGES && (int) (page >>> 6) == w ? 1L << (page & 63) : 0;
    }

    /** Sets the report bits covering dirty tracking page {@code page}, clipped to {@code [iova, last]}. */
    private void emit(MemorySegment out, long page, long iova, long last, int reportShift) {
        long start = page << shift;
        long end = start + (pageSize - 1);
        long lo = Long.compareUnsigned(start, iova) > 0 ? start : iova;
        long hi = Long.compareUnsigned(end, last) < 0 ? end : last;
        long firstBit = (lo - iova) >>> reportShift;
        long lastBit = (hi - iova) >>> reportShift;
        DirtyBitmap.setRange(out, firstBit, lastBit - firstBit + 1);
    }

    private static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }
}
