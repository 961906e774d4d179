package io.vfu.core.transport;

import io.vfu.core.linux.FdList;
import io.vfu.core.protocol.Header;
import java.lang.foreign.MemorySegment;

/**
 * A success reply to a {@link Connection#call}.
 *
 * <p>Ownership passes to the caller: {@code payload} is a slice of the caller's reply buffer, or a segment
 * allocated for this reply; {@code fds} must be closed (or taken) by the caller.
 *
 * @param header  the reply's header
 * @param payload exactly {@code msg_size - 16} bytes
 * @param fds     the descriptors that came with the reply
 */
public record ReceivedReply(Header header, MemorySegment payload, FdList fds) implements AutoCloseable {
    /** Closes every fd the caller did not take. */
    @Override
    public void close() {
        fds.close();
    }
}
