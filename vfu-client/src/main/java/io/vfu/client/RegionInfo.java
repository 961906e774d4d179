package io.vfu.client;

import io.vfu.core.linux.Fds;
import io.vfu.core.protocol.RegionCapability;
import io.vfu.core.protocol.RegionInfoReply;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * The answer to DEVICE_GET_REGION_INFO (protocol reference §8.3): the complete reply (after the "argsz too
 * small" retry) and the region's fd, if the server passed one.
 *
 * <p>The fd is owned by this object: {@link #close()} closes it, {@link #takeFd()} hands it over. Mapping the
 * sparse areas ({@link VfioUserClient#mmap(int)}) duplicates nothing and needs this object only while mapping.
 */
public final class RegionInfo implements AutoCloseable {
    private final RegionInfoReply reply;
    private int fd;

    RegionInfo(RegionInfoReply reply, int fd) {
        this.reply = reply;
        this.fd = fd;
    }

    /** The decoded reply (flags, size, offset, capability chain). */
    public RegionInfoReply reply() {
        return reply;
    }

    /** Region index. */
    public int index() {
        return (int) reply.index();
    }

    /** Region size in bytes. */
    public long size() {
        return reply.size();
    }

    /** The fd offset to mmap at; also the base the sparse-area offsets are added to. */
    public long offset() {
        return reply.offset();
    }

    /** Flag READ: the region can be read with REGION_READ. */
    public boolean readable() {
        return (reply.flags() & RegionInfoReply.FLAG_READ) != 0;
    }

    /** Flag WRITE: the region can be written with REGION_WRITE. */
    public boolean writable() {
        return (reply.flags() & RegionInfoReply.FLAG_WRITE) != 0;
    }

    /** Flag MMAP: the sparse areas may be mmap'ed through {@link #fd()}. */
    public boolean mappable() {
        return (reply.flags() & RegionInfoReply.FLAG_MMAP) != 0;
    }

    /** The capability chain. */
    public List<RegionCapability> capabilities() {
        return reply.capabilities();
    }

    /** The SPARSE_MMAP areas (empty if none). */
    public List<RegionCapability.Area> sparseMmapAreas() {
        return reply.sparseMmapAreas();
    }

    /** The TYPE capability, if present. */
    public Optional<RegionCapability.RegionType> regionType() {
        return reply.regionType();
    }

    /** The region fd, while owned by this object. */
    public synchronized OptionalInt fd() {
        return fd >= 0 ? OptionalInt.of(fd) : OptionalInt.empty();
    }

    /** Hands the fd over to the caller (who must close it); empty if there is none or it was taken. */
    public synchronized OptionalInt takeFd() {
        OptionalInt r = fd();
        fd = -1;
        return r;
    }

    /** Closes the fd unless it was taken. */
    @Override
    public synchronized void close() {
        if (fd >= 0) {
            Fds.closeQuietly(fd);
            fd = -1;
        }
    }

    @Override
    public String toString() {
        return "RegionInfo[" + reply + ", fd=" + fd + "]";
    }
}
