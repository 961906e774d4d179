package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU16;
import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.putU64;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/**
 * One capability of a DEVICE_GET_REGION_INFO reply's chain (protocol reference §8.3), i.e. a
 * {@code struct vfio_info_cap_header} and its body.
 *
 * <pre>
 *  0      2         4        8
 * +------+---------+--------+------------ - -
 * |  id  | version |  next  | body ...
 * +------+---------+--------+------------ - -
 * next: payload offset of the next capability, 0 = last
 * </pre>
 *
 * <p>Known: {@link SparseMmap} (id 1), {@link RegionType} (id 2), {@link MsixMappable} (id 3), each in
 * version 1. Anything else, including a known id with another version, is kept raw as {@link Unknown}
 * so that a decoder skips it safely and an encoder can pass it on. {@link RegionInfoReply} lays out and
 * parses the chain; {@code next} is not part of these records.
 */
public sealed interface RegionCapability {
    /** Size of the capability header. */
    int HEADER_SIZE = 8;

    /** The capability id (u16). */
    int id();

    /** The capability version (u16). */
    int version();

    /** Total encoded size, header included. */
    long byteSize();

    /** Writes the body (everything after the 8-byte header) at offset 0 of {@code dst}. */
    void encodeBody(MemorySegment dst);

    /** Writes the header and body at {@code offset} of {@code dst}, with the given {@code next}. */
    default void encode(MemorySegment dst, long offset, long next) {
        putU16(dst, offset, id());
        putU16(dst, offset + 2, version());
        putU32(dst, offset + 4, next);
        encodeBody(dst.asSlice(offset + HEADER_SIZE, byteSize() - HEADER_SIZE));
    }

    /**
     * {@code VFIO_REGION_INFO_CAP_SPARSE_MMAP} (id 1, version 1): the parts of the region that may be
     * mmap'ed, each at file offset {@code reply.offset + area.offset}. Parts not covered must be accessed
     * with REGION_READ/WRITE.
     *
     * <pre>
     *  8          12         16                 24                 32
     * +----------+----------+------------------+------------------+ - -
     * | nr_areas | reserved | area[0].offset   | area[0].size     | ...
     * +----------+----------+------------------+------------------+ - -
     * </pre>
     */
    record SparseMmap(List<Area> areas) implements RegionCapability {
        public static final int ID = 1;
        public static final int VERSION = 1;

        public SparseMmap {
            areas = List.copyOf(areas);
        }

        public SparseMmap(Area... areas) {
            this(List.of(areas));
        }

        @Override
        public int id() {
            return ID;
        }

        @Override
        public int version() {
            return VERSION;
        }

        @Override
        public long byteSize() {
            return 16L + 16L * areas.size();
        }

        @Override
        public void encodeBody(MemorySegment dst) {
            putU32(dst, 0, areas.size());
            putU32(dst, 4, 0);
            long at = 8;
            for (Area a : areas) {
                putU64(dst, at, a.offset());
                putU64(dst, at + 8, a.size());
                at += 16;
            }
        }
    }

    /**
     * One mmappable area of a {@link SparseMmap}.
     *
     * @param offset offset inside the region (u64)
     * @param size   length (u64)
     */
    record Area(long offset, long size) {
    }

    /**
     * {@code VFIO_REGION_INFO_CAP_TYPE} (id 2, version 1): type and subtype of a device-specific region
     * (index ≥ 9).
     *
     * @param type    region type (u32)
     * @param subtype region subtype (u32)
     */
    record RegionType(long type, long subtype) implements RegionCapability {
        public static final int ID = 2;
        public static final int VERSION = 1;

        @Override
        public int id() {
            return ID;
        }

        @Override
        public int version() {
            return VERSION;
        }

        @Override
        public long byteSize() {
            return 16;
        }

        @Override
        public void encodeBody(MemorySegment dst) {
            putU32(dst, 0, type);
            putU32(dst, 4, subtype);
        }
    }

    /** {@code VFIO_REGION_INFO_CAP_MSIX_MAPPABLE} (id 3, version 1): the MSI-X table may be mmap'ed. No body. */
    record MsixMappable() implements RegionCapability {
        public static final int ID = 3;
        public static final int VERSION = 1;

        @Override
        public int id() {
            return ID;
        }

        @Override
        public int version() {
            return VERSION;
        }

        @Override
        public long byteSize() {
            return HEADER_SIZE;
        }

        @Override
        public void encodeBody(MemorySegment dst) {
        }
    }

    /**
     * A capability this library does not interpret, kept raw. When decoded, {@code body} runs from the
     * end of the header to the next capability (or to the end of the payload for the last one), so it
     * may include padding.
     *
     * @param id      capability id (u16)
     * @param version capability version (u16)
     * @param body    the bytes after the 8-byte header (copied; the record is immutable)
     */
    record Unknown(int id, int version, byte[] body) implements RegionCapability {
        public Unknown {
            if ((id & ~0xFFFF) != 0 || (version & ~0xFFFF) != 0) {
                throw new IllegalArgumentException("id and version are u16: " + id + ", " + version);
            }
            body = body.clone();
        }

        @Override
        public byte[] body() {
            return body.clone();
        }

        @Override
        public long byteSize() {
            return HEADER_SIZE + (long) body.length;
        }

        @Override
        public void encodeBody(MemorySegment dst) {
            MemorySegment.copy(body, 0, dst, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, body.length);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Unknown u && id == u.id && version == u.version && Arrays.equals(body, u.body);
        }

        @Override
        public int hashCode() {
            return 31 * (31 * id + version) + Arrays.hashCode(body);
        }

        @Override
        public String toString() {
            return "Unknown[id=" + id + ", version=" + version + ", body=" + HexFormat.of().formatHex(body) + "]";
        }
    }
}
