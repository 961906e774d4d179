package io.vfu.server;

import io.vfu.core.protocol.VfioUserException;
import java.lang.foreign.MemorySegment;

/**
 * Serves the trapped part of a region: every REGION_READ/REGION_WRITE (and WRITE_MULTI entry) that does not
 * fall on memory the client may mmap.
 *
 * <p>Called on the connection's thread, never concurrently with another device callback. {@code offset} is
 * relative to the region start; the library has already checked that {@code offset + size} lies inside the
 * region. To fail an access, throw {@link VfioUserException} with the errno the client should see.
 */
public interface RegionHandler {
    /** Fills {@code dst} (its whole length) with the bytes at {@code offset}. */
    void read(long offset, MemorySegment dst);

    /** Applies the bytes of {@code src} at {@code offset}. */
    void write(long offset, MemorySegment src);

    /** A handler for regions that are only ever accessed through memory: every access fails with EINVAL. */
    static RegionHandler none() {
        return new RegionHandler() {
            @Override
            public void read(long offset, MemorySegment dst) {
                throw VfioUserException.einval("region has no access handler");
            }

            @Override
            public void write(long offset, MemorySegment src) {
                throw VfioUserException.einval("region has no access handler");
            }
        };
    }
}
