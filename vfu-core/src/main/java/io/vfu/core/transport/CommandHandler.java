package io.vfu.core.transport;

import io.vfu.core.protocol.VfioUserException;
import java.io.IOException;

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

    /** Called once on the reader thread when the connection ends (peer gone, closed, or fatal error). */
    default void closed(Throwable cause) {
    }
}
