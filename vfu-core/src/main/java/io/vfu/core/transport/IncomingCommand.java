package io.vfu.core.transport;

import io.vfu.core.linux.FdList;
import io.vfu.core.protocol.Header;
import java.lang.foreign.MemorySegment;

/**
 * A command received on a {@link Connection}, handed to a {@link CommandHandler}.
 *
 * <p>Lifetime: {@code payload} and {@code fds} are valid only while the handler runs. A handler that keeps
 * an fd must {@link FdList#take take} it; every fd not taken is closed when the handler returns.
 *
 * @param header  the validated header (type command)
 * @param payload exactly {@code msg_size - 16} bytes
 * @param fds     the descriptors that arrived with the message
 */
public record IncomingCommand(Header header, MemorySegment payload, FdList fds) {
}
