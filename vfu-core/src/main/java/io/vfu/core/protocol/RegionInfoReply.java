package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.hex;
import static io.vfu.core.protocol.Wire.i32;
import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.putU64;
import static io.vfu.core.protocol.Wire.u16;
import static io.vfu.core.protocol.Wire.u32;
import static io.vfu.core.protocol.Wire.u64;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * DEVICE_GET_REGION_INFO reply (command 5, protocol reference §8.3): a {@code struct vfio_region_info}
 * followed by a capability chain. With {@link #FLAG_MMAP} the reply carries one fd (SCM_RIGHTS, not part
 * of this record) that all sparse areas share.
 *
 * <pre>
 *  0        4        8        12           16                24                32
 * +--------+--------+--------+------------+-----------------+-----------------+------------- - -
 * | argsz  | flags  | index  | cap_offset |      size       |     offset      | caps ...
 * +--------+--------+--------+------------+-----------------+-----------------+------------- - -
 * argsz: payload size of the complete answer (32 + caps); flags: READ 1, WRITE 2, MMAP 4, CAPS 8;
 * cap_offset: payload offset of the first capability (≥ 32), 0 without CAPS.
 * </pre>
 *
 * <p><b>"argsz too small"</b> (ambiguity #13): when the client's argsz cannot hold the caps, libvfio-user
 * answers with the complete argsz, MMAP still set, CAPS clear, no caps and no fd, in a payload of
 * {@code min(needed, client argsz)} bytes (zero padded). Such a reply decodes with {@link #truncated()}
 * true; the client retries with {@code argsz = reply.argsz()}. {@link #forClient(long)} produces it on
 * the server side; it is encoded as the 32-byte fixed part only (the spec allows "only what fits, at least
 * the fixed part"; a server that wants libvfio-user's exact length pads with zeros).
 *
 * <p><b>Encoding</b> lays the caps out back to back from byte 32, with {@code next} = payload offset of
 * the following cap (0 for the last), and argsz = 32 + caps size (convenience constructor).
 *
 * <p><b>Decoding</b> checks (all EINVAL): payload ≥ 32; 32 ≤ argsz; payload not longer than argsz (no
 * server sends more than the answer needs, so more is a framing error); CAPS set ⇔ at least one cap;
 * with CAPS the reply must be complete (payload == argsz), cap_offset ≥ 32, every header inside the
 * payload, {@code next} strictly increasing (no loops, no overlap: it must point past the current
 * header) and at most {@link #MAX_CAPS} caps; SPARSE_MMAP's {@code nr_areas} is checked against the
 * bytes present before anything is allocated, and each area must lie inside the region
 * ({@code offset + size ≤ region size}). Without CAPS, cap_offset and the bytes after 32 (padding) are
 * ignored. Unknown caps and known ids with another version become {@link RegionCapability.Unknown}.
 * Decoding then re-encoding yields the canonical back-to-back layout, which may differ from the input.
 *
 * @param argsz        payload size of the complete answer (u32)
 * @param flags        {@link #FLAG_READ} | {@link #FLAG_WRITE} | {@link #FLAG_MMAP} | {@link #FLAG_CAPS};
 *                     other bits are kept
 * @param index        region index, echo of the request (u32)
 * @param size         region size (u64)
 * @param offset       fd offset for mmap, base of the sparse-area offsets (u64)
 * @param capabilities the chain; non-empty exactly when CAPS is set
 */
public record RegionInfoReply(long argsz, int flags, long index, long size, long offset,
                              List<RegionCapability> capabilities) implements Reply {
    public static final int SIZE = 32;
    public static final int FLAG_READ = 0x1;
    public static final int FLAG_WRITE = 0x2;
    public static final int FLAG_MMAP = 0x4;
    public static final int FLAG_CAPS = 0x8;
    /** Longest capability chain a decoder accepts. */
    public static final int MAX_CAPS = 64;

    public RegionInfoReply {
        capabilities = List.copyOf(capabilities);
        if (((flags & FLAG_CAPS) != 0) == capabilities.isEmpty()) {
            throw new IllegalArgumentException("flag CAPS must be set exactly when there are capabilities");
        }
    }

    /**
     * A complete reply: CAPS is set or cleared to match {@code capabilities}, argsz = 32 + caps size.
     *
     * @throws IllegalArgumentException if the caps do not fit a u32 argsz / an int payload
     */
    public RegionInfoReply(int flags, long index, long size, long offset, List<RegionCapability> capabilities) {
        this(SIZE + capsSize(capabilities), capabilities.isEmpty() ? flags & ~FLAG_CAPS : flags | FLAG_CAPS,
                index, size, offset, capabilities);
    }

    /** A reply without capabilities (argsz 32). */
    public RegionInfoReply(int flags, long index, long size, long offset) {
        this(flags, index, size, offset, List.of());
    }

    private static long capsSize(List<RegionCapability> caps) {
        long total = 0;
        for (RegionCapability c : caps) {
            total += c.byteSize();
        }
        if (total > Integer.MAX_VALUE - SIZE) {
            throw new IllegalArgumentException("capabilities too large: " + total + " bytes");
        }
        return total;
    }

    /**
     * The reply to send to a client that asked with {@code clientArgsz}: this reply if it fits, otherwise
     * the "argsz too small" form (same argsz, flags without CAPS, no caps; send no fd with it).
     */
    public RegionInfoReply forClient(long clientArgsz) {
        if (Long.compareUnsigned(argsz, clientArgsz) <= 0 || capabilities.isEmpty()) {
            return this;
        }
        return new RegionInfoReply(argsz, flags & ~FLAG_CAPS, index, size, offset, List.of());
    }

    /** True for an "argsz too small" reply: the answer needs more than 32 bytes but carries no caps. */
    public boolean truncated() {
        return capabilities.isEmpty() && argsz > SIZE;
    }

    /** The areas of the first SPARSE_MMAP capability, or an empty list. */
    public List<RegionCapability.Area> sparseMmapAreas() {
        for (RegionCapability c : capabilities) {
            if (c instanceof RegionCapability.SparseMmap s) {
                return s.areas();
            }
        }
        return List.of();
    }

    /** The TYPE capability, if present. */
    public Optional<RegionCapability.RegionType> regionType() {
        for (RegionCapability c : capabilities) {
            if (c instanceof RegionCapability.RegionType t) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }

    @Override
    public Command command() {
        return Command.DEVICE_GET_REGION_INFO;
    }

    @Override
    public int fixedSize() {
        return (int) (SIZE + capsSize(capabilities));
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        putU32(dst, 0, argsz);
        putU32(dst, 4, flags);
        putU32(dst, 8, index);
        putU32(dst, 12, capabilities.isEmpty() ? 0 : SIZE);
        putU64(dst, 16, size);
        putU64(dst, 24, offset);
        long at = SIZE;
        for (int i = 0; i < capabilities.size(); i++) {
            RegionCapability c = capabilities.get(i);
            long end = at + c.byteSize();
            c.encode(dst, at, i == capabilities.size() - 1 ? 0 : end);
            at = end;
        }
    }

    /** See the class comment for the checks. @throws VfioUserException EINVAL on any violation */
    public static RegionInfoReply decode(MemorySegment payload) {
        String what = "DEVICE_GET_REGION_INFO reply";
        Wire.requireAtLeast(payload, SIZE, what);
        long length = payload.byteSize();
        long argsz = u32(payload, 0);
        int flags = i32(payload, 4);
        long index = u32(payload, 8);
        long capOffset = u32(payload, 12);
        long size = u64(payload, 16);
        long offset = u64(payload, 24);
        what += " region " + index;
        Fields.requireArgszAtLeast(argsz, SIZE, what);
        if (length > argsz) {
            throw new VfioUserException(Errno.EINVAL, what + ": payload " + length + " bytes > argsz " + argsz);
        }
        if ((flags & FLAG_CAPS) == 0) {
            return new RegionInfoReply(argsz, flags, index, size, offset, List.of());
        }
        if (length != argsz) {
            throw new VfioUserException(Errno.EINVAL,
                    what + ": flag CAPS in a truncated reply (payload " + length + " < argsz " + argsz + ")");
        }
        if (capOffset < SIZE || capOffset > length - RegionCapability.HEADER_SIZE) {
            throw new VfioUserException(Errno.EINVAL,
                    what + ": cap_offset " + capOffset + " outside " + SIZE + ".." + (length - RegionCapability.HEADER_SIZE));
        }
        List<RegionCapability> caps = new ArrayList<>();
        long at = capOffset;
        while (true) {
            if (caps.size() == MAX_CAPS) {
                throw new VfioUserException(Errno.EINVAL, what + ": more than " + MAX_CAPS + " capabilities");
            }
            int id = u16(payload, at);
            int version = u16(payload, at + 2);
            long next = u32(payload, at + 4);
            if (next != 0 && (next < at + RegionCapability.HEADER_SIZE || next > length - RegionCapability.HEADER_SIZE)) {
                throw new VfioUserException(Errno.EINVAL, what + ": capability " + id + " at " + at
                        + ": next " + next + " is not after it or not inside the payload of " + length + " bytes");
            }
            long limit = next != 0 ? next : length;
            caps.add(decodeCapability(payload.asSlice(at, limit - at), id, version, size, what + ": capability " + id + " at " + at));
            if (next == 0) {
                break;
            }
            at = next;
        }
        return new RegionInfoReply(argsz, flags, index, size, offset, caps);
    }

    /** {@code cap} spans from the header to the next capability (or the payload end). */
    private static RegionCapability decodeCapability(MemorySegment cap, int id, int version, long regionSize, String what) {
        long avail = cap.byteSize();
        if (id == RegionCapability.SparseMmap.ID && version == RegionCapability.SparseMmap.VERSION) {
            if (avail < 16) {
                throw new VfioUserException(Errno.EINVAL, what + ": SPARSE_MMAP needs 16 bytes, " + avail + " present");
            }
            long nrAreas = u32(cap, 8);
            if (nrAreas > (avail - 16) / 16) {
                throw new VfioUserException(Errno.EINVAL,
                        what + ": SPARSE_MMAP nr_areas " + nrAreas + " needs " + (16 + 16 * nrAreas) + " bytes, " + avail + " present");
            }
            List<RegionCapability.Area> areas = new ArrayList<>((int) nrAreas);
            for (long i = 0, p = 16; i < nrAreas; i++, p += 16) {
                long areaOffset = u64(cap, p);
                long areaSize = u64(cap, p + 8);
                long end = areaOffset + areaSize;
                if (Long.compareUnsigned(end, areaOffset) < 0 || Long.compareUnsigned(end, regionSize) > 0) {
                    throw new VfioUserException(Errno.EINVAL, what + ": SPARSE_MMAP area " + i + " offset "
                            + hex(areaOffset) + " size " + hex(areaSize) + " beyond region size " + hex(regionSize));
                }
                areas.add(new RegionCapability.Area(areaOffset, areaSize));
            }
            return new RegionCapability.SparseMmap(areas);
        }
        if (id == RegionCapability.RegionType.ID && version == RegionCapability.RegionType.VERSION) {
            if (avail < 16) {
                throw new VfioUserException(Errno.EINVAL, what + ": TYPE needs 16 bytes, " + avail + " present");
            }
            return new RegionCapability.RegionType(u32(cap, 8), u32(cap, 12));
        }
        if (id == RegionCapability.MsixMappable.ID && version == RegionCapability.MsixMappable.VERSION) {
            return new RegionCapability.MsixMappable();
        }
        if (avail - RegionCapability.HEADER_SIZE > Integer.MAX_VALUE - 8) {
            throw new VfioUserException(Errno.EINVAL, what + ": unknown capability of " + avail + " bytes");
        }
        return new RegionCapability.Unknown(id, version,
                cap.asSlice(RegionCapability.HEADER_SIZE).toArray(ValueLayout.JAVA_BYTE));
    }
}
