package io.vfu.client;

import io.vfu.core.linux.Mapping;
import io.vfu.core.protocol.RegionCapability;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The sparse areas of a region mmap'ed from the region's fd ({@link VfioUserClient#mmap(int)}): one
 * {@link Area} per SPARSE_MMAP entry, at file offset {@code region offset + area offset} (protocol reference
 * §8.3). Parts of the region outside the areas must be accessed with REGION_READ/REGION_WRITE.
 * {@link #close()} unmaps them all.
 */
public final class MappedRegion implements AutoCloseable {
    private final int index;
    private final List<Area> areas;

    /**
     * One mapped sparse area.
     *
     * @param area    the area (offset inside the region, size)
     * @param mapping the mapping; its segment covers exactly the area
     */
    public record Area(RegionCapability.Area area, Mapping mapping) {
        /** The mapped memory. */
        public MemorySegment segment() {
            return mapping.segment();
        }
    }

    MappedRegion(int index, List<Area> areas) {
        this.index = index;
        this.areas = List.copyOf(areas);
    }

    /** The region index. */
    public int index() {
        return index;
    }

    /** The mapped areas, in SPARSE_MMAP order. */
    public List<Area> areas() {
        return areas;
    }

    /** Unmaps every area. */
    @Override
    public void close() {
        for (Area a : areas) {
            a.mapping().close();
        }
    }
}
