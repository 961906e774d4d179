package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.hex;
import static io.vfu.core.protocol.Wire.i32;
import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.u32;
import static io.vfu.core.protocol.Wire.u64;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * DEVICE_GET_REGION_IO_FDS reply (command 6, protocol reference §8.4): a 16-byte header and
 * {@code count} entries ({@link IoFdEntry}); when entries are present at least one fd travels as
 * SCM_RIGHTS (not part of this record).
 *
 * <pre>
 *  0        4        8        12       16
 * +--------+--------+--------+--------+------------------------------+
 * | argsz  | flags  | index  | count  | count × entry (40 or 48 B)   |
 * +--------+--------+--------+--------+------------------------------+
 * argsz = 16 + count × stride; flags 0
 * </pre>
 *
 * <p><b>Entry layout</b> (ambiguity #14): the decoder computes the stride as {@code (argsz − 16) / count}
 * and picks the field map from it: 40 → {@link IoFdEntry.Layout#SPEC}, 48 → {@link IoFdEntry.Layout#LVU};
 * any other stride, or a remainder, is EINVAL. The encoder writes {@link #layout()} (SPEC by default).
 *
 * <p><b>"argsz too small"</b>: libvfio-user answers a too-small argsz with the 16-byte header only
 * (argsz and count filled in, no entries, no fds). That reply decodes with {@link #truncated()} true and
 * an empty entry list; the client retries with {@code argsz = reply.argsz()}. {@link #forClient(long)}
 * produces it on the server side.
 *
 * <p><b>Decoding</b> checks (all EINVAL): payload ≥ 16; payload either exactly 16 (header only) or
 * exactly argsz (complete); argsz − 16 = count × (40 or 48); entry types valid for the layout (SPEC: 0,
 * 1; LVU: 0, 2). Reply flags are ignored (the spec says 0). Checking that entries lie inside the region
 * is the client's job (it knows the region size). Entries are decoded only after the byte count
 * {@code count × stride} has been checked against the payload.
 *
 * @param argsz   16 + count × stride (u32)
 * @param index   region index, echo of the request (u32)
 * @param count   number of entries of the complete answer (u32)
 * @param layout  the entry layout (stride)
 * @param entries the entries; empty in a truncated reply, otherwise {@code count} of them
 */
public record RegionIoFdsReply(long argsz, long index, long count, IoFdEntry.Layout layout, List<IoFdEntry> entries)
        implements Reply {
    public static final int HEADER_SIZE = 16;

    public RegionIoFdsReply {
        entries = List.copyOf(entries);
        if (!entries.isEmpty() && entries.size() != count) {
            throw new IllegalArgumentException("count " + count + " but " + entries.size() + " entries");
        }
        for (IoFdEntry e : entries) {
            if (!e.fits(layout)) {
                throw new IllegalArgumentException(e + " cannot be written in the " + layout + " layout");
            }
        }
        if (HEADER_SIZE + count * layout.stride() != argsz) {
            throw new IllegalArgumentException("argsz " + argsz + " != 16 + " + count + " × " + layout.stride());
        }
        if (HEADER_SIZE + entries.size() * (long) layout.stride() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("too many entries: " + entries.size());
        }
    }

    /** A complete reply in the SPEC 40-byte layout. */
    public RegionIoFdsReply(long index, List<IoFdEntry> entries) {
        this(index, IoFdEntry.Layout.SPEC, entries);
    }

    /** A complete reply in the given layout. */
    public RegionIoFdsReply(long index, IoFdEntry.Layout layout, List<IoFdEntry> entries) {
        this(HEADER_SIZE + (long) entries.size() * layout.stride(), index, entries.size(), layout, entries);
    }

    /**
     * The reply to send to a client that asked with {@code clientArgsz}: this reply if it fits, otherwise
     * the header-only "argsz too small" form (send no fds with it).
     */
    public RegionIoFdsReply forClient(long clientArgsz) {
        if (argsz <= clientArgsz || entries.isEmpty()) {
            return this;
        }
        return new RegionIoFdsReply(argsz, index, count, layout, List.of());
    }

    /** True for a header-only "argsz too small" reply: entries exist but are not included. */
    public boolean truncated() {
        return count > 0 && entries.isEmpty();
    }

    @Override
    public Command command() {
        return Command.DEVICE_GET_REGION_IO_FDS;
    }

    @Override
    public int fixedSize() {
        return HEADER_SIZE + entries.size() * layout.stride();
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        putU32(dst, 0, argsz);
        putU32(dst, 4, 0);
        putU32(dst, 8, index);
        putU32(dst, 12, count);
        long at = HEADER_SIZE;
        for (IoFdEntry e : entries) {
            e.encode(dst.asSlice(at, layout.stride()), layout);
            at += layout.stride();
        }
    }

    /** See the class comment for the checks. @throws VfioUserException EINVAL on any violation */
    public static RegionIoFdsReply decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, HEADER_SIZE, "DEVICE_GET_REGION_IO_FDS reply");
        long length = payload.byteSize();
        long argsz = u32(payload, 0);
        long index = u32(payload, 8);
        long count = u32(payload, 12);
        String what = "DEVICE_GET_REGION_IO_FDS reply region " + index + " count " + count;
        Fields.requireArgszAtLeast(argsz, HEADER_SIZE, what);
        IoFdEntry.Layout layout;
        if (count == 0) {
            if (argsz != HEADER_SIZE) {
                throw new VfioUserException(Errno.EINVAL, what + ": argsz " + argsz + " without entries");
            }
            layout = IoFdEntry.Layout.SPEC;
        } else {
            long bytes = argsz - HEADER_SIZE;
            if (bytes == count * IoFdEntry.Layout.SPEC.stride()) {
                layout = IoFdEntry.Layout.SPEC;
            } else if (bytes == count * IoFdEntry.Layout.LVU.stride()) {
                layout = IoFdEntry.Layout.LVU;
            } else {
                throw new VfioUserException(Errno.EINVAL, what + ": argsz " + argsz
                        + " gives no entry stride of 40 or 48 bytes");
            }
        }
        if (length == HEADER_SIZE) {
            return new RegionIoFdsReply(argsz, index, count, layout, List.of());
        }
        if (length != argsz) {
            throw new VfioUserException(Errno.EINVAL, what + ": payload " + length + " bytes, expected 16 or argsz " + argsz);
        }
        int stride = layout.stride();
        List<IoFdEntry> entries = new ArrayList<>((int) count);
        for (long i = 0, at = HEADER_SIZE; i < count; i++, at += stride) {
            entries.add(decodeEntry(payload.asSlice(at, stride), layout, what + ": entry " + i));
        }
        return new RegionIoFdsReply(argsz, index, count, layout, entries);
    }

    private static IoFdEntry decodeEntry(MemorySegment e, IoFdEntry.Layout layout, String what) {
        long offset = u64(e, 0);
        long size = u64(e, 8);
        long fdIndex = u32(e, 16);
        int type = i32(e, 20);
        int flags = i32(e, 24);
        if (layout == IoFdEntry.Layout.SPEC) {
            return switch (type) {
                case IoFdEntry.TYPE_IOEVENTFD -> new IoFdEntry.IoEventFd(offset, size, fdIndex, flags, u64(e, 32));
                case IoFdEntry.TYPE_IOREGIONFD -> new IoFdEntry.IoRegionFd(offset, size, fdIndex, flags, u64(e, 32));
                default -> throw new VfioUserException(Errno.EINVAL, what + ": type " + hex(type & 0xFFFF_FFFFL)
                        + " invalid in 40-byte entries");
            };
        }
        return switch (type) {
            case IoFdEntry.TYPE_IOEVENTFD -> new IoFdEntry.IoEventFd(offset, size, fdIndex, flags, u64(e, 40));
            case IoFdEntry.TYPE_IOEVENTFD_SHADOW -> new IoFdEntry.ShadowIoEventFd(offset, size, fdIndex, flags,
                    u32(e, 28), u64(e, 32), u64(e, 40));
            default -> throw new VfioUserException(Errno.EINVAL, what + ": type " + hex(type & 0xFFFF_FFFFL)
                    + " invalid in 48-byte entries");
        };
    }
}
