package io.vfu.core.protocol;

import java.lang.foreign.MemorySegment;

/**
 * The fields of the 16-byte header that REGION_READ and REGION_WRITE requests and replies share (§9.1), read
 * from a payload in place (and written, {@link #encode}): for the register-access hot paths, after the message's own {@code check}
 * ({@link RegionReadRequest#check}, {@link RegionReadReply#check}, {@link RegionWriteRequest#check}), so that no
 * record is created per access.
 */
public final class RegionAccess {
    private RegionAccess() {
    }

    /** The offset field. */
    public static long offsetOf(MemorySegment payload) {
        return Wire.u64(payload, RegionAccessLayout.OFFSET_OFFSET);
    }

    /** The region field. */
    public static long regionOf(MemorySegment payload) {
        return Wire.u32(payload, RegionAccessLayout.REGION_OFFSET);
    }

    /** The count field. */
    public static long countOf(MemorySegment payload) {
        return Wire.u32(payload, RegionAccessLayout.COUNT_OFFSET);
    }

    /**
     * Writes the 16-byte header into {@code dst}: for reply views that are reused per access (no record per
     * reply). Region and count are written as u32, as the records check them to be.
     */
    public static void encode(MemorySegment dst, long offset, long region, long count) {
        RegionAccessLayout.encode(dst, offset, region, count);
    }
}
