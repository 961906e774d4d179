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
 * <h2>Scatter reads</h2>
 * When the caller knows where the next message's body will most likely go (a caller waiting for a large reply,
 * see {@link #readHeader(MemorySegment, FdList, MemorySegment)}), the header is read into the stage and the
 * body straight into that destination with one {@code recvmsg}, so a 64 KiB reply costs one system call and no
 * copy. If the message turns out to be another one, or shorter, the bytes that landed in the destination are
 * moved back into the stage (growing it if needed) before anything else is read: nothing is lost or reordered.
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

    /** Scatter reads only pay off for bodies well beyond what the stage takes in anyway. */
    static final long SCATTER_MIN = STAGE_SIZE;

    /** The largest body prefix a scatter read puts into the stage (a reply's fixed part). */
    static final int MAX_PREFIX = 256;

    private final UnixSocket socket;
    private final Arena arena;
    private MemorySegment stage;
    /** The first {@value Header#SIZE} bytes of the stage (scatter reads put a header there). */
    private MemorySegment stageHeader;
    /** The header and the last scatter read's body prefix ({@link #stageLeadPrefix} bytes): a scatter read's first part. */
    private MemorySegment stageLead;
    private int stageLeadPrefix;
    /** Staged bytes are {@code stage[pos, end)}. */
    private int pos;
    private int end;
    /** Stream offset of {@code stage[0]}. */
    private long stageBase;
    /** Fds of receives whose message is not known yet (its header is still to come), oldest first. */
    private final ArrayDeque<FdGroup> groups = new ArrayDeque<>(2);
    private final FdList fillFds = new FdList();
    /** After a scatter read: the destination that holds the first {@code prefilledBytes} body bytes. */
    private MemorySegment prefilled;
    private long prefilledBytes;
    /** Body bytes scatter reads have received in place so far (for tests: a large body skipped the stage). */
    private long scatteredBytes;
    /** Whether {@link #prefilled} came from {@link #receiveNow}, ahead of the header it follows. */
    private boolean lookedAhead;

    MessageReader(UnixSocket socket, Arena arena) {
        this.socket = socket;
        this.arena = arena;
        this.stage = arena.allocate(STAGE_SIZE, 8);
        this.stageHeader = stage.asSlice(0, Header.SIZE);
        this.stageLead = stageHeader;
    }

    /** Whether bytes of a message are staged already (a receive would not block for them). */
    boolean hasStaged() {
        return end > pos || prefilled != null;
    }

    /** Whether the next message is staged whole (reading it needs no system call). */
    boolean hasCompleteMessage() {
        int staged = end - pos;
        return prefilled == null && staged >= Header.SIZE
                && staged >= Wire.u32(stage, pos + Header.MSG_SIZE_OFFSET);
    }

    /**
     * Whether the next message has begun to arrive: bytes of it are staged, or one receive that does not wait
     * brings some now. That receive scatters as {@link #readHeader(MemorySegment, FdList, MemorySegment)} would
     * with {@code likelyBody} (pass the same buffer to it next, to keep what landed there in place). The end of
     * the stream counts as arrived (readHeader reports it). Instead of {@link #awaitReadable awaitReadable(0)}
     * and a receive: one system call when something is there.
     */
    boolean receiveNow(MemorySegment likelyBody) throws IOException {
        return receiveNow(likelyBody, 0);
    }

    /** As {@link #receiveNow(MemorySegment)}, scattering as {@link #readHeader(MemorySegment, FdList, MemorySegment, int)}. */
    boolean receiveNow(MemorySegment likelyBody, int prefix) throws IOException {
        if (hasStaged()) {
            return true;
        }
        boolean scatter = likelyBody != null && likelyBody.byteSize() >= SCATTER_MIN;
        long n = scatter ? scatterFill(likelyBody, prefix, true) : fill(true);
        lookedAhead = prefilled != null;
        return n >= 0;
    }

    /** True if a message can be read without blocking for its first byte, waiting up to {@code timeoutMillis}. */
    boolean awaitReadable(long timeoutMillis) throws IOException {
        return hasStaged() || socket.awaitReadable(timeoutMillis);
    }

    /**
     * Reads the next message's 16-byte header into {@code header} and appends the message's fds (those that
     * came so far) to {@code fds}. Call at a message boundary: after the previous body was read or skipped.
     *
     * <p>A receive timeout ({@link io.vfu.core.linux.UnixSocket#receiveTimeout}: {@link io.vfu.core.linux.LinuxException}
     * EAGAIN) consumes
     * nothing: bytes and fds received so far stay staged and the next call continues.
     *
     * @return false at a clean end of stream (before a message began)
     * @throws EOFException the stream ended inside a header
     */
    boolean readHeader(MemorySegment header, FdList fds) throws IOException {
        return readHeader(header, fds, null);
    }

    /**
     * As {@link #readHeader(MemorySegment, FdList)}; if the header is not staged yet and {@code likelyBody} (at
     * least {@link #SCATTER_MIN} bytes) is given, the receive scatters into the stage (header) and
     * {@code likelyBody} (body). Read the body with {@link #readBody} into a segment at the same address to keep
     * what landed there in place; any other next step first moves those bytes back into the stage.
     * {@code likelyBody} must stay writable by this thread's receives until then (a buffer the reading caller
     * itself is waiting to fill).
     */
    boolean readHeader(MemorySegment header, FdList fds, MemorySegment likelyBody) throws IOException {
        return readHeader(header, fds, likelyBody, 0);
    }

    /**
     * As {@link #readHeader(MemorySegment, FdList, MemorySegment)}, with the body's first {@code prefix} bytes
     * (at most {@value #MAX_PREFIX}) going to the stage and the rest to {@code likelyBody}: for a reply whose
     * fixed part and data go to different places (e.g. DMA_READ data straight into the device's buffer). Read
     * the prefix with {@link #readBody} first (it is staged), then the rest into a segment at {@code likelyBody}'s
     * address.
     */
    boolean readHeader(MemorySegment header, FdList fds, MemorySegment likelyBody, int prefix) throws IOException {
        if (prefix < 0 || prefix > MAX_PREFIX) {
            throw new IllegalArgumentException("a body prefix of " + prefix + " bytes (0.." + MAX_PREFIX + ")");
        }
        boolean scatter = likelyBody != null && likelyBody.byteSize() >= SCATTER_MIN;
        // Body bytes in place are kept only if receiveNow put them there for this very header; any others (a
        // header-only message's scatter read brought the next message's bytes) go back to the stage first.
        boolean keep = lookedAhead && scatter && prefilled != null && prefilled.address() == likelyBody.address();
        lookedAhead = false;
        if (!keep) {
            unstash();
        }
        while (end - pos < Header.SIZE) {
            if ((scatter ? scatterFill(likelyBody, prefix, false) : fill(false)) == 0) {
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
        if (prefilled != null && prefilled.address() != dst.address() && end - pos >= size) {
            // A prefix read into the stage by a scatter read, before the bytes that landed in place: from the stage,
            // the bytes in place stay where they are.
            MemorySegment.copy(stage, pos, ALL_MEMORY, dst.address(), size);
            pos += (int) size;
            return;
        }
        if (prefilled != null && prefilled.address() == dst.address()) {
            // The scatter read guessed right: the first bytes are in place; any beyond this body go to the stage.
            long inPlace = Math.min(prefilledBytes, size);
            MemorySegment source = prefilled;
            long extra = prefilledBytes - inPlace;
            prefilled = null;
            prefilledBytes = 0;
            bypassed(inPlace);
            if (extra > 0) {
                stash(source, inPlace, extra);
            }
            if (inPlace < size) {
                socket.receiveFully(dst, inPlace, fds);
                bypassed(size - inPlace);
            }
            return;
        }
        unstash();
        int staged = (int) Math.min(end - pos, size);
        if (staged > 0) {
            MemorySegment.copy(stage, pos, ALL_MEMORY, dst.address(), staged);
            pos += staged;
        }
        if (staged < size) {
            socket.receiveFully(dst, staged, fds);
            bypassed(size - staged);
        }
    }

    /**
     * Accounts for {@code n} bytes of the stream that went past the (empty) stage, so that stream offsets, which
     * attribute fds to messages, stay exact.
     */
    private void bypassed(long n) {
        compact();
        stageBase += n;
    }

    /** Discards the next {@code n} body bytes. */
    void skip(long n, FdList fds) throws IOException {
        unstash();
        int staged = (int) Math.min(end - pos, n);
        pos += staged;
        if (staged < n) {
            socket.skip(n - staged, fds);
            bypassed(n - staged);
        }
    }

    /**
     * One receive into the free part of the stage (after moving leftover bytes to its start); if {@code now},
     * without waiting (-1: nothing there).
     */
    private long fill(boolean now) throws IOException {
        compact();
        long n = now ? socket.receiveNow(stage, end, null, fillFds) : socket.receive(stage, end, fillFds);
        if (n < 0) {
            return n;
        }
        end += (int) n;
        groupFds(stageBase + end);
        return n;
    }

    /**
     * One receive of the missing header bytes and {@code prefix} body bytes into the stage and of further body
     * bytes into {@code body}, never more than that and {@code body}'s size: what lands in {@code body} is the
     * next body after its prefix. If {@code now}, without waiting (-1: nothing there).
     */
    private long scatterFill(MemorySegment body, int prefix, boolean now) throws IOException {
        compact();
        if (stageLeadPrefix != prefix) { // prefixes repeat (one kind of reply): no slice per receive
            stageLead = stage.asSlice(0, Header.SIZE + prefix);
            stageLeadPrefix = prefix;
        }
        long n = now ? socket.receiveNow(stageLead, end, body, fillFds)
                : socket.receive(stageLead, end, body, fillFds);
        if (n < 0) {
            return n;
        }
        long headerPart = Math.min(n, Header.SIZE + prefix - end);
        end += (int) headerPart;
        if (n > headerPart) {
            prefilled = body;
            prefilledBytes = n - headerPart;
            scatteredBytes += prefilledBytes;
        }
        groupFds(stageBase + end + prefilledBytes);
        return n;
    }

    private void compact() {
        if (pos > 0) {
            int left = end - pos;
            if (left > 0) {
                MemorySegment.copy(stage, pos, stage, 0, left);
            }
            stageBase += pos;
            end = left;
            pos = 0;
        }
    }

    /** Keeps the fds of the receive just made with the stream offset where it ended. */
    private void groupFds(long receiveEnd) {
        if (!fillFds.isEmpty() || fillFds.truncated()) {
            FdList group = new FdList();
            fillFds.moveTo(group);
            groups.addLast(new FdGroup(group, receiveEnd));
        }
    }

    /** Moves body bytes that a scatter read put into a destination that was not used back into the stage. */
    private void unstash() {
        if (prefilled != null) {
            MemorySegment source = prefilled;
            long bytes = prefilledBytes;
            prefilled = null;
            prefilledBytes = 0;
            stash(source, 0, bytes);
        }
    }

    /** Appends {@code bytes} bytes of {@code source} from {@code offset} to the staged bytes, growing the stage if needed. */
    private void stash(MemorySegment source, long offset, long bytes) {
        compact();
        if (end + bytes > stage.byteSize()) {
            // Rare (a scatter read that guessed wrong): bounded by the destination, itself bounded by the limits.
            MemorySegment bigger = arena.allocate(Math.max(stage.byteSize() * 2, end + bytes), 8);
            MemorySegment.copy(stage, 0, bigger, 0, end);
            stage = bigger;
            stageHeader = stage.asSlice(0, Header.SIZE);
            stageLead = stageHeader;
            stageLeadPrefix = 0;
        }
        MemorySegment.copy(ALL_MEMORY, source.address() + offset, stage, end, bytes);
        end += (int) bytes;
    }

    /** Body bytes received in place by scatter reads so far, those moved back to the stage included (tests). */
    long scatteredBytes() {
        return scatteredBytes;
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
