package io.vfu.server;

/**
 * A part of a memory-backed region the client may mmap (protocol reference §8.3, SPARSE_MMAP capability).
 *
 * @param offset start, relative to the region, page aligned
 * @param size   length in bytes, a multiple of the page size
 */
public record MmapArea(long offset, long size) {
    public MmapArea {
        if (offset < 0 || size <= 0 || offset + size < 0) {
            throw new IllegalArgumentException("bad mmap area " + offset + "+" + size);
        }
    }

    public long end() {
        return offset + size;
    }
}
