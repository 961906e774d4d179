package io.vfu.client;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.DmaReadReply;
import io.vfu.core.protocol.DmaReadRequest;
import io.vfu.core.protocol.DmaWriteReply;
import io.vfu.core.protocol.DmaWriteRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.transport.CommandHandler;
import io.vfu.core.transport.IncomingCommand;
import io.vfu.core.transport.Response;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Serves the server→client commands (DMA_READ, DMA_WRITE; protocol reference §7.3) of one connection from a
 * {@link GuestMemory}. Runs on that connection's reader thread; one instance per connection, so the read
 * buffer is reused safely (the reply is sent before the next command is handled).
 */
final class DmaService implements CommandHandler {
    private final GuestMemory memory;
    private final long maxDataXferSize;
    private MemorySegment buffer;

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
            MemorySegment data = buffer(r.count());
            memory.dmaRead(r.address(), r.count(), data);
            return Response.of(new DmaReadReply(r.address(), data));
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

    private void checkCount(long count, String what) {
        if (Long.compareUnsigned(count, maxDataXferSize) > 0) {
            throw new VfioUserException(Errno.E2BIG, what + ": count " + Long.toUnsignedString(count)
                    + " exceeds our max_data_xfer_size " + maxDataXferSize);
        }
    }

    private MemorySegment buffer(long count) {
        if (buffer == null || buffer.byteSize() < count) {
            buffer = Arena.ofAuto().allocate(Math.max(count, 4096), 64);
        }
        return buffer.asSlice(0, count);
    }
}
