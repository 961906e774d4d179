package io.vfu.core.transport;

import io.vfu.core.linux.FdList;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.Header;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;

/** Test peer that writes and reads raw frames, to feed a {@link Connection} what a real peer would not. */
final class RawWire {
    private final UnixSocket socket;
    private final Arena arena;

    RawWire(UnixSocket socket, Arena arena) {
        this.socket = socket;
        this.arena = arena;
    }

    void send(int msgId, int cmd, int flags, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        MemorySegment msg = arena.allocate(Header.SIZE + bytes.length);
        Header.encode(msg, msgId, cmd, Header.SIZE + bytes.length, flags, 0);
        msg.asSlice(Header.SIZE).copyFrom(MemorySegment.ofArray(bytes));
        socket.send(null, msg);
    }

    /** A header-only error reply carrying {@code errno}. */
    void sendError(int msgId, int cmd, int errno) throws IOException {
        MemorySegment h = arena.allocate(Header.SIZE);
        Header.encode(h, msgId, cmd, Header.SIZE, Header.TYPE_REPLY | Header.FLAG_ERROR, errno);
        socket.send(null, h);
    }

    /** A header whose msg_size promises {@code msgSize} bytes, and nothing else. */
    void sendHeaderOnly(int msgId, int cmd, int flags, long msgSize) throws IOException {
        MemorySegment h = arena.allocate(Header.SIZE);
        Header.encode(h, msgId, cmd, msgSize, flags, 0);
        socket.send(null, h);
    }

    Header readHeader() throws IOException {
        MemorySegment h = arena.allocate(Header.SIZE);
        try (FdList fds = new FdList()) {
            socket.receiveFully(h, fds);
        }
        return Header.decode(h);
    }

    String readBody(Header h) throws IOException {
        MemorySegment body = arena.allocate(Math.max(1, h.payloadSize())).asSlice(0, h.payloadSize());
        try (FdList fds = new FdList()) {
            socket.receiveFully(body, fds);
        }
        return RawPayload.text(body);
    }

    String readReplyText(int msgId) throws IOException {
        Header h = readHeader();
        if (h.msgId() != msgId || !h.isReply() || h.isError()) {
            throw new AssertionError("expected success reply to " + msgId + ", got " + h);
        }
        return readBody(h);
    }

    boolean atEof() throws IOException {
        try (FdList fds = new FdList()) {
            return socket.receive(arena.allocate(1), fds) == 0;
        }
    }
}
