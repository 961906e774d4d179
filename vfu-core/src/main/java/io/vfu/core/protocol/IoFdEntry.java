package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.putU64;

import java.lang.foreign.MemorySegment;

/**
 * One entry of a DEVICE_GET_REGION_IO_FDS reply (protocol reference §8.4). Two wire layouts exist,
 * chosen per reply by {@link Layout} (the entry stride):
 *
 * <pre>
 * SPEC, 40 bytes:
 *  0          8          16         20     24      28        32            40
 * +----------+----------+----------+------+-------+---------+-------------+
 * | offset   | size     | fd_index | type | flags | padding | datamatch / |   type 0 ioeventfd
 * |          |          |          |      |       |         | user_data   |   type 1 ioregionfd
 * +----------+----------+----------+------+-------+---------+-------------+
 * libvfio-user, 48 bytes:
 *  0          8          16         20     24      28                  32             40          48
 * +----------+----------+----------+------+-------+-------------------+--------------+-----------+
 * | offset   | size     | fd_index | type | flags | shadow_mem_fd_idx | shadow_offset| datamatch |
 * +----------+----------+----------+------+-------+-------------------+--------------+-----------+
 * type 0 ioeventfd (shadow fields 0), type 2 shadow ioeventfd
 * </pre>
 *
 * <p>{@code fd_index} indexes the SCM_RIGHTS array of the reply; {@code size} 0 means any access size.
 * Flags for ioeventfds: {@link #KVM_IOEVENTFD_FLAG_DATAMATCH}, {@link #KVM_IOEVENTFD_FLAG_PIO},
 * {@link #KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY}; they are kept as sent.
 */
public sealed interface IoFdEntry {
    int TYPE_IOEVENTFD = 0;
    int TYPE_IOREGIONFD = 1;
    /** libvfio-user's {@code VFIO_USER_IO_FD_TYPE_IOEVENTFD_SHADOW}. */
    int TYPE_IOEVENTFD_SHADOW = 2;
    int KVM_IOEVENTFD_FLAG_DATAMATCH = 0x1;
    int KVM_IOEVENTFD_FLAG_PIO = 0x2;
    int KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY = 0x8;

    /** The entry layout of a whole reply, named by its stride. */
    enum Layout {
        /** The specification's 40-byte entries (types 0 and 1). */
        SPEC(40),
        /** libvfio-user's 48-byte entries (types 0 and 2). */
        LVU(48);

        private final int stride;

        Layout(int stride) {
            this.stride = stride;
        }

        /** Bytes per entry. */
        public int stride() {
            return stride;
        }
    }

    /** Offset inside the region (u64). */
    long offset();

    /** Access size, 0 = any (u64). */
    long size();

    /** Index into the reply's fd array (u32). */
    long fdIndex();

    /** The wire type. */
    int type();

    /** Type-specific flags (u32). */
    int flags();

    /** Whether this entry can be written in {@code layout}. */
    boolean fits(Layout layout);

    /** Writes the entry in {@code layout} at offset 0 of {@code dst}. */
    void encode(MemorySegment dst, Layout layout);

    private static void common(MemorySegment dst, IoFdEntry e) {
        putU64(dst, 0, e.offset());
        putU64(dst, 8, e.size());
        putU32(dst, 16, e.fdIndex());
        putU32(dst, 20, e.type());
        putU32(dst, 24, e.flags());
    }

    /**
     * An ioeventfd (type 0): a write to {@code offset} (matching {@code datamatch} if the DATAMATCH flag is
     * set) signals the fd. Written in both layouts (datamatch @32 in SPEC, @40 in LVU).
     */
    record IoEventFd(long offset, long size, long fdIndex, int flags, long datamatch) implements IoFdEntry {
        @Override
        public int type() {
            return TYPE_IOEVENTFD;
        }

        @Override
        public boolean fits(Layout layout) {
            return true;
        }

        @Override
        public void encode(MemorySegment dst, Layout layout) {
            common(dst, this);
            putU32(dst, 28, 0);
            if (layout == Layout.SPEC) {
                putU64(dst, 32, datamatch);
            } else {
                putU64(dst, 32, 0);
                putU64(dst, 40, datamatch);
            }
        }
    }

    /** An ioregionfd (type 1, SPEC layout only; an unmerged KVM proposal). */
    record IoRegionFd(long offset, long size, long fdIndex, int flags, long userData) implements IoFdEntry {
        @Override
        public int type() {
            return TYPE_IOREGIONFD;
        }

        @Override
        public boolean fits(Layout layout) {
            return layout == Layout.SPEC;
        }

        @Override
        public void encode(MemorySegment dst, Layout layout) {
            requireFits(this, layout);
            common(dst, this);
            putU32(dst, 28, 0);
            putU64(dst, 32, userData);
        }
    }

    /**
     * libvfio-user's shadow ioeventfd (type 2, LVU layout only): the written value is also stored at
     * {@code shadowOffset} of the shadow memory fd {@code shadowMemFdIndex}.
     */
    record ShadowIoEventFd(long offset, long size, long fdIndex, int flags, long shadowMemFdIndex,
                           long shadowOffset, long datamatch) implements IoFdEntry {
        @Override
        public int type() {
            return TYPE_IOEVENTFD_SHADOW;
        }

        @Override
        public boolean fits(Layout layout) {
            return layout == Layout.LVU;
        }

        @Override
        public void encode(MemorySegment dst, Layout layout) {
            requireFits(this, layout);
            common(dst, this);
            putU32(dst, 28, shadowMemFdIndex);
            putU64(dst, 32, shadowOffset);
            putU64(dst, 40, datamatch);
        }
    }

    private static void requireFits(IoFdEntry e, Layout layout) {
        if (!e.fits(layout)) {
            throw new IllegalArgumentException(e + " cannot be written in the " + layout + " layout");
        }
    }
}
