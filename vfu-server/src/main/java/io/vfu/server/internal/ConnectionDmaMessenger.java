package io.vfu.server.internal;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.DmaReadReply;
import io.vfu.core.protocol.DmaReadRequest;
import io.vfu.core.protocol.DmaWriteReply;
import io.vfu.core.protocol.DmaWriteRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.transport.Connection;
import io.vfu.core.transport.ReceivedReply;
import io.vfu.server.dma.DmaMessenger;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * DMA_READ/DMA_WRITE to the client (protocol reference §7.3), on the twin socket when there is one. The
 * reply must echo address and count exactly (libvfio-user's rule): anything else is EIO. Thread-safe.
 */
final class ConnectionDmaMessenger implements DmaMessenger {
    private final Connection connection;
    private final long maxTransfer;

    ConnectionDmaMessenger(Connection connection, long maxTransfer) {
        this.connection = connection;
        this.maxTransfer = maxTransfer;
    }

    @Override
    public void dmaRead(long iova, MemorySegment dst) throws IOException {
        long n = dst.byteSize();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(DmaReadReply.FIXED_SIZE + n, 8);
            try (ReceivedReply r = connection.call(new DmaReadRequest(iova, n), null, buffer)) {
                DmaReadReply reply = DmaReadReply.decode(r.payload());
                if (reply.address() != iova || reply.count() != n) {
                    throw new VfioUserException(Errno.EIO, "DMA_READ reply for " + reply.address() + "+"
                            + reply.count() + ", asked " + iova + "+" + n);
                }
                dst.copyFrom(reply.data());
            }
        }
    }

    @Override
    public void dmaWrite(long iova, MemorySegment src) throws IOException {
        try (ReceivedReply r = connection.call(new DmaWriteRequest(iova, src))) {
            DmaWriteReply reply = DmaWriteReply.decode(r.payload());
            if (reply.address() != iova || reply.count() != src.byteSize()) {
                throw new VfioUserException(Errno.EIO, "DMA_WRITE reply for " + reply.address() + "+"
                        + reply.count() + ", sent " + iova + "+" + src.byteSize());
            }
        }
    }

    @Override
    public long maxTransferSize() {
        return maxTransfer;
    }
}
