package io.vfu.client;

import io.vfu.core.linux.Fds;
import io.vfu.core.protocol.IoFdEntry;
import io.vfu.core.protocol.RegionIoFdsReply;
import java.util.List;

/**
 * The answer to DEVICE_GET_REGION_IO_FDS (protocol reference §8.4): the entries and the fds they index
 * ({@link IoFdEntry#fdIndex()} is an index into {@link #fds()}).
 *
 * <p>The client has checked that every entry lies inside the region and names an fd that arrived. The fds are
 * owned by this object and closed by {@link #close()}.
 */
public final class RegionIoFds implements AutoCloseable {
    private final RegionIoFdsReply reply;
    private final int[] fds;
    private boolean closed;

    RegionIoFds(RegionIoFdsReply reply, int[] fds) {
        this.reply = reply;
        this.fds = fds;
    }

    /** The decoded reply (layout and entries). */
    public RegionIoFdsReply reply() {
        return reply;
    }

    /** The entries. */
    public List<IoFdEntry> entries() {
        return reply.entries();
    }

    /** The fd an entry refers to. */
    public int fd(IoFdEntry entry) {
        return fds[(int) entry.fdIndex()];
    }

    /** A copy of the fd array, in SCM_RIGHTS order. */
    public int[] fds() {
        return fds.clone();
    }

    /** Closes every fd. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            for (int fd : fds) {
                Fds.closeQuietly(fd);
            }
        }
    }
}
