package io.vfu.core.transport;

import io.vfu.core.linux.FdList;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.Header;
import io.vfu.core.protocol.Wire;
import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;

/**
 * Receives vfio-user messages with as few {@code recvmsg} calls as possible: a header is read through a staging
 * buffer with room for {@value #STAGE_SIZE} bytes, so a small message usually arrives whole (header and body)
 * in one system call instead of two, and bytes of the next message that came with it wait in the stage. The
 * rest of a large body is read straight into its destination (only the staged prefix is copied).
 *
 * <h2>Which message the fds belong to</h2>
 * A reader that may read past a message boundary has to attribute the {@code SCM_RIGHTS} fds of a receive
 * itself. Linux ends a {@code recvmsg} on a stream socket right after the segment that carried fds
 * ({@code unix_stream_read_generic}), and fds travel with the first byte of the peer's {@code sendmsg}, which
 * starts a message (libvfio-user and QEMU send each message, fds included, with one {@code sendmsg}). So the
 * fds of a receive belong to the message containing the <em>last byte</em> that receive returned. Each group
 * of fds is kept with the stream offset where its receive ended and handed to the message whose byte range
 * contains it. Reads beyond the stage never cross the current message's end, so their fds are its own.
 *
 * <p>One thread reads at a time (the connection's reader, or the caller holding its read lock).
 */
final class MessageReader implements AutoCloseable {
    /** Enough for every small command or reply of the protocol in one receive. */
    static final int STAGE_SIZE = 4096;

    /** Fds that arrived with the receive ending just before stream offset {@code end}. */
    private record FdGroup(FdList fds, long end) {
    }

    /** The whole address space, unconfined: the target of copies into other threads' segments. */
    private static final MemorySegment ALL_MEMORY = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

    private final UnixSocket socket;
    private final MemorySegment stage;
    /** Staged bytes are {@code stage[pos, end)}. */
    private int pos;
    private int end;
    /** Stream offset of {@code stage[0]}. */
    private long stageBase;
    /** Fds of receives whose message is not known yet (its header is still to come), oldest first. */
    private final ArrayDeque<FdGroup> groups = new ArrayDeque<>(2);
    private final FdList fillFds = new FdList();

    MessageReader(UnixSocket socket, Arena arena) {
        this.socket = socket;
        this.stage = arena.allocate(STAGE_SIZE, 8);
    }

    /** Whether bytes of a message are staged already (a receive would not block for them). */
    boolean hasStaged() {
        return end > pos;
    }

    /** True if a message can be read without blocking for its first byte, waiting up to {@code timeoutMillis}. */
    boolean awaitReadable(long timeoutMillis) throws IOException {
        return hasStaged() || socket.awaitReadable(timeoutMillis);
    }

    /**
     * Reads the next message's 16-byte header into {@code header} and appends the message's fds (those that
     * came so far) to {@code fds}. Call at a message boundary: after the previous body was read or skipped.
     *
     * <p>A receive timeout ({@code SO_RCVTIMEO}: {@link io.vfu.core.linux.LinuxException} EAGAIN) consumes
     * nothing: bytes and fds received so far stay staged and the next call continues.
     *
     * @return false at a clean end of stream (before a message began)
     * @throws EOFException the stream ended inside a header
     */
    boolean readHeader(MemorySegment header, FdList fds) throws IOException {
        while (end - pos < Header.SIZE) {
            if (fill() == 0) {
                if (end == pos) {
                    return false;
                }
                throw new EOFException("end of stream after " + (end - pos) + " bytes of a message header");
            }
        }
        MemorySegment.copy(stage, pos, header, 0, Header.SIZE);
        long start = stageBase + pos;
        long msgEnd = start + Math.max(Wire.u32(stage, pos + Header.MSG_SIZE_OFFSET), Header.SIZE);
        pos += Header.SIZE;
        while (!groups.isEmpty() && groups.peekFirst().end() <= msgEnd) {
            groups.pollFirst().fds().moveTo(fds);
        }
        return true;
    }

    /**
     * Reads the next {@code dst.byteSize()} body bytes into {@code dst}: staged ones first, then from the socket.
     * {@code dst} may belong to another thread (a caller's reply buffer, confined to the caller): like the kernel
     * writing into it, the copy goes by address, and the caller waiting for its reply keeps it alive.
     */
    void readBody(MemorySegment dst, FdList fds) throws IOException {
        if (!dst.isNative() || dst.isReadOnly()) {
            throw new IllegalArgumentException("a body needs a writable native segment, not " + dst);
        }
        long size = dst.byteSize();
        int staged = (int) Math.min(end - pos, size);
        if (staged > 0) {
            MemorySegment.copy(stage, pos, ALL_MEMORY, dst.address(), staged);
            pos += staged;
        }
        if (staged < size) {
            socket.receiveFully(dst, staged, fds);
        }
    }

    /** Discards the next {@code n} body bytes. */
    void skip(long n, FdList fds) throws IOException {
        int staged = (int) Math.min(end - pos, n);
        pos += staged;
        if (staged < n) {
            socket.skip(n - staged, fds);
        }
    }

    /** One receive into the free part of the stage (after moving leftover bytes to its start). */
    private long fill() throws IOException {
        if (pos > 0) {
            int left = end - pos;
            if (left > 0) {
                MemorySegment.copy(stage, pos, stage, 0, left);
            }
            stageBase += pos;
            end = left;
            pos = 0;
        }
        long n = socket.receive(stage, end, fillFds);
        end += (int) n;
        if (!fillFds.isEmpty() || fillFds.truncated()) {
            FdList group = new FdList();
            fillFds.moveTo(group);
            groups.addLast(new FdGroup(group, stageBase + end));
        }
        return n;
    }

    /** Closes fds that arrived for messages never read. */
    @Override
    public void close() {
        for (FdGroup g; (g = groups.pollFirst()) != null; ) {
            g.fds().close();
        }
        fillFds.close();
    }
}
