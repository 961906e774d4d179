package io.vfu.server;

import java.util.List;
import java.util.Objects;

/**
 * How one region (a BAR, the expansion ROM, VGA, or a device-specific region) is served.
 *
 * <p>A <em>trapped</em> region sends every access to its {@link RegionHandler}. A <em>memory</em> region is
 * backed by a memfd the library creates: the client may mmap the given {@link #mmapAreas() areas} (all of it
 * by default) and reach them without messages; accesses outside the areas go to the handler (or, without a
 * handler, to the memory itself). The device sees the memory through
 * {@link DeviceContext#regionMemory(int)}.
 *
 * @param size      region size in bytes
 * @param readable  client may read
 * @param writable  client may write
 * @param handler   serves trapped accesses; {@code null} for a memory region whose trapped accesses go to memory
 * @param memory    backed by a shareable memfd
 * @param mmapAreas the mmap-able parts of a memory region (empty = none; ignored for trapped regions)
 */
public record Region(long size, boolean readable, boolean writable, RegionHandler handler, boolean memory,
                     List<MmapArea> mmapAreas) {
    public Region {
        if (size < 0) {
            throw new IllegalArgumentException("negative region size");
        }
        mmapAreas = List.copyOf(mmapAreas);
        if (!memory && !mmapAreas.isEmpty()) {
            throw new IllegalArgumentException("only memory regions have mmap areas");
        }
        if (!memory) {
            Objects.requireNonNull(handler, "a trapped region needs a handler");
        }
        for (MmapArea a : mmapAreas) {
            if (a.end() > size) {
                throw new IllegalArgumentException("mmap area " + a + " beyond region size " + size);
            }
        }
    }

    /** A read-write region whose every access goes to {@code handler}. */
    public static Region trapped(long size, RegionHandler handler) {
        return new Region(size, true, true, handler, false, List.of());
    }

    /** A read-write memory region the client may mmap whole; accesses by message reach the memory. */
    public static Region memory(long size) {
        return new Region(size, true, true, null, true, List.of(new MmapArea(0, size)));
    }

    /**
     * A read-write memory region of which only {@code areas} may be mmap'd; other accesses go to
     * {@code handler} (or to the memory if {@code handler} is null).
     */
    public static Region sparse(long size, RegionHandler handler, List<MmapArea> areas) {
        return new Region(size, true, true, handler, true, areas);
    }

    /** This region without client write access. */
    public Region readOnly() {
        return new Region(size, readable, false, handler, memory, mmapAreas);
    }

    public boolean mappable() {
        return memory && !mmapAreas.isEmpty();
    }
}
