package io.vfu.core.transport;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.FdList;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.Header;
import io.vfu.core.protocol.Reply;
import io.vfu.core.protocol.Request;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.protocol.Wire;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Frames vfio-user messages over a {@link UnixSocket}: sends whole messages with their fds, assigns and
 * matches msg_ids, tells replies from commands travelling the other way, honours No_reply, and bounds every
 * size before allocating (protocol reference §3.3).
 *
 * <h2>Threading</h2>
 * One reader thread receives everything ({@link #start} spawns it, {@link #serve} makes the calling thread
 * the reader). Commands are handed to the {@link CommandHandler} on that thread, one at a time. Replies
 * complete the matching {@link #call}, which may run on any thread; a call made <em>on the reader thread</em>
 * (a handler asking the peer for something, e.g. DMA_READ without a twin socket) reads its own reply inline
 * and queues commands that arrive meanwhile, so the peer is never left unserviced. Sending is serialised by
 * a lock held only while writing.
 *
 * <p>{@link #startCallerReads} is the alternative to a reader thread for a socket on which the peer sends
 * nothing unprompted: the thread waiting in {@link #call} reads the socket itself, saving a thread hand-off
 * (a wake-up) per round trip.
 *
 * <h2>Receive pipeline</h2>
 * header (16 bytes, through {@link MessageReader}'s staging buffer, which usually brings a small body along in
 * the same recvmsg, and attributes fds to their message) → validate type and msg_size → msg_size above {@link TransportLimits#maxMessageSize}:
 * skip the body (up to {@link TransportLimits#drainLimit}, else close) and answer E2BIG → read exactly the
 * body → replies to the pending call, commands to the handler → reply from one place. Fds that nobody took
 * are closed.
 *
 * <h2>Zero copy</h2>
 * Outgoing data tails ({@link io.vfu.core.protocol.Payload#data()}) are gathered by {@code sendmsg} straight
 * from their segment. A caller may give {@link #call(Request, int[], MemorySegment)} a reply buffer; the
 * reply body is read directly into it. Commands are read into one reusable buffer per connection.
 */
public final class Connection implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Connection.class);
    private static final int SEND_SCRATCH = 64 * 1024;
    /** Room for the held replies' headers and fixed parts: dozens of data-less replies (see {@link #hold}). */
    private static final int HELD_SCRATCH = 1024;
    /** The largest header and fixed part of a reply that may be held. */
    private static final int HOLD_STAGE = 64;
    /**
     * The largest data tail of a reply that may be held. A larger one fills the socket buffer (~208 KiB by
     * default) on its own, so its send wakes the peer several times anyway: holding it saves nothing and keeps a
     * second reply buffer busy (more memory in the cache while streaming).
     */
    private static final long HOLD_DATA_MAX = 256 * 1024;
    private static final int[] NO_FDS = new int[0];

    private final UnixSocket socket;
    private final String name;
    private volatile TransportLimits limits;
    private final Arena arena = Arena.ofShared();

    private final ReentrantLock sendLock = new ReentrantLock();
    private final MemorySegment sendScratch;
    // Guarded by sendLock: the fixed-part view of sendScratch and the last header+fixed slice (sizes repeat).
    private final MemorySegment sendFixed;
    private MemorySegment sendHead;
    /** The last batch of requests' slice of sendScratch (guarded by sendLock). */
    private MemorySegment batchSlice;
    /**
     * Coalescible replies held back (see {@link Response#coalescible}): their headers and fixed parts back to back
     * in heldScratch ({@code heldHead} is that prefix), the data tail of the last one in the handler's segment
     * ({@code heldData}; only the last may have one). Guarded by sendLock; only the reader thread holds replies;
     * every send puts them in front of its own bytes, so the order on the wire never changes.
     */
    private final MemorySegment heldScratch;
    /** Where one reply's header and fixed part are encoded before they join the held ones (guarded by sendLock). */
    private final MemorySegment holdStage;
    /** The last header+fixed slice of holdStage and its fixed part (sizes repeat: reused; guarded by sendLock). */
    private MemorySegment heldSlice;
    private MemorySegment heldFixed;
    private volatile MemorySegment heldHead;
    private MemorySegment heldData;
    /** Bytes of heldScratch in use while replies are held (guarded by sendLock). */
    private int heldBytes;
    /** Views of heldScratch by length, made when first needed (no slice per held reply; guarded by sendLock). */
    private final MemorySegment[] heldViews = new MemorySegment[HELD_SCRATCH + 1];
    /** Replies held back so far (guarded by sendLock; for tests). */
    private long heldCount;

    private final Object lock = new Object();
    /** Calls in flight, oldest first (an intrusive list: no map entry or boxed msg_id per call). */
    private Call pendingHead;
    private Call pendingTail;
    /** The msg_ids of the calls in flight, a bit each (guarded by lock). */
    private final long[] msgIdsInUse = new long[(1 << 16) / 64];
    /** Finished calls kept for reuse (no allocation per call, also with several in flight); guarded by lock. */
    private final Call[] spareCalls = new Call[16];
    private int spareCount;
    /** msg_ids of calls that timed out, whose replies may still come (bounded). */
    private final java.util.Set<Integer> abandoned = new java.util.LinkedHashSet<>();
    private int lastMsgId;
    /** Timed-out callers waiting for the reader to finish writing their reply buffer (guarded by lock). */
    private int receivingWaiters;
    /**
     * Calls in flight whose reply the reading caller may receive in place ({@link Call#large}); written under
     * lock, read without it by {@link #likelyReplyBuffer} (no lock per read while only small calls are out).
     */
    private volatile int largeCalls;
    /** Set under lock; volatile so that the reading caller's loop can look at it without taking the lock. */
    private volatile boolean ended;
    private IOException endCause;

    // Reader-thread state.
    private volatile Thread reader;
    private CommandHandler handler;
    private final MemorySegment headerBuf;
    /** Frames incoming bytes (a staging buffer: one recvmsg per small message). */
    private final MessageReader in;
    private MemorySegment receiveBuf;
    /** The last slice of receiveBuf handed out (command sizes repeat: reused while the size does). */
    private MemorySegment receiveSlice;
    /** Body size of the last command read on the fast path (reader thread only). */
    private int lastCommandBodySize;
    /** The fixed part of the last placed command, a slice of the receive buffer (reader thread only). */
    private MemorySegment placedFixed;
    private final ArrayDeque<IncomingCommand> queued = new ArrayDeque<>();
    private int inlineDepth;
    /** Set by {@link #likelyBody}: how many of the likely body's first bytes a scatter read puts into the stage. */
    private int likelyPrefix;
    /** An empty fd list for the next message, or null while it is lent out (reader thread only). */
    private FdList spareFds = new FdList();

    private volatile boolean closeRequested;
    /** Caller-reads mode ({@link #startCallerReads}); readLock is held by the caller reading the socket. */
    private volatile boolean callerReads;
    private final ReentrantLock readLock = new ReentrantLock();
    // The call out on its own (see callAlone). Kept by the thread that holds readLock while it is out, which is
    // also the only one reading the socket then: plain fields. loneMsgId is -1 while none is out.
    private int loneMsgId = -1;
    private int loneCmd;
    private Command loneCommand;
    private MemorySegment loneBuffer;
    /** The reply body's size once it is in, else -1. */
    private long loneSize;
    private VfioUserException loneFailure;
    /** Calls that went {@link #callAlone}'s way, counted under readLock (for tests). */
    private long aloneCount;
    /** Callers parked while another one reads (caller-reads mode): only then is there anyone to wake. */
    private final java.util.concurrent.atomic.AtomicInteger waitingCallers = new java.util.concurrent.atomic.AtomicInteger();
    /** The thread holding {@link #holdReads}, or null (written by that thread while it holds readLock). */
    private Thread readHolder;
    /** The holder has paused its hold ({@link ReadHold#pause}): its own calls are refused (holder thread only). */
    private boolean readsPaused;
    private boolean closedCallbackDone; // guarded by lock
    private volatile boolean readerFinished;
    private volatile boolean endAfterReply;
    private volatile boolean socketClosed;

    /**
     * @param socket the connected socket; the connection owns it from now on
     * @param limits receive bounds; replace them after VERSION negotiation with {@link #limits(TransportLimits)}
     * @param name   a short name for logs and thread names (e.g. "server", "client")
     */
    public Connection(UnixSocket socket, TransportLimits limits, String name) {
        this.socket = socket;
        this.limits = limits;
        this.name = name;
        socket.maxFds(limits.maxFds());
        this.sendScratch = arena.allocate(SEND_SCRATCH, 8);
        this.sendFixed = sendScratch.asSlice(Header.SIZE);
        this.sendHead = sendScratch.asSlice(0, Header.SIZE);
        this.headerBuf = arena.allocate(Header.SIZE, 8);
        this.heldScratch = arena.allocate(HELD_SCRATCH, 8);
        this.holdStage = arena.allocate(HOLD_STAGE, 8);
        this.heldSlice = holdStage.asSlice(0, 0);
        this.in = new MessageReader(socket, arena);
        this.lastMsgId = (int) (System.nanoTime() & 0xFFFF);
    }

    public UnixSocket socket() {
        return socket;
    }

    public String name() {
        return name;
    }

    public TransportLimits limits() {
        return limits;
    }

    /** Replaces the receive bounds (e.g. after VERSION negotiated a larger max_data_xfer_size). */
    public void limits(TransportLimits newLimits) {
        this.limits = newLimits;
        socket.maxFds(newLimits.maxFds());
        if (callerReads) {
            try {
                socket.receiveTimeout(newLimits.replyTimeout());
            } catch (IOException e) {
                log.debug("{}: receive timeout: {}", name, e.toString());
            }
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Reader

    /** Starts a platform reader thread that serves commands with {@code handler}. */
    public void start(CommandHandler handler) {
        Thread t = Thread.ofPlatform().name("vfu-" + name + "-reader").daemon(true).unstarted(() -> runReader(handler));
        synchronized (lock) {
            if (reader != null) {
                throw new IllegalStateException("connection already has a reader");
            }
            if (callerReads) {
                // Leaving caller-reads mode: allowed only while no call is in flight (no caller is reading).
                if (pendingHead != null || readLock.isLocked()) {
                    throw new IllegalStateException(name + ": cannot start a reader while calls are in flight");
                }
                callerReads = false;
                try {
                    socket.receiveTimeout(Duration.ZERO); // the reader thread waits for as long as it takes
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(name + ": cannot clear the receive timeout", e);
                }
            }
            reader = t;
        }
        t.start();
    }

    /**
     * Serves without a reader thread: a thread waiting in {@link #call} reads the socket itself (one at a
     * time; it also completes other callers' calls and runs commands that arrive meanwhile on its own
     * thread). This saves a thread hand-off per round trip (two wake-ups instead of three), but messages
     * are only read while a call is waiting (or {@link #isEnded()} looks): use it only where the peer sends
     * nothing unprompted, e.g. a vfio-user client's main socket once a twin socket carries the server's
     * commands. {@link #start} switches to a reader thread later (while no call is in flight).
     */
    public void startCallerReads(CommandHandler handler) throws IOException {
        synchronized (lock) {
            if (reader != null || callerReads) {
                throw new IllegalStateException("connection already has a reader");
            }
            // The reading caller blocks in recvmsg (no poll first); the socket's receive timeout bounds the wait.
            socket.receiveTimeout(limits.replyTimeout());
            this.handler = handler;
            callerReads = true;
        }
    }

    /** A header receive timed out in caller-reads mode (nothing consumed). Preallocated, no stack trace. */
    private static final class ReceiveTimedOut extends IOException {
        ReceiveTimedOut() {
            super("receive timed out");
        }

        @Override
        public synchronized Throwable fillInStackTrace() {
            return this; // a control-flow signal: no stack trace
        }
    }

    private static final ReceiveTimedOut RECEIVE_TIMED_OUT = new ReceiveTimedOut();

    /** Runs the reader loop on the calling thread until the connection ends. */
    public void serve(CommandHandler handler) {
        synchronized (lock) {
            if (reader != null) {
                throw new IllegalStateException("connection already has a reader");
            }
            reader = Thread.currentThread();
        }
        runReader(handler);
    }

    private void runReader(CommandHandler h) {
        this.handler = h;
        IOException cause = null;
        try {
            while (true) {
                serveQueued();
                if (heldHead != null && !nextMessageReady()) {
                    flushHeld(); // never wait for the peer while a reply is held back
                }
                if (endAfterReply || !readMessage(null) || endAfterReply) {
                    break;
                }
            }
        } catch (IOException e) {
            cause = e;
        } catch (RuntimeException | Error e) {
            log.error("{}: reader failed", name, e);
            cause = new ConnectionClosedException(name + ": reader failed: " + e, e);
        } finally {
            try {
                flushHeld();
            } catch (IOException | RuntimeException e) {
                log.debug("{}: held reply not sent: {}", name, e.toString());
            }
            end(cause != null ? cause : new ConnectionClosedException(name + ": peer closed the connection"));
            for (IncomingCommand c; (c = queued.poll()) != null; ) {
                c.fds().close();
            }
            try {
                h.closed(cause);
            } catch (RuntimeException e) {
                log.warn("{}: closed() callback failed", name, e);
            }
            readerFinished = true;
            if (closeRequested) {
                closeSocket();
            }
        }
    }

    private void serveQueued() throws IOException {
        for (IncomingCommand c; (c = queued.poll()) != null; ) {
            dispatch(c.header(), c.payload(), c.fds());
        }
    }

    /**
     * Reads and routes one message. {@code waiting}, when set, is the call whose reply the reader thread is
     * waiting for inline: commands are then queued instead of served.
     *
     * @return false on a clean end of stream before a header
     */
    private boolean readMessage(Call waiting) throws IOException {
        FdList fds = spareFds != null ? spareFds : new FdList();
        spareFds = null;
        boolean handedOn = false;
        try {
            try {
                MemorySegment likely = likelyBody(waiting);
                if (!in.readHeader(headerBuf, fds, likely, likelyPrefix)) {
                    return false;
                }
            } catch (io.vfu.core.linux.LinuxException e) {
                if (callerReads && e.errnoValue() == Errno.EAGAIN.value()) {
                    throw RECEIVE_TIMED_OUT; // receive timeout: what came so far stays staged, framing intact
                }
                throw e;
            }
            TransportLimits lim = limits;
            long msgSize = Wire.u32(headerBuf, Header.MSG_SIZE_OFFSET);
            if (msgSize < Header.SIZE) {
                throw new ConnectionClosedException(name + ": framing lost: msg_size " + msgSize + " < 16");
            }
            int flags = (int) Wire.u32(headerBuf, Header.FLAGS_OFFSET);
            if ((flags & Header.TYPE_MASK) == Header.TYPE_REPLY) {
                // Replies are framed from the raw fields: no Header record per reply (hot path).
                handedOn = readReply(Wire.u16(headerBuf, Header.MSG_ID_OFFSET), Wire.u16(headerBuf, Header.CMD_OFFSET),
                        msgSize, flags, (int) Wire.u32(headerBuf, Header.ERROR_OFFSET), fds, lim);
                return true;
            }
            if ((flags & Header.TYPE_MASK) == Header.TYPE_COMMAND && msgSize <= lim.maxMessageSize()
                    && !fds.truncated() && waiting == null && inlineDepth == 0) {
                // The common case, framed from the raw fields: no Header record per command (hot path).
                int size = (int) (msgSize - Header.SIZE);
                int cmd = Wire.u16(headerBuf, Header.CMD_OFFSET);
                int placedAt = fds.isEmpty() ? handler.placedDataOffset(cmd) : 0;
                if (placedAt > 0 && size > placedAt) {
                    readPlaced(Wire.u16(headerBuf, Header.MSG_ID_OFFSET), cmd, msgSize, flags, size, placedAt, fds);
                    handedOn = true; // served: the list went back to spareFds
                    return true;
                }
                MemorySegment body = receiveBuffer(size);
                if (size > 0) {
                    in.readBody(body, fds);
                }
                lastCommandBodySize = size;
                handedOn = true;
                dispatch(Wire.u16(headerBuf, Header.MSG_ID_OFFSET), Wire.u16(headerBuf, Header.CMD_OFFSET), msgSize,
                        flags, body, fds);
                return true;
            }
            Header header;
            try {
                header = Header.decode(headerBuf);
            } catch (VfioUserException e) {
                // Bad type: the size is still trustworthy, so answer like libvfio-user (EINVAL) and resync.
                skipBody(msgSize - Header.SIZE, fds, lim);
                int msgId = Wire.u16(headerBuf, Header.MSG_ID_OFFSET);
                int cmd = Wire.u16(headerBuf, Header.CMD_OFFSET);
                log.warn("{}: {}", name, e.getMessage());
                sendError(msgId, cmd, Errno.EINVAL);
                return true;
            }
            if (msgSize > lim.maxMessageSize()) {
                skipBody(header.payloadSize(), fds, lim);
                log.warn("{}: {} exceeds the maximum message size {}", name, header, lim.maxMessageSize());
                if (!header.noReply()) {
                    sendError(header.msgId(), header.cmd(), Errno.E2BIG);
                }
                return true;
            }
            if (fds.truncated()) {
                skipBody(header.payloadSize(), fds, lim);
                log.warn("{}: {} carried more than {} fds", name, header, lim.maxFds());
                if (!header.noReply()) {
                    sendError(header.msgId(), header.cmd(), Errno.EINVAL);
                }
                return true;
            }
            int size = (int) header.payloadSize();
            if (waiting != null || inlineDepth > 0) {
                // A handler is blocked on this thread: keep the command for later, in order.
                if (queued.size() >= lim.maxQueued()) {
                    throw new ConnectionClosedException(name + ": more than " + lim.maxQueued()
                            + " commands queued while waiting for a reply");
                }
                MemorySegment copy = Arena.ofAuto().allocate(Math.max(size, 1), 8).asSlice(0, size);
                in.readBody(copy, fds);
                queued.add(new IncomingCommand(header, copy, fds));
                handedOn = true;
                return true;
            }
            MemorySegment body = receiveBuffer(size);
            if (size > 0) {
                in.readBody(body, fds);
            }
            handedOn = true;
            dispatch(header, body, fds);
            return true;
        } finally {
            if (!handedOn) {
                fds.close();
                spareFds = fds;
            }
        }
    }

    /**
     * Where the next message's body most likely goes, if it is large (see {@link MessageReader#readHeader});
     * sets {@link #likelyPrefix}, the bytes of it that go to the stage first.
     */
    private MemorySegment likelyBody(Call waiting) {
        likelyPrefix = 0;
        return callerReads ? likelyReplyBuffer()
                : waiting == null && inlineDepth == 0 ? likelyCommandBuffer() : null;
    }

    /**
     * Caller-reads mode: the reply buffer of the oldest call still waiting, if it is the reading thread's own
     * and large. Replies come in command order (§3.2), so the next message is most likely its reply: the
     * reader may receive the body straight into it ({@link MessageReader#readHeader(MemorySegment, FdList,
     * MemorySegment)}). Only the waiting thread itself hands out its buffer: nobody can give it back to the
     * application while the receive writes into it.
     */
    private MemorySegment likelyReplyBuffer() {
        // Only the reading thread's own call counts, and a large one of its own was counted before it was sent
        // and is uncounted only when this thread finishes it: none counted, none of its own, the answer is null.
        if (largeCalls == 0) {
            return null;
        }
        synchronized (lock) {
            for (Call p = pendingHead; p != null; p = p.next) {
                if (!p.isDone()) {
                    if (p.waiter != Thread.currentThread() || p.abandoned || p.replyBuffer == null) {
                        return null;
                    }
                    MemorySegment b = p.replyBuffer;
                    if (p.replyData != null) { // a split reply: its fixed part to the stage, its data in place
                        if (b.byteSize() > MessageReader.MAX_PREFIX) {
                            return null;
                        }
                        likelyPrefix = (int) b.byteSize();
                        b = p.replyData;
                    }
                    return b.byteSize() >= MessageReader.SCATTER_MIN ? b : null;
                }
            }
            return null;
        }
    }

    /**
     * Reader thread, no handler running: the receive buffer sized like the last command's body, if that was
     * large. Large commands come in runs of equal size (pipelined MIG_DATA_WRITEs, DMA_WRITEs of a transfer), so
     * the next body most likely fits exactly and is received in place with its header, without over-reading
     * (a wrong guess costs a copy, see {@link MessageReader}). The buffer is free: no handler is using it.
     */
    private MemorySegment likelyCommandBuffer() {
        int size = lastCommandBodySize;
        return size >= MessageReader.SCATTER_MIN && size <= limits.maxMessageSize() - Header.SIZE
                ? receiveBuffer(size) : null;
    }

    private MemorySegment receiveBuffer(int size) {
        if (receiveBuf == null || receiveBuf.byteSize() < size) {
            // Grows geometrically up to the bound; never beyond what the limits allow.
            long want = Math.max(size, receiveBuf == null ? 4096 : Math.min(receiveBuf.byteSize() * 2, limits.maxMessageSize()));
            receiveBuf = arena.allocate(want, 8);
            receiveSlice = null;
        }
        if (receiveSlice == null || receiveSlice.byteSize() != size) {
            receiveSlice = receiveBuf.asSlice(0, size);
        }
        return receiveSlice;
    }

    private void skipBody(long bytes, FdList fds, TransportLimits lim) throws IOException {
        if (bytes > lim.drainLimit()) {
            throw new ConnectionClosedException(name + ": message body of " + bytes
                    + " bytes is beyond the drain limit " + lim.drainLimit() + "; closing");
        }
        in.skip(bytes, fds);
    }

    /** @return true if the fds were handed on to a caller */
    private boolean readReply(int msgId, int cmd, long msgSize, int flags, int error, FdList fds, TransportLimits lim)
            throws IOException {
        if (msgId == loneMsgId && cmd == loneCmd && loneSize < 0 && loneFailure == null) {
            readLoneReply(msgId, msgSize, flags, error, fds, lim);
            return false;
        }
        Call p;
        // The reading thread's own call needs no receiving mark: only its waiter (finishInto, timedOut) and the
        // reader (unexpectedReply) look at the mark, here both this thread, busy reading. One lock pair less
        // per reply on the hot path of a caller that reads its own replies.
        boolean mark = false;
        synchronized (lock) {
            p = findPending(msgId);
            if (p != null && p.cmdCode == cmd && !p.isDone()) {
                mark = p.waiter != Thread.currentThread();
                if (mark) {
                    p.receiving = true;
                }
            } else {
                p = null;
            }
        }
        long size = msgSize - Header.SIZE;
        if (p == null) {
            skipBody(size, fds, lim);
            unexpectedReply(new Header(msgId, cmd, msgSize, flags, error));
            return false;
        }
        try {
            long room = p.replyBuffer == null ? lim.maxMessageSize() - Header.SIZE
                    : p.replyBuffer.byteSize() + (p.replyData != null ? p.replyData.byteSize() : 0);
            VfioUserException refused = refusedReply(p.command, msgId, size, flags, error, room, fds, lim);
            if (refused != null) {
                p.fail(refused);
                return false;
            }
            MemorySegment body;
            if (p.replyData != null) {
                body = readSplitBody(p, size, fds);
            } else {
                body = p.replyBuffer != null
                        ? (p.replyBuffer.byteSize() == size ? p.replyBuffer : p.replyBuffer.asSlice(0, size))
                        : Arena.ofAuto().allocate(Math.max(size, 1), 8).asSlice(0, size);
                if (size > 0) {
                    in.readBody(body, fds);
                }
            }
            if (fds.isEmpty() && !fds.truncated()) {
                p.replied(msgId, cmd, msgSize, flags, error, body, FdList.none());
                return false; // the reader keeps its (empty) list for the next message
            }
            p.replied(msgId, cmd, msgSize, flags, error, body, fds);
            return true;
        } finally {
            if (mark) {
                clearReceiving(p);
            }
        }
    }

    /**
     * An error reply, or one that does not fit {@code room} bytes or carried too many fds: skips its body, closes
     * its fds and returns the failure of its call; null for a reply to take in.
     */
    private VfioUserException refusedReply(Command command, int msgId, long size, int flags, int error, long room,
                                           FdList fds, TransportLimits lim) throws IOException {
        if ((flags & Header.FLAG_ERROR) != 0) {
            // Error replies should be header-only, but libvfio-user sometimes attaches a payload (§3.2).
            skipBody(size, fds, lim);
            fds.close();
            return new VfioUserException(Errno.fromWire(error),
                    name + ": " + command + " msg_id " + msgId + " failed (peer errno " + error + ")");
        }
        if (size > room || fds.truncated()) {
            skipBody(size, fds, lim);
            fds.close();
            return new VfioUserException(Errno.E2BIG, name + ": " + command + " reply " + (fds.truncated()
                    ? "carried too many fds" : "of " + size + " bytes exceeds the " + room + "-byte limit"));
        }
        return null;
    }

    /** The reply to the lone call ({@link #callAlone}): into its buffer; fds that came with it are closed. */
    private void readLoneReply(int msgId, long msgSize, int flags, int error, FdList fds, TransportLimits lim)
            throws IOException {
        long size = msgSize - Header.SIZE;
        MemorySegment buffer = loneBuffer;
        VfioUserException refused = refusedReply(loneCommand, msgId, size, flags, error, buffer.byteSize(), fds, lim);
        if (refused != null) {
            loneFailure = refused;
            return;
        }
        if (size > 0) {
            in.readBody(size == buffer.byteSize() ? buffer : buffer.asSlice(0, size), fds);
        }
        loneSize = size; // the reader closes the fds that came with it, as callInto does
    }

    private void clearReceiving(Call p) {
        synchronized (lock) {
            p.receiving = false;
            if (receivingWaiters > 0) {
                lock.notifyAll(); // a VM call: only when a timed-out caller waits (see timedOut)
            }
        }
    }

    /**
     * The body of a reply to {@link #callInto(Request, MemorySegment, MemorySegment)}: its first bytes into the
     * call's reply buffer, the rest into its data buffer (sizes repeat: no slices then). Returns the part in the
     * reply buffer; the call keeps how many bytes went to the data buffer.
     */
    private MemorySegment readSplitBody(Call p, long size, FdList fds) throws IOException {
        MemorySegment fixed = p.replyBuffer;
        long inFixed = Math.min(size, fixed.byteSize());
        MemorySegment head = inFixed == fixed.byteSize() ? fixed : fixed.asSlice(0, inFixed);
        if (inFixed > 0) {
            in.readBody(head, fds);
        }
        long inData = size - inFixed;
        if (inData > 0) {
            in.readBody(inData == p.replyData.byteSize() ? p.replyData : p.replyData.asSlice(0, inData), fds);
        }
        p.replyDataBytes = inData;
        return head;
    }

    /**
     * A reply that matches no pending call. A late reply to a call that timed out is dropped quietly. Any
     * other one is a protocol error: replies come in command order on a socket (§3.2), so it stood in for the
     * reply to our oldest pending call, which fails now with EPROTO instead of waiting for its timeout.
     */
    private void unexpectedReply(Header header) {
        Call oldest = null;
        synchronized (lock) {
            if (abandoned.remove(header.msgId())) {
                log.debug("{}: discarding late {}", name, header);
                return;
            }
            if (loneMsgId >= 0 && loneSize < 0 && loneFailure == null) {
                // The lone call is older than any in the list (the list was empty when it was registered).
                log.warn("{}: discarding unexpected {}", name, header);
                loneFailure = new VfioUserException(Errno.EPROTO, name + ": expected the reply to " + loneCommand
                        + " msg_id " + loneMsgId + ", got " + header);
                return;
            }
            for (Call p = pendingHead; p != null; p = p.next) {
                if (!p.isDone() && !p.receiving) {
                    oldest = p;
                    break;
                }
            }
        }
        log.warn("{}: discarding unexpected {}", name, header);
        if (oldest != null) {
            oldest.fail(new VfioUserException(Errno.EPROTO, name + ": expected the reply to "
                    + oldest.command + " msg_id " + oldest.msgId + ", got " + header));
        }
    }

    private void dispatch(Header header, MemorySegment payload, FdList fds) throws IOException {
        dispatch(header.msgId(), header.cmd(), header.msgSize(), header.flags(), payload, fds);
    }

    /**
     * A command whose data the handler may place ({@link CommandHandler#place}): the fixed part into the
     * receive buffer, then the data where the handler says, or into the buffer after the fixed part.
     */
    private void readPlaced(int msgId, int cmd, long msgSize, int flags, int size, int placedAt, FdList fds)
            throws IOException {
        // No scatter read into the receive buffer for the next command: this kind's data goes elsewhere.
        lastCommandBodySize = 0;
        MemorySegment body = receiveBuffer(size);
        if (placedFixed == null || placedFixed.address() != body.address() || placedFixed.byteSize() != placedAt) {
            placedFixed = body.asSlice(0, placedAt);
        }
        in.readBody(placedFixed, fds);
        CommandHandler.Placement placement;
        try {
            placement = handler.place(cmd, placedFixed, size - placedAt);
        } catch (RuntimeException e) {
            skipBody(size - placedAt, fds, limits); // nothing placed: the data is dropped, the command answered
            Errno error = errnoOf(e, msgId, cmd, msgSize, flags);
            fds.close();
            spareFds = fds;
            sendOutcome(msgId, cmd, msgSize, flags, null, error);
            return;
        }
        if (placement == null) {
            in.readBody(body.asSlice(placedAt), fds);
            dispatch(msgId, cmd, msgSize, flags, body, fds);
            return;
        }
        MemorySegment dst = placement.destination();
        boolean received = false;
        try {
            if (dst.byteSize() != size - placedAt) {
                throw new IllegalStateException(name + ": a placement of " + dst.byteSize() + " bytes for "
                        + (size - placedAt) + " bytes of data");
            }
            in.readBody(dst, fds);
            received = true;
        } finally {
            if (!received) {
                placement.abandoned();
            }
        }
        dispatch(msgId, cmd, msgSize, flags, null, fds, placement);
    }

    private void dispatch(int msgId, int cmd, long msgSize, int flags, MemorySegment payload, FdList fds)
            throws IOException {
        dispatch(msgId, cmd, msgSize, flags, payload, fds, null);
    }

    /** Serves a command (with the handler, or a placement's {@code received}) and sends its reply. */
    private void dispatch(int msgId, int cmd, long msgSize, int flags, MemorySegment payload, FdList fds,
                          CommandHandler.Placement placed) throws IOException {
        Response response = null;
        Errno error = null;
        inlineDepth++;
        try {
            response = placed != null ? placed.received() : handler.handle(msgId, cmd, msgSize, flags, payload, fds);
        } catch (RuntimeException e) {
            error = errnoOf(e, msgId, cmd, msgSize, flags);
        } finally {
            inlineDepth--;
            fds.close();
            spareFds = fds; // empty again: reused for the next message
        }
        sendOutcome(msgId, cmd, msgSize, flags, response, error);
    }

    /** The errno a handler's failure is answered with: a {@link VfioUserException}'s own, else EIO (logged). */
    private Errno errnoOf(RuntimeException e, int msgId, int cmd, long msgSize, int flags) {
        if (e instanceof VfioUserException v) {
            if (log.isDebugEnabled()) {
                log.debug("{}: {} -> {}", name, new Header(msgId, cmd, msgSize, flags, 0), v.getMessage());
            }
            return v.errno();
        }
        log.error("{}: handler failed on {}", name, new Header(msgId, cmd, msgSize, flags, 0), e);
        return Errno.EIO;
    }

    /** Sends a served command's reply: {@code error}'s, else {@code response} (unless No_reply). */
    private void sendOutcome(int msgId, int cmd, long msgSize, int flags, Response response, Errno error)
            throws IOException {
        try {
            if ((flags & Header.FLAG_NO_REPLY) != 0) {
                return;
            }
            if (error != null) {
                sendError(msgId, cmd, error);
            } else if (response == null) {
                log.error("{}: handler returned no response to {}", name, new Header(msgId, cmd, msgSize, flags, 0));
                sendError(msgId, cmd, Errno.EIO);
            } else if (!(response.coalescible() && hold(msgId, cmd, response.reply()))) {
                sendReply(msgId, cmd, response.reply(), response.fds());
            }
        } finally {
            if (response != null) {
                response.afterSend().run();
            }
        }
    }

    /**
     * Ends the connection once the command being handled has been answered (e.g. a failed VERSION
     * negotiation: libvfio-user replies with an error, then disconnects). Call from a handler.
     */
    public void endAfterReply() {
        endAfterReply = true;
    }

    // ------------------------------------------------------------------------------------------------
    // Calls

    /** Sends a command and waits for its reply; the reply body is allocated for it. */
    public ReceivedReply call(Request request, int... fds) throws IOException {
        return call(request, fds, null);
    }

    /**
     * Sends a command and waits (up to the reply timeout) for its success reply.
     *
     * @param replyBuffer where the reply body is read to, or {@code null} to allocate one; a reply larger than
     *                    the buffer fails with E2BIG (nothing is written beyond it)
     * @throws VfioUserException    the peer answered with an error (its errno), or the reply was oversized
     * @throws ReplyTimeoutException no reply in time
     * @throws ConnectionClosedException the connection ended first
     */
    public ReceivedReply call(Request request, int[] fds, MemorySegment replyBuffer) throws IOException {
        Call p = register(request.command(), replyBuffer);
        try {
            send(p.msgId, p.cmdCode, request, fds, false);
            return await(p).result();
        } finally {
            synchronized (lock) {
                unlink(p);
                if (p.isDone() && !p.receiving && !p.abandoned) {
                    recycle(p); // the reader is done with it
                }
            }
        }
    }

    /**
     * As {@link #call(Request, int[], MemorySegment)} without fds, for the hot paths: the reply body is read into
     * {@code replyBuffer} (its first bytes) and only its size is returned, so no record is created per call; fds
     * that come with the reply are closed.
     *
     * @return the size of the reply body, at the start of {@code replyBuffer}
     */
    public long callInto(Request request, MemorySegment replyBuffer) throws IOException {
        if (callerReads && replyBuffer.byteSize() < MessageReader.SCATTER_MIN) {
            long size = callAlone(request, replyBuffer);
            if (size >= 0) {
                return size;
            }
        }
        return finishInto(startInto(request, replyBuffer));
    }

    /**
     * Caller-reads mode, a small reply, no other call in flight (a register access, the common case): the call
     * without the general machinery. This thread takes the reads first, so it is the one that will read its
     * reply; the call is then not registered in the list of calls in flight but kept in the lone* fields, which
     * only this thread looks at until it is done: no call record, no lock around the reply, no hand-over. The
     * reads go through {@link #readMessage} as usual, so whatever comes before the reply (another thread's reply,
     * a command of the peer) is handled as it would be. Another thread's call started meanwhile goes the general
     * way (it finds the reads taken) and gets its reply from this reader, or reads on itself once this call is
     * done. A REGION_READ round trip gets 0.3-0.7 % shorter (A/B in one pinned process pair, the two ways
     * alternating in blocks of 20,000 against the raw ping-pong; a client that skipped all checks and locks
     * would gain about 0.9 %).
     *
     * @return the size of the reply body, or -1 if the call cannot go this way (nothing was sent)
     */
    private long callAlone(Request request, MemorySegment replyBuffer) throws IOException {
        if (!readLock.tryLock()) {
            return -1; // another caller reads: the general way, which waits for it
        }
        try {
            if (loneMsgId >= 0 || (readsPaused && readHolder == Thread.currentThread())) {
                return -1; // from a command handler run by the lone call's reads; or paused (the general way fails it)
            }
            Command command = request.command();
            int msgId;
            synchronized (lock) {
                if (pendingHead != null) {
                    return -1; // not alone: the replies of the calls in flight come first
                }
                checkOpen();
                msgId = nextMsgId();
                msgIdsInUse[msgId >>> 6] |= 1L << msgId;
            }
            loneMsgId = msgId;
            if (loneCommand != command) { // calls repeat: no reference store per call
                loneCommand = command;
                loneCmd = command.code();
            }
            loneBuffer = replyBuffer;
            loneSize = -1;
            loneFailure = null;
            aloneCount++;
            boolean timedOut = false;
            try {
                send(msgId, loneCmd, request, NO_FDS, false);
                timedOut = !awaitAlone();
            } finally {
                loneMsgId = -1;
                loneBuffer = null;
                synchronized (lock) {
                    msgIdsInUse[msgId >>> 6] &= ~(1L << msgId);
                    if (timedOut) {
                        abandon(msgId); // a late reply is dropped quietly
                    }
                }
            }
            if (loneSize >= 0) {
                return loneSize;
            }
            if (loneFailure != null) {
                throw rethrow(loneFailure);
            }
            if (!ended) {
                throw new ReplyTimeoutException(name + ": no reply to " + command + " msg_id " + msgId
                        + " within " + limits.replyTimeout().toMillis() + " ms");
            }
            IOException cause;
            synchronized (lock) {
                cause = endCause;
            }
            throw rethrow(cause != null ? cause : new ConnectionClosedException(name + ": connection is closed"));
        } finally {
            if (closeRequested) {
                closeSocket();
            }
            readLock.unlock();
            wakeWaiters(); // another caller may have to take over reading
        }
    }

    /**
     * Reads until the lone call is answered (or failed) or the connection ends; false if it timed out: the
     * receive timeout expired with no message begun (the reply timeout, {@link #startCallerReads}), or messages
     * other than the reply kept coming for longer than the reply timeout.
     */
    private boolean awaitAlone() {
        long deadline = 0;
        while (loneSize < 0 && loneFailure == null && !ended) {
            if (!readOneAsCaller()) {
                return false;
            }
            if (loneSize >= 0 || loneFailure != null) {
                break;
            }
            long now = System.nanoTime(); // only when something else came first: no clock read per call
            if (deadline == 0) {
                deadline = now + limits.replyTimeout().toNanos();
            } else if (now - deadline >= 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * As {@link #callInto(Request, MemorySegment)} for a reply made of a fixed part and data that go to different
     * places: the body's first {@code replyFixed.byteSize()} bytes are read into {@code replyFixed}, the rest into
     * {@code replyData} (e.g. DMA_READ data straight into the caller's buffer: the reading caller receives it
     * there with the header, without a copy). A reply larger than both together fails with E2BIG.
     *
     * @return the size of the reply body: bytes in {@code replyFixed}, then in {@code replyData}
     */
    public long callInto(Request request, MemorySegment replyFixed, MemorySegment replyData) throws IOException {
        java.util.Objects.requireNonNull(replyFixed, "replyFixed");
        java.util.Objects.requireNonNull(replyData, "replyData");
        if (!replyData.isNative() || replyData.isReadOnly()) {
            throw new IllegalArgumentException("reply data needs a writable native segment, not " + replyData);
        }
        return finishInto(start(request, replyFixed, replyData));
    }

    /**
     * Sends a command without waiting for its reply, so that several can be in flight (a pipeline: the peer
     * answers them in order, §3.2). The reply body will be read into {@code replyBuffer}, which must stay
     * alive until {@link #finishInto} returned for this call. Every started call must be finished, also on
     * an error path; a call not finished keeps its msg_id and buffer.
     */
    public Call startInto(Request request, MemorySegment replyBuffer) throws IOException {
        java.util.Objects.requireNonNull(replyBuffer, "replyBuffer");
        return start(request, replyBuffer, null);
    }

    /** Registers a call (its reply into {@code replyBuffer}, then {@code replyData} if given) and sends it. */
    private Call start(Request request, MemorySegment replyBuffer, MemorySegment replyData) throws IOException {
        Call p = register(request.command(), replyBuffer, replyData);
        boolean sent = false;
        try {
            send(p.msgId, p.cmdCode, request, NO_FDS, false);
            sent = true;
            return p;
        } finally {
            if (!sent) {
                synchronized (lock) {
                    unlink(p);
                }
            }
        }
    }

    /**
     * As {@link #startInto} for {@code count} copies of a request without a data tail, sent with one sendmsg
     * (the peer may take them in with one receive, too): call {@code i} gets {@code replyBuffers[i]} and is
     * stored in {@code calls[i]}.
     */
    public void startInto(Request request, MemorySegment[] replyBuffers, Call[] calls, int count) throws IOException {
        if (count < 1) {
            throw new IllegalArgumentException("a batch of " + count + " " + request.command() + " requests");
        }
        startBatch(null, null, request, replyBuffers, calls, count);
    }

    /**
     * As {@link #startInto(Request, MemorySegment[], Call[], int)} with another request in front: {@code first}
     * (its reply into {@code firstBuffer}), then {@code count} (0 or more) copies of {@code request}, all with
     * one sendmsg. Replies come in that order (§3.2), so the first one can steer what is asked next while the
     * others are on their way, without a round trip of its own (e.g. a stream's length estimate sent along with
     * the stream's first reads).
     *
     * @return the call of {@code first}
     */
    public Call startInto(Request first, MemorySegment firstBuffer, Request request, MemorySegment[] replyBuffers,
                          Call[] calls, int count) throws IOException {
        java.util.Objects.requireNonNull(firstBuffer, "firstBuffer");
        if (count < 0) {
            throw new IllegalArgumentException("a batch of " + count + " " + request.command() + " requests");
        }
        return startBatch(first, firstBuffer, request, replyBuffers, calls, count);
    }

    /** Registers {@code first} (if not null) and {@code count} copies of {@code request}, then sends them at once. */
    private Call startBatch(Request first, MemorySegment firstBuffer, Request request, MemorySegment[] replyBuffers,
                            Call[] calls, int count) throws IOException {
        int lead = first == null ? 0 : Header.SIZE + first.fixedSize();
        int one = Header.SIZE + request.fixedSize();
        if ((first != null && first.data().byteSize() != 0) || request.data().byteSize() != 0
                || lead + (long) one * count > SEND_SCRATCH) {
            throw new IllegalArgumentException("a batch of " + count + " " + request.command() + " requests of "
                    + one + " bytes each" + (first == null ? "" : " after a " + first.command() + " request")
                    + " (no data tail, " + SEND_SCRATCH + " bytes at most)");
        }
        Command command = request.command();
        for (int i = 0; i < count; i++) {
            java.util.Objects.requireNonNull(replyBuffers[i], "replyBuffers");
        }
        if (first != null) {
            checkNotPaused(first.command());
        }
        checkNotPaused(command);
        Call firstCall = null;
        int registered = 0;
        boolean sent = false;
        try {
            synchronized (lock) { // one lock for the batch; first registered first: its reply comes first
                checkOpen();
                if (first != null) {
                    firstCall = registerLocked(first.command(), firstBuffer);
                }
                for (; registered < count; registered++) {
                    calls[registered] = registerLocked(command, replyBuffers[registered]);
                }
            }
            sendBatch(first, firstCall, lead, request, calls, count, one);
            sent = true;
            return firstCall;
        } finally {
            if (!sent) {
                synchronized (lock) {
                    if (firstCall != null) {
                        unlink(firstCall);
                    }
                    for (int i = 0; i < registered; i++) {
                        unlink(calls[i]);
                        calls[i] = null;
                    }
                }
            }
        }
    }

    /**
     * Encodes {@code first} (if any, {@code lead} bytes) and {@code count} requests for the registered
     * {@code calls} back to back and sends them at once.
     */
    private void sendBatch(Request first, Call firstCall, int lead, Request request, Call[] calls, int count, int one)
            throws IOException {
        sendLock.lock();
        try {
            if (first != null) {
                MemorySegment at = sendScratch.asSlice(0, lead);
                Header.encode(at, firstCall.msgId, firstCall.cmdCode, lead, Header.TYPE_COMMAND, 0);
                first.encodeFixed(at.asSlice(Header.SIZE));
            }
            for (int i = 0; i < count; i++) {
                MemorySegment at = sendScratch.asSlice(lead + (long) one * i, one);
                Header.encode(at, calls[i].msgId, calls[i].cmdCode, one, Header.TYPE_COMMAND, 0);
                request.encodeFixed(at.asSlice(Header.SIZE));
            }
            long total = lead + (long) one * count;
            if (batchSlice == null || batchSlice.byteSize() != total) {
                batchSlice = sendScratch.asSlice(0, total);
            }
            sendAfterHeld(NO_FDS, batchSlice, MemorySegment.NULL);
        } finally {
            sendLock.unlock();
        }
    }

    /**
     * Waits for the reply to a call of {@link #startInto} (see {@link #callInto} for the outcome). Once this
     * returns or throws, nothing more is written to the call's reply buffer and {@code call} must not be used
     * again.
     *
     * @return the size of the reply body, at the start of the call's reply buffer
     */
    public long finishInto(Call call) throws IOException {
        try {
            return await(call).bodySize();
        } finally {
            synchronized (lock) {
                unlink(call);
                if (call.isDone() && !call.receiving && !call.abandoned) {
                    recycle(call); // the reader is done with it
                }
            }
        }
    }

    /** Sends a command with No_reply (e.g. a posted REGION_WRITE): nothing comes back, not even an error. */
    public void post(Request request, int... fds) throws IOException {
        int msgId;
        synchronized (lock) {
            checkOpen();
            msgId = nextMsgId();
        }
        send(msgId, request.command().code(), request, fds, true);
    }

    private Call register(Command command, MemorySegment replyBuffer) throws IOException {
        return register(command, replyBuffer, null);
    }

    private Call register(Command command, MemorySegment replyBuffer, MemorySegment replyData) throws IOException {
        checkNotPaused(command);
        synchronized (lock) {
            checkOpen();
            Call p = registerLocked(command, replyBuffer);
            if (replyData != null) { // null already (reset): no reference store per call
                p.replyData = replyData;
                if (!p.large) {
                    p.large = true;
                    largeCalls++;
                }
            }
            return p;
        }
    }

    private void checkNotPaused(Command command) {
        if (readsPaused && readHolder == Thread.currentThread()) {
            // Checked before anything is sent: waiting for this reply would read the holder's next reply into
            // the buffer it is still using.
            throw new IllegalStateException(name + ": " + command + " while this thread's read hold is paused");
        }
    }

    /** Links a new call (caller holds lock and checked that the connection is open). */
    private Call registerLocked(Command command, MemorySegment replyBuffer) {
        Call p = spareCount > 0 ? spareCalls[--spareCount] : new Call();
        spareCalls[spareCount] = null;
        p.start(nextMsgId(), command, replyBuffer, Thread.currentThread());
        if (replyBuffer != null && replyBuffer.byteSize() >= MessageReader.SCATTER_MIN) {
            p.large = true;
            largeCalls++;
        }
        p.prev = pendingTail;
        if (pendingTail != null) {
            pendingTail.next = p;
        } else {
            pendingHead = p;
        }
        pendingTail = p;
        p.linked = true;
        msgIdsInUse[p.msgId >>> 6] |= 1L << p.msgId;
        return p;
    }

    /** Keeps a finished call for reuse (caller holds lock): no allocation per call, also with a pipeline. */
    private void recycle(Call p) {
        p.reset();
        if (spareCount < spareCalls.length) {
            spareCalls[spareCount++] = p;
        }
    }

    private void checkOpen() throws ConnectionClosedException {
        if (ended || closeRequested) {
            throw new ConnectionClosedException(name + ": connection is closed"
                    + (endCause != null ? " (" + endCause.getMessage() + ")" : ""), endCause);
        }
    }

    private int nextMsgId() {
        // Unique among our own in-flight commands (§3.2 recommendation); 16-bit wrap. A bit per msg_id in use,
        // not a walk of the calls in flight per new call (16 of them for each of a pipeline's calls).
        do {
            lastMsgId = (lastMsgId + 1) & 0xFFFF;
        } while ((msgIdsInUse[lastMsgId >>> 6] & (1L << lastMsgId)) != 0);
        return lastMsgId;
    }

    /** The call in flight with this msg_id, or null (caller holds lock). */
    private Call findPending(int msgId) {
        for (Call p = pendingHead; p != null; p = p.next) {
            if (p.msgId == msgId) {
                return p;
            }
        }
        return null;
    }

    /** Removes a call from the in-flight list (caller holds lock); idempotent. */
    private void unlink(Call p) {
        if (!p.linked) {
            return;
        }
        if (p.prev != null) {
            p.prev.next = p.next;
        } else {
            pendingHead = p.next;
        }
        if (p.next != null) {
            p.next.prev = p.prev;
        } else {
            pendingTail = p.prev;
        }
        p.prev = null;
        p.next = null;
        p.linked = false;
        if (p.large) {
            p.large = false;
            largeCalls--;
        }
        msgIdsInUse[p.msgId >>> 6] &= ~(1L << p.msgId);
    }

    private Call await(Call p) throws IOException {
        Duration timeout = limits.replyTimeout();
        if (callerReads) {
            return awaitCallerReads(p, timeout);
        }
        if (Thread.currentThread() == reader) {
            return awaitInline(p, timeout);
        }
        if (reader == null) {
            throw new IllegalStateException(name + ": call() needs a reader: start() or serve() the connection first");
        }
        if (!p.await(timeout.toNanos())) {
            if (Thread.interrupted()) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException(name + ": interrupted waiting for " + p.command);
            }
            abandon(p);
            return timedOut(p, timeout);
        }
        return p;
    }

    private Call awaitInline(Call p, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!p.isDone()) {
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            if (left <= 0 || !in.awaitReadable(left)) {
                if (!p.isDone()) {
                    abandon(p);
                    throw new ReplyTimeoutException(name + ": no reply to " + p.command + " msg_id " + p.msgId
                            + " within " + timeout.toMillis() + " ms");
                }
                break;
            }
            if (!readMessage(p)) {
                end(new ConnectionClosedException(name + ": peer closed the connection"));
            }
        }
        return p;
    }

    /**
     * Caller-reads mode: reserves reading the socket to the calling thread until the returned hold is closed.
     * Replies are then read only while this thread waits for one of its calls ({@link #finishInto},
     * {@link #call}), each time up to that call's reply (replies come in command order, §3.2): a reply never
     * lands in its buffer while this thread is still busy with an earlier one. So a pipeline of calls whose
     * replies are consumed one at a time, in order, may share one reply buffer instead of a buffer per call in
     * flight (less memory to keep in cache while streaming). Replies to other threads' calls that come before
     * the holder's are delivered as usual; those that come after wait until the hold is closed (their reply
     * timeout runs meanwhile).
     *
     * <p>While the holder consumes a reply, it {@link ReadHold#pause pauses} the hold: a call it makes on this
     * connection meanwhile (e.g. from a callback) fails with {@link IllegalStateException} before anything is
     * sent, as waiting for its reply would read the next pipelined reply into the buffer in use.
     *
     * @return the hold, or {@code null} if a reader thread reads the socket (replies are then read as soon as
     *         they come, and each call in flight needs a buffer of its own)
     * @throws IllegalStateException this thread holds the reads already
     */
    public ReadHold holdReads() {
        if (!callerReads) {
            return null;
        }
        if (readHolder == Thread.currentThread()) {
            throw new IllegalStateException(name + ": this thread holds the reads already");
        }
        readLock.lock(); // waits for a caller reading right now (until its reply is in)
        readHolder = Thread.currentThread();
        return new ReadHold();
    }

    /** See {@link #holdReads}. Used by the thread that took it; closing it twice is harmless. */
    public final class ReadHold implements AutoCloseable {
        private boolean closed;

        private ReadHold() {
        }

        /** The holder is about to consume a reply: until {@link #resume}, its calls on this connection fail. */
        public void pause() {
            readsPaused = true;
        }

        /** Ends a {@link #pause}. */
        public void resume() {
            readsPaused = false;
        }

        /** Lets other threads read again (one of them takes over if its reply is still to come). */
        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            readsPaused = false;
            readHolder = null;
            try {
                if (closeRequested) {
                    closeSocket(); // close() came while the socket was held: as a reading caller would
                }
            } finally {
                readLock.unlock();
                wakeWaiters();
            }
        }
    }

    /** Caller-reads mode: read the socket until our reply is in, unless another caller is reading already. */
    private Call awaitCallerReads(Call p, Duration timeout) throws IOException {
        // Bounded by the reply timeout, or by the socket's receive timeout (the same duration, UnixSocket
        // #receiveTimeout) counted from when this thread began reading: with several callers a call may wait up
        // to twice the timeout. The clock is read only from the second pass on: the first read is bounded by the
        // receive timeout (two clock reads cost ~0.4 % of a round trip here).
        long deadline = 0;
        boolean receiveTimedOut = false;
        for (boolean first = true; !p.isDone(); first = false) {
            long left = Long.MAX_VALUE;
            if (!first) {
                if (deadline == 0) {
                    deadline = System.nanoTime() + timeout.toNanos();
                }
                left = deadline - System.nanoTime();
            }
            if (left <= 0 || receiveTimedOut) {
                abandon(p);
                return timedOut(p, timeout);
            }
            if (readLock.tryLock()) {
                try {
                    while (!p.isDone() && !isEndedNoProbe()) {
                        if (!readOneAsCaller()) {
                            receiveTimedOut = true; // the receive timeout expired with no message begun
                            break;
                        }
                    }
                } finally {
                    if (closeRequested) {
                        closeSocket();
                    }
                    readLock.unlock();
                    wakeWaiters(); // another caller may have to take over reading
                }
            } else {
                waitingCallers.incrementAndGet(); // before looking again: see wakeWaiters
                try {
                    if (!readLock.isLocked()) {
                        continue; // the reader is gone meanwhile: try to take over at once
                    }
                    p.await(Math.min(left, TimeUnit.MILLISECONDS.toNanos(1)));
                } finally {
                    waitingCallers.decrementAndGet();
                }
            }
        }
        return p;
    }

    /** Reads one message as the reading caller; false if the receive timed out before a message began. */
    private boolean readOneAsCaller() {
        try {
            if (!readMessage(null)) {
                endAsCaller(new ConnectionClosedException(name + ": peer closed the connection"));
            }
        } catch (ReceiveTimedOut e) {
            return false;
        } catch (IOException e) {
            endAsCaller(e);
        } catch (RuntimeException e) {
            log.error("{}: reading failed", name, e);
            endAsCaller(new ConnectionClosedException(name + ": reading failed: " + e, e));
        }
        return true;
    }

    private void endAsCaller(IOException cause) {
        end(cause);
        CommandHandler h;
        synchronized (lock) {
            if (closedCallbackDone) {
                return;
            }
            closedCallbackDone = true;
            h = handler;
        }
        if (h != null) {
            try {
                h.closed(cause instanceof ConnectionClosedException && cause.getCause() == null ? null : cause);
            } catch (RuntimeException e) {
                log.warn("{}: closed() callback failed", name, e);
            }
        }
    }

    private void wakeWaiters() {
        if (waitingCallers.get() == 0) {
            // Nobody parked: a caller counts itself before its last look at the lock, and this runs after the
            // unlock, so one that failed to take the lock is seen here (both are sequentially consistent).
            return;
        }
        Thread self = Thread.currentThread(); // not parked: it is here (its pipelined calls need no unpark)
        synchronized (lock) {
            for (Call q = pendingHead; q != null; q = q.next) {
                Thread w = q.waiter;
                if (w != null && w != self && !q.isDone()) {
                    java.util.concurrent.locks.LockSupport.unpark(w);
                }
            }
        }
    }

    private void abandon(Call p) {
        synchronized (lock) {
            p.abandoned = true;
            abandon(p.msgId);
        }
    }

    /** Remembers a msg_id whose caller gave up, so that its late reply is dropped quietly (caller holds lock). */
    private void abandon(int msgId) {
        abandoned.add(msgId);
        if (abandoned.size() > 64) {
            abandoned.remove(abandoned.iterator().next());
        }
    }

    private Call timedOut(Call p, Duration timeout) throws IOException {
        synchronized (lock) {
            if (p.receiving) {
                // The reply is being read into the caller's buffer right now. Returning would hand the buffer
                // back while it is written to; a peer stalling mid-message has lost framing anyway: close.
                closeRequested = true;
                shutdownQuietly();
                receivingWaiters++;
                try {
                    while (p.receiving) {
                        lock.wait();
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } finally {
                    receivingWaiters--;
                }
            }
        }
        if (p.isDone()) {
            return p;
        }
        throw new ReplyTimeoutException(name + ": no reply to " + p.command + " msg_id " + p.msgId + " within "
                + timeout.toMillis() + " ms");
    }

    private static IOException rethrow(Throwable cause) throws IOException {
        if (cause instanceof VfioUserException v) {
            // Re-create so the stack trace shows the caller.
            throw new VfioUserException(v.errno(), v.detail(), v);
        }
        if (cause instanceof IOException io) {
            throw new ConnectionClosedException(io.getMessage(), io);
        }
        throw new IOException(cause);
    }

    // ------------------------------------------------------------------------------------------------
    // Sending

    /** Sends a success reply to command {@code msgId}/{@code cmd}. */
    public void sendReply(int msgId, int cmd, Reply reply, int... fds) throws IOException {
        sendMessage(msgId, cmd, Header.TYPE_REPLY, reply.fixedSize(), reply, reply.data(), fds);
    }

    /** Sends a header-only error reply. */
    public void sendError(int msgId, int cmd, Errno errno) throws IOException {
        sendLock.lock();
        try {
            Header.encode(sendScratch, msgId, cmd, Header.SIZE, Header.TYPE_REPLY | Header.FLAG_ERROR, errno.value());
            sendAfterHeld(NO_FDS, sendScratch.asSlice(0, Header.SIZE), MemorySegment.NULL);
        } finally {
            sendLock.unlock();
        }
    }

    /**
     * Holds back a coalescible reply, to go out with the next one(s) in one sendmsg (one wake-up of the peer for
     * several replies). One with a data tail is held only when the next command is staged whole (it is handled
     * at once), and nothing is held after it; data-less ones (e.g. MIG_DATA_WRITE's) pile up as long as the next
     * command has begun to arrive: the reader loop sends them before it would wait for the peer
     * ({@link #nextMessageReady}). Reader thread only.
     *
     * @return false if it was not held (send it now)
     */
    private boolean hold(int msgId, int cmd, Reply reply) {
        MemorySegment data = reply.data();
        int fixed = reply.fixedSize();
        int one = Header.SIZE + fixed;
        boolean withData = data.byteSize() > 0;
        if (Thread.currentThread() != reader || one > HOLD_STAGE || (withData
                && (data.byteSize() > HOLD_DATA_MAX || !data.isNative() || !in.hasCompleteMessage()))) {
            return false;
        }
        sendLock.lock();
        try {
            int at = heldHead == null ? 0 : heldBytes;
            if (at > 0 && (heldData.byteSize() > 0 || at + one > HELD_SCRATCH)) {
                return false; // nothing goes after a held data tail; full
            }
            long msgSize = Header.SIZE + (long) fixed + data.byteSize();
            if (heldSlice.byteSize() != one) { // sizes repeat: no slices per held reply
                heldSlice = holdStage.asSlice(0, one);
                heldFixed = heldSlice.asSlice(Header.SIZE);
            }
            Header.encode(heldSlice, msgId, cmd, msgSize, Header.TYPE_REPLY, 0);
            reply.encodeFixed(heldFixed);
            MemorySegment.copy(holdStage, 0, heldScratch, at, one);
            heldBytes = at + one;
            MemorySegment head = heldViews[heldBytes];
            if (head == null) {
                head = heldViews[heldBytes] = heldScratch.asSlice(0, heldBytes); // made once per length
            }
            heldHead = head;
            heldData = withData ? data : MemorySegment.NULL; // an empty tail may be a heap segment
            heldCount++;
            return true;
        } finally {
            sendLock.unlock();
        }
    }

    /**
     * Reader loop, replies held: whether the next message can be read without waiting for the peer (then the
     * held replies may wait for its reply). After a held data tail, only a command staged whole counts; after
     * data-less replies, any byte of the next one (a command sent is sent whole: the peer does not wait for
     * our replies to finish it); looking for it receives it, as {@link #readMessage} would (one system call
     * where poll(2) and then the receive were two).
     */
    private boolean nextMessageReady() throws IOException {
        if (in.hasCompleteMessage()) {
            return true;
        }
        MemorySegment data = heldData;
        if (data != null && data.byteSize() != 0) {
            return false;
        }
        MemorySegment likely = likelyBody(null);
        return in.receiveNow(likely, likelyPrefix);
    }

    /** Calls that went the lone call's way ({@link #callAlone}); read it after those calls returned (for tests). */
    long aloneCalls() {
        return aloneCount;
    }

    /** Body bytes the reads of this connection received straight into their destination (for tests). */
    long scatteredBytes() {
        return in.scatteredBytes();
    }

    /** How many replies were held back and sent along with a later message (for tests). */
    long heldCount() {
        sendLock.lock();
        try {
            return heldCount;
        } finally {
            sendLock.unlock();
        }
    }

    /**
     * Whether a reply is held back right now (see {@link Response#coalescible}). On the reader thread, inside a
     * handler: the held reply is the previous coalescible one, so the handler must not reuse its buffers.
     */
    public boolean hasHeldReply() {
        return heldHead != null;
    }

    /** Sends the held-back reply, if any. */
    private void flushHeld() throws IOException {
        if (heldHead == null) {
            return; // only the reader thread sets it: nothing held, no lock needed
        }
        sendLock.lock();
        try {
            if (heldHead != null) {
                sendAfterHeld(NO_FDS, MemorySegment.NULL, MemorySegment.NULL);
            }
        } finally {
            sendLock.unlock();
        }
    }

    /**
     * Sends {@code head} and {@code data} (either may be empty) preceded by the held-back reply, if any: with
     * one sendmsg, unless fds go along (they travel with a sendmsg's first byte, so they get their own).
     * Caller holds sendLock.
     */
    private void sendAfterHeld(int[] fds, MemorySegment head, MemorySegment data) throws IOException {
        MemorySegment heldH = heldHead;
        if (heldH == null) {
            socket.send(fds, head, data); // the common case: nothing held, no volatile write
            return;
        }
        MemorySegment heldD = heldData;
        heldHead = null;
        heldData = null;
        if (fds.length > 0) {
            socket.send(NO_FDS, heldH, heldD);
            socket.send(fds, head, data);
            return;
        }
        socket.send(fds, heldH, heldD, head, data); // empty parts are skipped; no array (see UnixSocket)
    }

    /** Sends a command; {@code cmd} is its code (from the registered call: no load of the Command object). */
    private void send(int msgId, int cmd, Request request, int[] fds, boolean noReply) throws IOException {
        int flags = Header.TYPE_COMMAND | (noReply ? Header.FLAG_NO_REPLY : 0);
        sendMessage(msgId, cmd, flags, request.fixedSize(), request, request.data(), fds);
    }

    private void sendMessage(int msgId, int cmd, int flags, int fixed, io.vfu.core.protocol.Payload payload,
                             MemorySegment data, int[] fds) throws IOException {
        long msgSize = Header.SIZE + (long) fixed + data.byteSize();
        if (msgSize > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException("message of " + msgSize + " bytes does not fit msg_size");
        }
        sendLock.lock();
        try (Arena temp = (Header.SIZE + fixed > SEND_SCRATCH || (data.byteSize() > 0 && !data.isNative()))
                ? Arena.ofConfined() : null) {
            MemorySegment head;
            if (Header.SIZE + fixed > SEND_SCRATCH) {
                head = temp.allocate(Header.SIZE + fixed, 8);
                Header.encode(head, msgId, cmd, msgSize, flags, 0);
                payload.encodeFixed(head.asSlice(Header.SIZE));
            } else {
                if (sendHead.byteSize() != Header.SIZE + fixed) {
                    sendHead = sendScratch.asSlice(0, Header.SIZE + fixed);
                }
                head = sendHead;
                Header.encode(head, msgId, cmd, msgSize, flags, 0);
                payload.encodeFixed(sendFixed);
            }
            sendAfterHeld(fds, head, data.byteSize() == 0 ? MemorySegment.NULL
                    : data.isNative() ? data : temp.allocate(data.byteSize(), 8).copyFrom(data));
        } finally {
            sendLock.unlock();
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Ending

    private void end(IOException cause) {
        Call[] toFail;
        synchronized (lock) {
            if (ended) {
                return;
            }
            ended = true;
            endCause = cause;
            java.util.List<Call> all = new java.util.ArrayList<>();
            for (Call p = pendingHead; p != null; p = p.next) {
                all.add(p);
            }
            toFail = all.toArray(Call[]::new);
        }
        shutdownQuietly();
        for (Call p : toFail) {
            p.fail(cause);
        }
    }

    /** True once the connection ended (peer gone, fatal framing error, or closed). */
    public boolean isEnded() {
        boolean paused = readsPaused && readHolder == Thread.currentThread(); // must not read now (see ReadHold)
        if (callerReads && !paused && !isEndedNoProbe() && !closeRequested && readLock.tryLock()) {
            // Nobody reads between calls in caller-reads mode: look whether the peer has gone (or sent something).
            try {
                // One non-blocking receive looks (and takes in what came), as the reader loop does.
                while (!isEndedNoProbe() && !closeRequested && receiveNowAsCaller()) {
                    readOneAsCaller();
                }
            } catch (IOException e) {
                endAsCaller(e);
            } finally {
                if (closeRequested) {
                    closeSocket();
                }
                readLock.unlock();
                wakeWaiters();
            }
        }
        return isEndedNoProbe();
    }

    /** One look that does not wait, scattering as the next read would. */
    private boolean receiveNowAsCaller() throws IOException {
        MemorySegment likely = likelyBody(null);
        return in.receiveNow(likely, likelyPrefix);
    }

    private boolean isEndedNoProbe() {
        return ended;
    }

    private void shutdownQuietly() {
        try {
            socket.shutdown(true, true);
        } catch (RuntimeException e) {
            log.debug("{}: shutdown: {}", name, e.toString());
        }
    }

    /**
     * Ends the connection: pending calls fail, the reader thread stops (it is joined unless this is the
     * reader), and the socket is closed.
     */
    @Override
    public void close() {
        closeRequested = true;
        end(new ConnectionClosedException(name + ": connection closed"));
        if (callerReads) {
            // The caller reading the socket (if any) closes it on its way out: end() shut it down.
            if (readLock.tryLock()) {
                try {
                    closeSocket();
                } finally {
                    readLock.unlock();
                }
            }
            return;
        }
        Thread r = reader;
        if (r != null && r != Thread.currentThread() && r.isAlive()) {
            try {
                r.join(TransportLimits.DEFAULT_REPLY_TIMEOUT.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (r.isAlive()) {
                // A handler is still running on the reader: it closes the socket when it returns.
                return;
            }
        } else if (r != null && r == Thread.currentThread() && !readerFinished) {
            return; // called from a handler: the reader loop closes the socket on its way out
        }
        closeSocket();
    }

    private void closeSocket() {
        synchronized (lock) {
            if (socketClosed) {
                return;
            }
            socketClosed = true;
        }
        in.close();
        socket.close();
        arena.close();
    }

    /**
     * One call in flight (returned by {@link #startInto}, otherwise internal). Completed once by whichever thread learns the outcome (the reader, a timeout, the
     * end of the connection); awaited by the calling thread only. Reused by the next call once finished
     * (see {@link #call(Request, int[], MemorySegment)}).
     */
    public static final class Call {
        private static final Object REPLIED = new Object();
        private static final java.lang.invoke.VarHandle OUTCOME;

        static {
            try {
                OUTCOME = java.lang.invoke.MethodHandles.lookup().findVarHandle(Call.class, "outcome", Object.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        int msgId;
        Command command;
        /** command's code, matched against each reply without loading the Command object. */
        int cmdCode;
        MemorySegment replyBuffer;
        Thread waiter;
        /** REPLIED (the reply fields below are set) or a Throwable once done. */
        private volatile Object outcome;
        // The reply, written before outcome is published (no record per reply; see result() and bodySize()).
        private int replyMsgId;
        private int replyCmd;
        private long replyMsgSize;
        private int replyFlags;
        private int replyError;
        private MemorySegment replyBody;
        private FdList replyFds;
        /** Where the reply's bytes after replyBuffer's go, or null (see callInto with two buffers); how many came. */
        MemorySegment replyData;
        long replyDataBytes;
        // Guarded by Connection.lock:
        boolean receiving;
        boolean abandoned;
        boolean linked;
        /** Counted in largeCalls: a reply buffer the reader may receive into in place (see likelyReplyBuffer). */
        boolean large;
        Call prev;
        Call next;

        // Streaming a chunk of data through the kernel evicts this object's neighbours from the cache, so the
        // per-call path touches as few other cache lines as it can: reference fields are stored only when they
        // change (a store of a reference to another heap region reads a card-table line first, G1), and the
        // command and the waiting thread are kept across recycling (a pipeline's calls repeat both).
        void start(int id, Command cmd, MemorySegment buffer, Thread thread) {
            msgId = id;
            if (command != cmd) {
                command = cmd;
                cmdCode = cmd.code();
            }
            replyBuffer = buffer;
            if (waiter != thread) {
                waiter = thread;
            }
        }

        void reset() {
            replyBody = null;
            replyBuffer = null;
            if (replyData != null) { // rarely set: no reference store per call
                replyData = null;
            }
            replyDataBytes = 0;
            receiving = false;
            abandoned = false;
            // Recycled under Connection.lock, which orders this before the next start(): no fence of its own.
            OUTCOME.setRelease(this, null);
        }

        boolean isDone() {
            return outcome != null;
        }

        void replied(int msgId, int cmd, long msgSize, int flags, int error, MemorySegment body, FdList fds) {
            replyMsgId = msgId;
            replyCmd = cmd;
            replyMsgSize = msgSize;
            replyFlags = flags;
            replyError = error;
            replyBody = body;
            if (replyFds != fds) {
                replyFds = fds;
            }
            if (!finish(REPLIED)) {
                fds.close(); // already failed (e.g. the connection ended meanwhile)
            }
        }

        boolean fail(Throwable cause) {
            return finish(cause);
        }

        private boolean finish(Object o) {
            if (!OUTCOME.compareAndSet(this, null, o)) {
                return false;
            }
            Thread w = waiter;
            if (w != null && w != Thread.currentThread()) { // a caller reading its own reply is not parked
                java.util.concurrent.locks.LockSupport.unpark(w);
            }
            return true;
        }

        /** Waits up to {@code nanos} for the outcome; false on timeout or interrupt (interrupt status kept). */
        boolean await(long nanos) {
            long deadline = System.nanoTime() + nanos;
            while (outcome == null) {
                long left = deadline - System.nanoTime();
                if (left <= 0 || Thread.currentThread().isInterrupted()) {
                    return outcome != null;
                }
                java.util.concurrent.locks.LockSupport.parkNanos(this, left);
            }
            return true;
        }

        ReceivedReply result() throws IOException {
            Object o = outcome;
            if (o == REPLIED) {
                return new ReceivedReply(new Header(replyMsgId, replyCmd, replyMsgSize, replyFlags, replyError),
                        replyBody, replyFds);
            }
            throw rethrow((Throwable) o);
        }

        /** The body size of the reply (its fds closed), without creating records. */
        long bodySize() throws IOException {
            Object o = outcome;
            if (o == REPLIED) {
                replyFds.close();
                return replyBody.byteSize() + replyDataBytes;
            }
            throw rethrow((Throwable) o);
        }
    }
}
