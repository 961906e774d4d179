package io.vfu.client;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.DmaAccess;
import io.vfu.core.protocol.DmaReadReply;
import io.vfu.core.protocol.DmaReadRequest;
import io.vfu.core.protocol.DmaWriteReply;
import io.vfu.core.protocol.DmaWriteRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.transport.CommandHandler;
import io.vfu.core.transport.IncomingCommand;
import io.vfu.core.transport.Response;
import java.lang.foreign.MemorySegment;

/**
 * Serves the server→client commands (DMA_READ, DMA_WRITE; protocol reference §7.3) of one connection from a
 * {@link GuestMemory}. Runs on the thread reading that connection; a DMA_READ reply is sent straight from guest
 * memory (no copy), under the memory's read lock until it is out, and a DMA_WRITE's data is received straight
 * into guest memory ({@link #place}), under that lock until it is in.
 */
final class DmaService implements CommandHandler {
    private static final int DMA_WRITE = Command.DMA_WRITE.code();
    private final GuestMemory memory;
    private final long maxDataXferSize;

    DmaService(GuestMemory memory, long maxDataXferSize) {
        this.memory = memory;
        this.maxDataXferSize = maxDataXferSize;
    }

    @Override
    public Response handle(IncomingCommand command) {
        Command cmd = command.header().command();
        if (cmd == Command.DMA_READ) {
            DmaReadRequest r = DmaReadRequest.decode(command.payload());
            checkCount(r.count(), "DMA_READ");
            // No copy: the reply's data is gathered by sendmsg straight from guest memory, whose region cannot be
            // removed until the reply is out (the read lock is released after the send, on this thread).
            MemorySegment data = memory.acquireReadView(r.address(), r.count());
            try {
                return Response.of(new DmaReadReply(r.address(), data)).andThen(memory::releaseReadView);
            } catch (RuntimeException e) {
                memory.releaseReadView();
                throw e;
            }
        }
        if (cmd == Command.DMA_WRITE) {
            DmaWriteRequest w = DmaWriteRequest.decode(command.payload());
            checkCount(w.count(), "DMA_WRITE");
            memory.dmaWrite(w.address(), w.data());
            return Response.of(new DmaWriteReply(w.address(), w.count()));
        }
        throw new VfioUserException(Errno.EINVAL, "the client does not serve command " + command.header().cmd()
                + (cmd != null ? " (" + cmd + ")" : ""));
    }

    /** DMA_WRITE's data goes straight into guest memory once its address and count are read. */
    @Override
    public int placedDataOffset(int cmd) {
        return cmd == DMA_WRITE ? DmaAccess.SIZE : 0;
    }

    /**
     * The guest memory a DMA_WRITE's data is received into (no copy through the connection's buffer); errors as
     * {@link GuestMemory#dmaWrite}'s, before any byte lands. The pages are marked dirty once the data is in, or
     * when the connection ends while it comes (some may have landed).
     */
    @Override
    public Placement place(int cmd, MemorySegment fixed, long dataSize) {
        long address = DmaAccess.addressOf(fixed);
        long count = DmaAccess.countOf(fixed);
        if (count != dataSize) {
            throw new VfioUserException(Errno.EINVAL, "DMA_WRITE: count " + Long.toUnsignedString(count)
                    + " but " + dataSize + " bytes of data");
        }
        checkCount(count, "DMA_WRITE");
        GuestMemory.WriteView view = memory.acquireWriteView(address, count);
        return new Placement() {
            @Override
            public MemorySegment destination() {
                return view.segment();
            }

            @Override
            public Response received() {
                memory.releaseWriteView(view, true);
                return Response.of(new DmaWriteReply(address, count));
            }

            @Override
            public void abandoned() {
                memory.releaseWriteView(view, false);
            }
        };
    }

    private void checkCount(long count, String what) {
        if (Long.compareUnsigned(count, maxDataXferSize) > 0) {
            throw new VfioUserException(Errno.E2BIG, what + ": count " + Long.toUnsignedString(count)
                    + " exceeds our max_data_xfer_size " + maxDataXferSize);
        }
    }
}
