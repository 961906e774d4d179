package io.vfu.server;

import io.vfu.core.linux.EventFd;
import java.util.Objects;
import java.util.OptionalLong;

/**
 * An ioeventfd the device offers for a doorbell in one of its regions (DEVICE_GET_REGION_IO_FDS, protocol
 * reference §8.4): the client (e.g. KVM) signals {@code eventFd} on a guest write instead of sending a
 * REGION_WRITE. The device owns the eventfd and watches it itself; the library hands a duplicate to the client.
 *
 * @param region    region index
 * @param offset    offset of the doorbell in the region
 * @param size      access size that triggers it (0 = any)
 * @param datamatch only a write of this value triggers it; empty = any value
 * @param eventFd   the device's eventfd
 */
public record IoEventFd(int region, long offset, long size, OptionalLong datamatch, EventFd eventFd) {
    public IoEventFd {
        Objects.requireNonNull(datamatch);
        Objects.requireNonNull(eventFd);
        if (offset < 0 || size < 0) {
            throw new IllegalArgumentException("negative offset or size");
        }
    }
}
