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

    /** Called once on the reader thread when the connection ends (peer gone, closed, or fatal error). */
    default void closed(Throwable cause) {
    }
}
