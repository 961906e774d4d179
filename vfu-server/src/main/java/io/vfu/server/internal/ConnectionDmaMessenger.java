package io.vfu.server.internal;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.DmaAccess;
import io.vfu.core.protocol.DmaReadReply;
import io.vfu.core.protocol.DmaReadRequest;
import io.vfu.core.protocol.DmaWriteReply;
import io.vfu.core.protocol.DmaWriteRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.transport.Connection;
import io.vfu.core.transport.SpareBuffer;
import io.vfu.server.dma.DmaMessenger;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * DMA_READ/DMA_WRITE to the client (protocol reference §7.3), on the twin socket when there is one. The
 * reply must echo address and count exactly (libvfio-user's rule): anything else is EIO. Thread-safe.
 */
final class ConnectionDmaMessenger implements DmaMessenger {
    private final Connection connection;
    private final long maxTransfer;
    /**
     * A reply buffer kept for the next access (taken by one thread at a time; another one meanwhile gets its own):
     * no allocation and zero-fill of up to max_data_xfer_size bytes per DMA_READ, which had cost the server more
     * than the rest of its side of the message.
     */
    private final SpareBuffer spare = new SpareBuffer(4096);
    /** The fixed part of a DMA_READ reply whose data goes straight to the caller's segment (16 bytes, kept). */
    private final SpareBuffer spareFixed = new SpareBuffer(0);

    ConnectionDmaMessenger(Connection connection, long maxTransfer) {
        this.connection = connection;
        this.maxTransfer = maxTransfer;
    }

    @Override
    public void dmaRead(long iova, MemorySegment dst) throws IOException {
        if (!dst.isNative() || dst.isReadOnly()) {
            dmaReadCopying(iova, dst);
            return;
        }
        long n = dst.byteSize();
        // The data goes straight into dst (the reply's fixed part into a small buffer): no copy of the data here.
        MemorySegment fixed = spareFixed.take(DmaReadReply.FIXED_SIZE);
        try {
            long got = connection.callInto(new DmaReadRequest(iova, n), fixed, dst);
            long address = got >= DmaReadReply.FIXED_SIZE ? DmaAccess.addressOf(fixed) : -1;
            long count = got >= DmaReadReply.FIXED_SIZE ? DmaAccess.countOf(fixed) : -1;
            if (got != DmaReadReply.FIXED_SIZE + n || address != iova || count != n) {
                throw new VfioUserException(Errno.EIO, "DMA_READ reply of " + got + " bytes for " + address + "+"
                        + count + ", asked " + iova + "+" + n);
            }
        } finally {
            spareFixed.giveBack(fixed); // callInto returned: nothing is written into it any more
        }
    }

    /** DMA_READ into a heap or read-only segment: the reply is received into a buffer and copied. */
    private void dmaReadCopying(long iova, MemorySegment dst) throws IOException {
        long n = dst.byteSize();
        MemorySegment buffer = spare.take(DmaReadReply.FIXED_SIZE + n);
        try {
            long got = connection.callInto(new DmaReadRequest(iova, n), buffer.asSlice(0, DmaReadReply.FIXED_SIZE + n));
            DmaReadReply reply = DmaReadReply.decode(buffer.asSlice(0, got));
            if (reply.address() != iova || reply.count() != n) {
                throw new VfioUserException(Errno.EIO, "DMA_READ reply for " + reply.address() + "+"
                        + reply.count() + ", asked " + iova + "+" + n);
            }
            dst.copyFrom(reply.data());
        } finally {
            spare.giveBack(buffer); // callInto returned: nothing is written into it any more
        }
    }

    @Override
    public void dmaWrite(long iova, MemorySegment src) throws IOException {
        MemorySegment buffer = spare.take(DmaWriteReply.SIZE);
        try {
            long got = connection.callInto(new DmaWriteRequest(iova, src), buffer.asSlice(0, DmaWriteReply.SIZE));
            DmaWriteReply reply = DmaWriteReply.decode(buffer.asSlice(0, got));
            if (reply.address() != iova || reply.count() != src.byteSize()) {
                throw new VfioUserException(Errno.EIO, "DMA_WRITE reply for " + reply.address() + "+"
                        + reply.count() + ", sent " + iova + "+" + src.byteSize());
            }
        } finally {
            spare.giveBack(buffer);
        }
    }

    @Override
    public long maxTransferSize() {
        return maxTransfer;
    }
}
