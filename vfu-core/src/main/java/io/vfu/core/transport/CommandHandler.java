package io.vfu.core.transport;

import io.vfu.core.linux.FdList;
import io.vfu.core.protocol.Header;
import io.vfu.core.protocol.VfioUserException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * Serves the commands a {@link Connection} receives. Runs on the connection's reader thread, one command
 * at a time, in arrival order (protocol reference §2 "Ordering").
 *
 * <p>Contract: return the reply (sent unless the command had No_reply), or throw
 * {@link VfioUserException} to answer with an error reply carrying its errno; the connection stays up.
 * Any other runtime exception is answered with EIO and logged. An {@link IOException} ends the connection.
 * A handler may itself call {@link Connection#call} on the same connection (e.g. a server's DMA_READ in
 * single-socket mode): the reply is then read on this thread, and commands arriving meanwhile are queued
 * and served after this one.
 */
@FunctionalInterface
public interface CommandHandler {
    Response handle(IncomingCommand command) throws IOException;

    /**
     * Serves a command given by its raw header fields; the connection calls this for every command. The
     * default builds an {@link IncomingCommand} and calls {@link #handle(IncomingCommand)}; override it to serve
     * hot commands without creating records. {@code payload} and {@code fds} are valid during the call only
     * (the payload buffer is reused for the next command). The header's error field of a command is 0.
     */
    default Response handle(int msgId, int cmd, long msgSize, int flags, MemorySegment payload, FdList fds)
            throws IOException {
        return handle(new IncomingCommand(new Header(msgId, cmd, msgSize, flags, 0), payload, fds));
    }

    /**
     * For a command whose data has a home of its own (DMA_WRITE: guest memory): the size of the fixed part
     * before its data, so that the connection reads that part first and asks {@link #place} where the data
     * goes; 0 (the default) for a command read whole into the connection's buffer.
     */
    default int placedDataOffset(int cmd) {
        return 0;
    }

    /**
     * Where the {@code dataSize} data bytes after {@code fixed} (the command's first
     * {@link #placedDataOffset} bytes, valid during the call) are received, straight from the socket instead
     * of through the connection's buffer; or {@code null} to read the whole command into that buffer and serve
     * it with {@link #handle(int, int, long, int, MemorySegment, FdList)} as usual. Throwing
     * {@link VfioUserException} answers the command with its errno (the data is skipped, nothing is placed).
     */
    default Placement place(int cmd, MemorySegment fixed, long dataSize) {
        return null;
    }

    /** A command's data being received in place (see {@link #place}). */
    interface Placement {
        /** Where the data goes: a writable native segment of exactly the data's size. */
        MemorySegment destination();

        /** The data is in: serve the command (as {@link #handle(IncomingCommand)} would, same contract). */
        Response received() throws IOException;

        /** The data did not all come (the connection ended): some of it may have landed. */
        void abandoned();
    }

    /** Called once on the reader thread when the connection ends (peer gone, closed, or fatal error). */
    default void closed(Throwable cause) {
    }
}
