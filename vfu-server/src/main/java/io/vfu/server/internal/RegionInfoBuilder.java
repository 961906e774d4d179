package io.vfu.server.internal;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.IoFdEntry;
import io.vfu.core.protocol.RegionCapability;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.core.protocol.RegionInfoReply;
import io.vfu.core.protocol.RegionInfoRequest;
import io.vfu.core.protocol.RegionIoFdsReply;
import io.vfu.core.protocol.RegionIoFdsRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.transport.Response;
import io.vfu.server.IoEventFd;
import io.vfu.server.MmapArea;
import io.vfu.server.Region;
import java.util.ArrayList;
import java.util.List;

/** Answers DEVICE_GET_REGION_INFO and DEVICE_GET_REGION_IO_FDS from the device description. */
final class RegionInfoBuilder {
    /** KVM_IOEVENTFD_FLAG_DATAMATCH. */
    private static final int IOEVENTFD_DATAMATCH = 0x1;

    private RegionInfoBuilder() {
    }

    /**
     * Every mmap-able region is described with a SPARSE_MMAP capability, even when all of it may be mapped
     * (libvfio-user does the same; QEMU and its sample client expect it). The fd goes with the reply only when
     * the client's argsz fits the capabilities (otherwise it retries with the returned argsz, §8.3), and the
     * short reply is padded to min(needed, client argsz) for clients that read exactly argsz bytes.
     */
    static Response regionInfo(DeviceRuntime runtime, RegionInfoRequest request) {
        long index = request.index();
        if (index >= RegionIndex.PCI_NUM_REGIONS) {
            throw new VfioUserException(Errno.EINVAL, "DEVICE_GET_REGION_INFO: no region " + index);
        }
        int i = (int) index;
        RegionInfoReply full;
        if (i == RegionIndex.CONFIG) {
            full = new RegionInfoReply(RegionInfoReply.FLAG_READ | RegionInfoReply.FLAG_WRITE, i,
                    runtime.config().size(), 0);
        } else {
            Region r = runtime.device().region(i);
            if (r == null || r.size() == 0) {
                full = new RegionInfoReply(0, i, 0, 0);
            } else {
                int flags = (r.readable() ? RegionInfoReply.FLAG_READ : 0) | (r.writable() ? RegionInfoReply.FLAG_WRITE : 0);
                if (r.mappable()) {
                    List<RegionCapability.Area> areas = new ArrayList<>();
                    for (MmapArea a : r.mmapAreas()) {
                        areas.add(new RegionCapability.Area(a.offset(), a.size()));
                    }
                    flags |= RegionInfoReply.FLAG_MMAP | RegionInfoReply.FLAG_CAPS;
                    full = new RegionInfoReply(flags, i, r.size(), 0, List.of(new RegionCapability.SparseMmap(areas)));
                } else {
                    full = new RegionInfoReply(flags, i, r.size(), 0);
                }
            }
        }
        RegionInfoReply reply = full.forClient(request.argsz());
        if (reply.truncated()) {
            return Response.of(PaddedReply.pad(reply, Math.min(full.argsz(), request.argsz())));
        }
        int fd = (reply.flags() & RegionInfoReply.FLAG_MMAP) != 0 ? runtime.regionFd(i) : -1;
        return fd >= 0 ? Response.of(reply, fd) : Response.of(reply);
    }

    /** The ioeventfds the device registered for the region, in the spec's 40-byte layout (§8.4). */
    static Response ioFds(DeviceRuntime runtime, RegionIoFdsRequest request) {
        long index = request.index();
        if (index >= RegionIndex.PCI_NUM_REGIONS || runtime.regionSize((int) index) == 0) {
            throw new VfioUserException(Errno.EINVAL, "DEVICE_GET_REGION_IO_FDS: no region " + index);
        }
        List<IoFdEntry> entries = new ArrayList<>();
        List<Integer> fds = new ArrayList<>();
        for (IoEventFd e : runtime.device().ioEventFds()) {
            if (e.region() != index) {
                continue;
            }
            int fd = e.eventFd().fd();
            int fdIndex = fds.indexOf(fd);
            if (fdIndex < 0) {
                fdIndex = fds.size();
                fds.add(fd);
            }
            entries.add(new IoFdEntry.IoEventFd(e.offset(), e.size(), fdIndex,
                    e.datamatch().isPresent() ? IOEVENTFD_DATAMATCH : 0, e.datamatch().orElse(0)));
        }
        RegionIoFdsReply full = new RegionIoFdsReply(index, entries);
        RegionIoFdsReply reply = full.forClient(request.argsz());
        if (reply.truncated()) {
            return Response.of(reply);
        }
        return Response.of(reply, fds.stream().mapToInt(Integer::intValue).toArray());
    }
}
