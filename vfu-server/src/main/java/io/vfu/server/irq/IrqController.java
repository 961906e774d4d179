package io.vfu.server.irq;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.EventFd;
import io.vfu.core.linux.FdList;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.IrqInfoReply;
import io.vfu.core.protocol.SetIrqsRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.Irqs;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The interrupt state of one device: the eventfds the client assigned with DEVICE_SET_IRQS, the mask and
 * pending bit of every vector, and the delivery of {@link #trigger triggers} (protocol reference §8.5, §8.6).
 *
 * <h2>Vectors and delivery</h2>
 * Each IRQ index (INTX 0, MSI 1, MSIX 2, ERR 3, REQ 4, see {@link IrqIndex}) has the number of vectors given
 * to the constructor. {@link #trigger(int, int)} delivers a vector by adding 1 to its eventfd
 * ({@link EventFd#signal()}), unless:
 * <ul>
 *   <li>its index was {@linkplain #setEnabled disabled} from config space: dropped;</li>
 *   <li>it is masked: its pending bit is set and it is delivered (once) when it becomes unmasked;</li>
 *   <li>no eventfd is assigned: dropped.</li>
 * </ul>
 * Dropped triggers are not errors; they are counted in {@link #droppedTriggers()} (as is a signal that
 * fails, e.g. because the eventfd was closed by a concurrent re-assignment).
 *
 * <p>Interrupts are edge-like, as vfio-user and QEMU use them: each trigger is one eventfd increment.
 * INTx level semantics (a line that stays asserted until the device deasserts it, AUTOMASKED) are not
 * modelled: a device that keeps INTx asserted re-triggers after the client's UNMASK (its EOI), which the
 * {@link MaskListener} reports.
 *
 * <h2>Masks</h2>
 * A vector is masked while any of these is set:
 * <ul>
 *   <li>the client's mask: SET_IRQS ACTION_MASK / ACTION_UNMASK (reported to the {@link MaskListener});</li>
 *   <li>the config-space mask {@link #setMasked}: MSI per-vector mask bits, the MSI-X table's vector
 *       control, or the command register's Interrupt Disable bit for INTx;</li>
 *   <li>the function mask {@link #setFunctionMasked} (MSI-X function mask; honoured for any index).</li>
 * </ul>
 * When the last of them clears, a pending vector is delivered once and its pending bit cleared.
 *
 * <h2>Enable bits</h2>
 * {@link #setEnabled} mirrors the MSI / MSI-X enable bits of config space. An index never reported is
 * treated as enabled: vfio-user clients (QEMU) configure eventfds with SET_IRQS and emulate the capability
 * themselves, so the server may never see the enable bit, and triggers must keep working whenever an eventfd
 * is assigned. Only an explicit {@code setEnabled(index, false)} drops the triggers of that index.
 *
 * <h2>Threading</h2>
 * {@link #trigger} and the {@link Irqs} queries may be called from any thread. {@link #setIrqs},
 * {@link #setMasked}, {@link #setFunctionMasked}, {@link #setEnabled} and {@link #releaseAll} are meant for
 * the connection thread but are thread-safe too. The state is guarded by one lock held only for field
 * updates; eventfd writes, closes and listener calls happen after it is released. An eventfd closed while a
 * trigger signals it is safe ({@link EventFd} defers the close(2)); that signal is counted as dropped.
 */
public final class IrqController implements Irqs, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(IrqController.class);

    /** PCI limits: INTx one line, MSI 32 vectors, MSI-X 2048 entries, ERR and REQ one each. */
    private static final int[] MAX_COUNTS = {1, 32, 2048, 1, 1};

    /**
     * Told of the client's SET_IRQS ACTION_MASK / ACTION_UNMASK, like libvfio-user's device callback. Called on
     * the thread that called {@link #setIrqs}, after the state changed and pending vectors fired. Not called
     * for config-space masks ({@link #setMasked}, {@link #setFunctionMasked}).
     */
    @FunctionalInterface
    public interface MaskListener {
        /**
         * Vectors {@code start .. start + count - 1} of {@code index} were masked ({@code masked}) or
         * unmasked by the client. A DATA_BOOL request reports each run of selected vectors separately.
         */
        void maskChanged(int index, int start, int count, boolean masked);
    }

    private static final class Vectors {
        final EventFd[] eventFds;
        final boolean[] clientMasked;
        final boolean[] configMasked;
        final boolean[] pending;
        boolean functionMasked;
        boolean disabled;

        Vectors(int count) {
            eventFds = new EventFd[count];
            clientMasked = new boolean[count];
            configMasked = new boolean[count];
            pending = new boolean[count];
        }

        int count() {
            return eventFds.length;
        }

        boolean masked(int v) {
            return functionMasked || clientMasked[v] || configMasked[v];
        }
    }

    private final Object lock = new Object();
    private final Vectors[] vectors = new Vectors[IrqIndex.PCI_NUM_IRQS];
    private final MaskListener listener;
    private final AtomicLong dropped = new AtomicLong();
    private boolean closed;

    /**
     * Creates the interrupt state of a device.
     *
     * @param counts   vectors per IRQ index, {@code counts[i]} for index {@code i}; up to 5 entries, missing ones
     *                 are 0. Limits: INTx 1, MSI 32, MSI-X 2048, ERR 1, REQ 1.
     * @param listener told of SET_IRQS MASK/UNMASK, or {@code null}
     * @throws IllegalArgumentException for more than 5 counts, a negative count or one beyond its limit
     */
    public IrqController(int[] counts, MaskListener listener) {
        if (counts.length > IrqIndex.PCI_NUM_IRQS) {
            throw new IllegalArgumentException(counts.length + " IRQ counts, at most " + IrqIndex.PCI_NUM_IRQS);
        }
        for (int i = 0; i < IrqIndex.PCI_NUM_IRQS; i++) {
            int n = i < counts.length ? counts[i] : 0;
            if (n < 0 || n > MAX_COUNTS[i]) {
                throw new IllegalArgumentException(
                        IrqIndex.name(i) + " count " + n + " not in 0.." + MAX_COUNTS[i]);
            }
            vectors[i] = new Vectors(n);
        }
        this.listener = listener;
    }

    // ---------------------------------------------------------------------------------------------------------
    // DEVICE_GET_IRQ_INFO

    /** See {@link #info(long)}. */
    public IrqInfoReply info(int index) {
        return info(Integer.toUnsignedLong(index));
    }

    /**
     * The DEVICE_GET_IRQ_INFO reply for {@code index} (u32 from the wire).
     *
     * <p>Flags: {@link IrqInfoReply#FLAG_EVENTFD} always (as libvfio-user, even for count 0);
     * {@link IrqInfoReply#FLAG_MASKABLE} for INTx, MSI and MSI-X with at least one vector, because this
     * controller implements MASK/UNMASK with pending bits (libvfio-user accepts masks without advertising them,
     * ambiguity #17; clients must not depend on the bit). Never AUTOMASKED (INTx level semantics are not
     * modelled) and never NORESIZE: any sub-range of vectors may be (re)assigned at any time, so QEMU can add
     * MSI-X vectors one by one instead of tearing the whole set down.
     *
     * @throws VfioUserException EINVAL for {@code index >= 5}
     */
    public IrqInfoReply info(long index) {
        if (index < 0 || index >= IrqIndex.PCI_NUM_IRQS) {
            throw VfioUserException.einval("DEVICE_GET_IRQ_INFO: index " + Long.toUnsignedString(index)
                    + " >= " + IrqIndex.PCI_NUM_IRQS);
        }
        int i = (int) index;
        int count = vectors[i].count();
        int flags = IrqInfoReply.FLAG_EVENTFD;
        if (i <= IrqIndex.MSIX && count > 0) {
            flags |= IrqInfoReply.FLAG_MASKABLE;
        }
        return new IrqInfoReply(flags, index, count);
    }

    // ---------------------------------------------------------------------------------------------------------
    // DEVICE_SET_IRQS

    /**
     * Applies a DEVICE_SET_IRQS request, or rejects it with EINVAL and changes nothing.
     *
     * <p>Validation (libvfio-user's list, §8.6): flags with exactly one DATA and one ACTION bit and nothing
     * else; {@code index < 5}; {@code start < count(index)} even when the request's count is 0 (so "disable
     * all" fails on an index without vectors, ambiguity #16); {@code start + count <= count(index)}; count 0
     * only as DATA_NONE + ACTION_TRIGGER with start 0; ERR and REQ: ACTION_TRIGGER only and count at most 1;
     * DATA_BOOL with exactly count data bytes; fds only with DATA_EVENTFD and then exactly count of them. In
     * addition, fds assigned as triggers must be eventfds (as the kernel requires).
     *
     * <p>Semantics:
     * <ul>
     *   <li>DATA_EVENTFD + TRIGGER, count fds: fd {@code i} becomes the eventfd of vector {@code start + i},
     *       replacing (closing) the previous one. The fds are {@linkplain FdList#take taken} from {@code fds}.</li>
     *   <li>DATA_EVENTFD + TRIGGER, no fds: the range is de-assigned (its eventfds closed).</li>
     *   <li>DATA_NONE + TRIGGER, start 0, count 0: every vector of the index is de-assigned and its pending bit
     *       cleared.</li>
     *   <li>DATA_NONE / DATA_BOOL + TRIGGER: the vectors (DATA_BOOL: those whose byte is 1 - libvfio-user
     *       treats only the value 1 as true, so do we) are triggered now, as by {@link #trigger} (loopback;
     *       masks apply).</li>
     *   <li>DATA_NONE / DATA_BOOL + MASK / UNMASK: the client's mask of the vectors (DATA_BOOL: those whose
     *       byte is 1; libvfio-user ignores the bytes and acts on the whole range) is set or cleared; a vector
     *       that becomes unmasked fires if pending. The {@link MaskListener} is told.</li>
     *   <li>DATA_EVENTFD + MASK / UNMASK (ambiguity #15: the spec and the kernel disagree on the direction of
     *       such an eventfd): accepted as libvfio-user does, the fds are NOT taken (the caller closes them) and
     *       the mask / unmask applies to the range as with DATA_NONE. QEMU sends this form for its INTx
     *       resample (unmask) eventfd.</li>
     * </ul>
     *
     * @param request the decoded request
     * @param fds     the fds that came with the message ({@code null} = none); the ones kept are taken, the
     *                rest stay in the list for the caller to close
     * @throws VfioUserException EINVAL, naming the index, start and count
     * @throws IllegalStateException after {@link #close()}
     */
    public void setIrqs(SetIrqsRequest request, FdList fds) {
        int nfds = fds == null ? 0 : fds.size();
        long index = request.index();
        long start = request.start();
        long count = request.count();
        String what = "DEVICE_SET_IRQS " + IrqIndex.name(index) + " (index " + index + ") start " + start
                + " count " + count;
        int flags = request.flags();
        int data = request.dataType();
        int action = request.action();
        if ((flags & ~(SetIrqsRequest.DATA_TYPE_MASK | SetIrqsRequest.ACTION_TYPE_MASK)) != 0
                || Integer.bitCount(data) != 1 || Integer.bitCount(action) != 1) {
            throw einval(what, "flags 0x" + Integer.toHexString(flags)
                    + " need exactly one DATA and one ACTION bit and nothing else");
        }
        if (index < 0 || index >= IrqIndex.PCI_NUM_IRQS) {
            throw einval(what, "index >= " + IrqIndex.PCI_NUM_IRQS);
        }
        Vectors vs = vectors[(int) index];
        int n = vs.count();
        if (start < 0 || start >= n) {
            throw einval(what, "start beyond the " + n + " vectors of the index");
        }
        if (count < 0 || count > n - start) {
            throw einval(what, "start + count beyond the " + n + " vectors of the index");
        }
        if (count == 0 && (start != 0 || flags != (SetIrqsRequest.DATA_NONE | SetIrqsRequest.ACTION_TRIGGER))) {
            throw einval(what, "count 0 is only valid as DATA_NONE|ACTION_TRIGGER with start 0 (disable all)");
        }
        if ((index == IrqIndex.ERR || index == IrqIndex.REQ)
                && (action != SetIrqsRequest.ACTION_TRIGGER || count > 1)) {
            throw einval(what, "ERR and REQ accept only ACTION_TRIGGER with count <= 1");
        }
        long dataBytes = request.data().byteSize();
        long expectedBytes = data == SetIrqsRequest.DATA_BOOL ? count : 0;
        if (dataBytes != expectedBytes) {
            throw einval(what, dataBytes + " data bytes, expected " + expectedBytes);
        }
        if (nfds > 0 && data != SetIrqsRequest.DATA_EVENTFD) {
            throw einval(what, nfds + " fds without DATA_EVENTFD");
        }
        if (nfds > 0 && nfds != count) {
            throw einval(what, nfds + " fds for " + count + " vectors");
        }
        int first = (int) start;
        int len = (int) count;
        if (data == SetIrqsRequest.DATA_EVENTFD && action == SetIrqsRequest.ACTION_TRIGGER) {
            assign(vs, what, first, len, fds);
            return;
        }
        boolean[] selected = new boolean[len];
        for (int i = 0; i < len; i++) {
            selected[i] = data != SetIrqsRequest.DATA_BOOL
                    || request.data().get(ValueLayout.JAVA_BYTE, i) == 1;
        }
        if (action == SetIrqsRequest.ACTION_TRIGGER) {
            if (len == 0) {
                disableAll(vs);
            } else {
                List<EventFd> fire = new ArrayList<>();
                synchronized (lock) {
                    requireOpen();
                    for (int i = 0; i < len; i++) {
                        if (selected[i]) {
                            deliverLocked(vs, first + i, fire);
                        }
                    }
                }
                signalAll(fire);
            }
            return;
        }
        boolean mask = action == SetIrqsRequest.ACTION_MASK;
        List<EventFd> fire = new ArrayList<>();
        synchronized (lock) {
            requireOpen();
            for (int i = 0; i < len; i++) {
                if (selected[i]) {
                    int v = first + i;
                    boolean wasMasked = vs.masked(v);
                    vs.clientMasked[v] = mask;
                    firePendingIfUnmaskedLocked(vs, v, wasMasked, fire);
                }
            }
        }
        signalAll(fire);
        if (listener != null) {
            int idx = (int) index;
            for (int i = 0; i < len; ) {
                if (!selected[i]) {
                    i++;
                    continue;
                }
                int runStart = i;
                while (i < len && selected[i]) {
                    i++;
                }
                listener.maskChanged(idx, first + runStart, i - runStart, mask);
            }
        }
    }

    private void assign(Vectors vs, String what, int first, int len, FdList fds) {
        int nfds = fds == null ? 0 : fds.size();
        for (int i = 0; i < nfds; i++) {
            if (fds.isTaken(i)) {
                throw new IllegalStateException(what + ": fd at index " + i + " was already taken");
            }
            requireEventFd(what, fds.get(i));
        }
        EventFd[] fresh = new EventFd[len];
        for (int i = 0; i < nfds; i++) {
            fresh[i] = EventFd.adopt(fds.take(i));
        }
        List<EventFd> old = new ArrayList<>();
        boolean wasClosed;
        synchronized (lock) {
            wasClosed = closed;
            if (!wasClosed) {
                for (int i = 0; i < len; i++) {
                    EventFd prev = vs.eventFds[first + i];
                    if (prev != null) {
                        old.add(prev);
                    }
                    vs.eventFds[first + i] = fresh[i];
                }
            }
        }
        if (wasClosed) {
            for (EventFd e : fresh) {
                if (e != null) {
                    old.add(e);
                }
            }
        }
        closeAll(old);
        if (wasClosed) {
            throw new IllegalStateException("IrqController is closed");
        }
    }

    private void disableAll(Vectors vs) {
        List<EventFd> old = new ArrayList<>();
        synchronized (lock) {
            requireOpen();
            for (int v = 0; v < vs.count(); v++) {
                if (vs.eventFds[v] != null) {
                    old.add(vs.eventFds[v]);
                    vs.eventFds[v] = null;
                }
                vs.pending[v] = false;
            }
        }
        closeAll(old);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Config space

    /**
     * Sets the config-space mask of one vector: an MSI per-vector mask bit, an MSI-X table entry's vector
     * control mask bit, or (for INTx vector 0) the command register's Interrupt Disable bit. Unmasking a
     * pending vector that no other mask holds fires it once and clears the pending bit.
     *
     * @throws IndexOutOfBoundsException for an index or vector the device does not have
     */
    public void setMasked(int index, int vector, boolean masked) {
        Vectors vs = vectors(index, vector);
        List<EventFd> fire = new ArrayList<>();
        synchronized (lock) {
            boolean wasMasked = vs.masked(vector);
            vs.configMasked[vector] = masked;
            firePendingIfUnmaskedLocked(vs, vector, wasMasked, fire);
        }
        signalAll(fire);
    }

    /**
     * Sets the function mask of an index (the MSI-X Function Mask bit): every vector counts as masked while it
     * is set, pending bits are kept, and clearing it fires the pending vectors not masked otherwise.
     *
     * @throws IndexOutOfBoundsException for an index other than 0..4
     */
    public void setFunctionMasked(int index, boolean masked) {
        Vectors vs = vectors(index);
        List<EventFd> fire = new ArrayList<>();
        synchronized (lock) {
            boolean[] wasMasked = new boolean[vs.count()];
            for (int v = 0; v < vs.count(); v++) {
                wasMasked[v] = vs.masked(v);
            }
            vs.functionMasked = masked;
            for (int v = 0; v < vs.count(); v++) {
                firePendingIfUnmaskedLocked(vs, v, wasMasked[v], fire);
            }
        }
        signalAll(fire);
    }

    /**
     * Mirrors the MSI / MSI-X enable bit of config space. While an index is explicitly disabled its triggers
     * are dropped (counted); pending bits are kept. An index never reported counts as enabled (see the class
     * comment: the client may configure eventfds without the server ever seeing the enable bit).
     *
     * @throws IndexOutOfBoundsException for an index other than 0..4
     */
    public void setEnabled(int index, boolean enabled) {
        Vectors vs = vectors(index);
        synchronized (lock) {
            vs.disabled = !enabled;
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Lifetime

    /**
     * Drops what the client set up, on disconnect: closes every eventfd, clears every pending bit and every
     * client (SET_IRQS) mask. The config-space state ({@link #setMasked}, {@link #setFunctionMasked},
     * {@link #setEnabled}) is kept: it mirrors config space, which the device keeps across a reconnect
     * (ambiguity #34); whoever resets config space updates it. Triggers keep being accepted (and dropped).
     */
    public void releaseAll() {
        List<EventFd> old = new ArrayList<>();
        synchronized (lock) {
            releaseLocked(old);
        }
        closeAll(old);
    }

    /** {@link #releaseAll()}, then refuses {@link #setIrqs}; later triggers are dropped. Idempotent. */
    @Override
    public void close() {
        List<EventFd> old = new ArrayList<>();
        synchronized (lock) {
            closed = true;
            releaseLocked(old);
        }
        closeAll(old);
    }

    private void releaseLocked(List<EventFd> old) {
        for (Vectors vs : vectors) {
            for (int v = 0; v < vs.count(); v++) {
                if (vs.eventFds[v] != null) {
                    old.add(vs.eventFds[v]);
                    vs.eventFds[v] = null;
                }
                vs.pending[v] = false;
                vs.clientMasked[v] = false;
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Irqs

    /**
     * Triggers a vector; see the class comment for masking, pending and dropping. Never blocks on a lock held
     * during I/O; the eventfd write happens outside the lock.
     *
     * @throws IndexOutOfBoundsException for an index or vector the device does not have (a device bug)
     */
    @Override
    public void trigger(int index, int vector) {
        Vectors vs = vectors(index, vector);
        EventFd target;
        synchronized (lock) {
            if (closed || vs.disabled) {
                dropped.incrementAndGet();
                return;
            }
            if (vs.masked(vector)) {
                vs.pending[vector] = true;
                return;
            }
            target = vs.eventFds[vector];
        }
        if (target == null) {
            dropped.incrementAndGet();
            return;
        }
        signal(target);
    }

    /** The vectors of {@code index}; 0 for an index beyond 0..4. */
    @Override
    public int count(int index) {
        return index < 0 || index >= IrqIndex.PCI_NUM_IRQS ? 0 : vectors[index].count();
    }

    @Override
    public boolean assigned(int index, int vector) {
        Vectors vs = vectors(index, vector);
        synchronized (lock) {
            return vs.eventFds[vector] != null;
        }
    }

    /** Whether any mask holds the vector: the client's, the config-space one, or the function mask. */
    @Override
    public boolean masked(int index, int vector) {
        Vectors vs = vectors(index, vector);
        synchronized (lock) {
            return vs.masked(vector);
        }
    }

    @Override
    public boolean pending(int index, int vector) {
        Vectors vs = vectors(index, vector);
        synchronized (lock) {
            return vs.pending[vector];
        }
    }

    /**
     * Triggers not delivered since creation: of a disabled index, of a vector without an eventfd, after
     * {@link #close()}, or whose eventfd write failed. Triggers held as pending are not counted.
     */
    public long droppedTriggers() {
        return dropped.get();
    }

    // ---------------------------------------------------------------------------------------------------------
    // Internals

    /** Delivers one trigger: dropped, made pending, or its eventfd added to {@code fire}. */
    private void deliverLocked(Vectors vs, int v, List<EventFd> fire) {
        if (vs.disabled) {
            dropped.incrementAndGet();
        } else if (vs.masked(v)) {
            vs.pending[v] = true;
        } else if (vs.eventFds[v] == null) {
            dropped.incrementAndGet();
        } else {
            fire.add(vs.eventFds[v]);
        }
    }

    private void firePendingIfUnmaskedLocked(Vectors vs, int v, boolean wasMasked, List<EventFd> fire) {
        if (wasMasked && !vs.masked(v) && vs.pending[v]) {
            vs.pending[v] = false;
            deliverLocked(vs, v, fire);
        }
    }

    private void signalAll(List<EventFd> fire) {
        for (EventFd e : fire) {
            signal(e);
        }
    }

    private void signal(EventFd e) {
        try {
            e.signal();
        } catch (IOException ex) {
            // Closed by a concurrent re-assignment (EBADF) or a client-side counter at its limit.
            dropped.incrementAndGet();
            LOG.debug("interrupt eventfd signal failed: {}", ex.getMessage());
        }
    }

    private static void closeAll(List<EventFd> old) {
        for (EventFd e : old) {
            e.close();
        }
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("IrqController is closed");
        }
    }

    private Vectors vectors(int index) {
        if (index < 0 || index >= IrqIndex.PCI_NUM_IRQS) {
            throw new IndexOutOfBoundsException("IRQ index " + index + " not in 0.." + (IrqIndex.PCI_NUM_IRQS - 1));
        }
        return vectors[index];
    }

    private Vectors vectors(int index, int vector) {
        Vectors vs = vectors(index);
        if (vector < 0 || vector >= vs.count()) {
            throw new IndexOutOfBoundsException(
                    IrqIndex.name(index) + " vector " + vector + " not below its count " + vs.count());
        }
        return vs;
    }

    private static VfioUserException einval(String what, String why) {
        return new VfioUserException(Errno.EINVAL, what + ": " + why);
    }

    /**
     * Rejects an fd that is not an eventfd (the kernel's SET_IRQS does too): writing 8 bytes to a pipe or a
     * socket could block a triggering thread. Skipped when {@code /proc/self/fd} cannot be read.
     */
    private static void requireEventFd(String what, int fd) {
        String target;
        try {
            target = Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
        } catch (IOException | UnsupportedOperationException e) {
            return;
        }
        if (!target.equals("anon_inode:[eventfd]")) {
            throw einval(what, "fd " + fd + " is not an eventfd (" + target + ")");
        }
    }
}
