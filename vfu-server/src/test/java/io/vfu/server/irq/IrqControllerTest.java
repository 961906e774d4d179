package io.vfu.server.irq;

import static io.vfu.core.protocol.SetIrqsRequest.ACTION_MASK;
import static io.vfu.core.protocol.SetIrqsRequest.ACTION_TRIGGER;
import static io.vfu.core.protocol.SetIrqsRequest.ACTION_UNMASK;
import static io.vfu.core.protocol.SetIrqsRequest.DATA_BOOL;
import static io.vfu.core.protocol.SetIrqsRequest.DATA_EVENTFD;
import static io.vfu.core.protocol.SetIrqsRequest.DATA_NONE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.EventFd;
import io.vfu.core.linux.FdList;
import io.vfu.core.linux.Fds;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.IrqInfoReply;
import io.vfu.core.protocol.SetIrqsRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.testing.NoFdLeaks;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(NoFdLeaks.class)
class IrqControllerTest {
    private static final int INTX = IrqIndex.INTX;
    private static final int MSI = IrqIndex.MSI;
    private static final int MSIX = IrqIndex.MSIX;
    private static final int ERR = IrqIndex.ERR;
    private static final int REQ = IrqIndex.REQ;

    /** INTx 1, MSI 4, MSI-X 8, ERR 1, REQ 1. */
    private static final int[] COUNTS = {1, 4, 8, 1, 1};

    private final List<String> maskEvents = new ArrayList<>();
    private final List<EventFd> clientFds = new ArrayList<>();
    private IrqController irqs;

    @BeforeEach
    void setUp() {
        irqs = new IrqController(COUNTS,
                (index, start, count, masked) -> maskEvents.add(index + ":" + start + "+" + count + "=" + masked));
    }

    @AfterEach
    void tearDown() {
        irqs.close();
        clientFds.forEach(EventFd::close);
    }

    /** A client-side non-blocking eventfd: read() returns 0 when nothing was signalled. */
    private EventFd clientEventFd() throws IOException {
        EventFd e = EventFd.create(0, false, true);
        clientFds.add(e);
        return e;
    }

    /** An FdList holding duplicates of the given eventfds, as received with SCM_RIGHTS. */
    private static FdList received(EventFd... efds) throws IOException {
        FdList list = new FdList();
        for (EventFd e : efds) {
            list.add(Fds.dup(e.fd()));
        }
        return list;
    }

    private EventFd[] assign(int index, int start, int count) throws IOException {
        EventFd[] efds = new EventFd[count];
        for (int i = 0; i < count; i++) {
            efds[i] = clientEventFd();
        }
        try (FdList fds = received(efds)) {
            irqs.setIrqs(new SetIrqsRequest(DATA_EVENTFD | ACTION_TRIGGER, index, start, count), fds);
            for (int i = 0; i < count; i++) {
                assertThat(fds.isTaken(i)).isTrue();
            }
        }
        return efds;
    }

    private void set(int flags, int index, int start, int count) {
        irqs.setIrqs(new SetIrqsRequest(flags, index, start, count), null);
    }

    // ---------------------------------------------------------------------------------------------------------

    @Test
    void infoPerIndex() {
        assertThat(irqs.info(INTX)).isEqualTo(new IrqInfoReply(16, 0x3, INTX, 1));
        assertThat(irqs.info(MSI)).isEqualTo(new IrqInfoReply(16, 0x3, MSI, 4));
        assertThat(irqs.info(MSIX)).isEqualTo(new IrqInfoReply(16, 0x3, MSIX, 8));
        assertThat(irqs.info(ERR)).isEqualTo(new IrqInfoReply(16, 0x1, ERR, 1));
        assertThat(irqs.info(REQ)).isEqualTo(new IrqInfoReply(16, 0x1, REQ, 1));
        try (IrqController none = new IrqController(new int[] {0, 0, 2}, null)) {
            assertThat(none.info(INTX)).isEqualTo(new IrqInfoReply(16, 0x1, INTX, 0));
            assertThat(none.info(MSIX)).isEqualTo(new IrqInfoReply(16, 0x3, MSIX, 2));
            assertThat(none.info(REQ)).isEqualTo(new IrqInfoReply(16, 0x1, REQ, 0));
        }
        for (long bad : new long[] {5, 6, 0xFFFF_FFFFL}) {
            assertThatThrownBy(() -> irqs.info(bad)).isInstanceOfSatisfying(VfioUserException.class,
                    e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
        }
        assertThatThrownBy(() -> irqs.info(-1)).isInstanceOf(VfioUserException.class);
    }

    @Test
    void constructorRejectsBadCounts() {
        assertThatThrownBy(() -> new IrqController(new int[] {1, 1, 1, 2, 1}, null))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new IrqController(new int[] {2}, null)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new IrqController(new int[] {0, -1}, null))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new IrqController(new int[] {0, 33}, null))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new IrqController(new int[] {0, 0, 2049}, null))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new IrqController(new int[6], null)).isInstanceOf(IllegalArgumentException.class);
        try (IrqController max = new IrqController(new int[] {1, 32, 2048, 1, 1}, null)) {
            assertThat(max.count(MSIX)).isEqualTo(2048);
            assertThat(max.count(5)).isZero();
        }
    }

    @Test
    void assignedEventFdsReceiveTheirVectorsTriggers() throws IOException {
        EventFd[] e = assign(MSIX, 2, 3);
        assertThat(irqs.assigned(MSIX, 1)).isFalse();
        assertThat(irqs.assigned(MSIX, 2)).isTrue();
        assertThat(irqs.assigned(MSIX, 4)).isTrue();
        assertThat(irqs.assigned(MSIX, 5)).isFalse();

        irqs.trigger(MSIX, 3);
        irqs.trigger(MSIX, 3);
        irqs.trigger(MSIX, 4);
        assertThat(e[0].read()).isZero();
        assertThat(e[1].read()).isEqualTo(2);
        assertThat(e[2].read()).isEqualTo(1);
        assertThat(irqs.droppedTriggers()).isZero();

        irqs.trigger(MSIX, 0); // no eventfd
        assertThat(irqs.droppedTriggers()).isEqualTo(1);
    }

    @Test
    void triggerFromAnotherThreadWakesAWaiter() throws Exception {
        EventFd e = assign(MSI, 0, 1)[0];
        CountDownLatch started = new CountDownLatch(1);
        Thread t = Thread.ofPlatform().start(() -> {
            started.countDown();
            irqs.trigger(MSI, 0);
        });
        assertThat(started.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(e.await(10_000)).isTrue();
        t.join();
        assertThat(e.read()).isEqualTo(1);
    }

    @Test
    void reassignmentReplacesAndClosesTheOldEventFd() throws IOException {
        int before = Fds.openFdCount();
        EventFd[] first = assign(MSIX, 0, 2);
        assertThat(Fds.openFdCount()).isEqualTo(before + 2 + 2); // client's two + server's two
        EventFd second = assign(MSIX, 1, 1)[0];
        assertThat(Fds.openFdCount()).isEqualTo(before + 2 + 1 + 2); // the server closed its old vector 1 fd

        irqs.trigger(MSIX, 0);
        irqs.trigger(MSIX, 1);
        assertThat(first[0].read()).isEqualTo(1);
        assertThat(first[1].read()).isZero();
        assertThat(second.read()).isEqualTo(1);
    }

    @Test
    void eventFdTriggerWithoutFdsDeassignsTheRange() throws IOException {
        EventFd[] e = assign(MSIX, 0, 4);
        int before = Fds.openFdCount();
        set(DATA_EVENTFD | ACTION_TRIGGER, MSIX, 1, 2);
        assertThat(Fds.openFdCount()).isEqualTo(before - 2);
        assertThat(irqs.assigned(MSIX, 0)).isTrue();
        assertThat(irqs.assigned(MSIX, 1)).isFalse();
        assertThat(irqs.assigned(MSIX, 2)).isFalse();
        assertThat(irqs.assigned(MSIX, 3)).isTrue();
        for (int v = 0; v < 4; v++) {
            irqs.trigger(MSIX, v);
        }
        assertThat(e[0].read()).isEqualTo(1);
        assertThat(e[1].read()).isZero();
        assertThat(e[2].read()).isZero();
        assertThat(e[3].read()).isEqualTo(1);
        assertThat(irqs.droppedTriggers()).isEqualTo(2);
    }

    @Test
    void noneTriggerWithCountZeroDisablesEveryVectorOfTheIndex() throws IOException {
        EventFd[] msix = assign(MSIX, 0, 8);
        EventFd msi = assign(MSI, 0, 1)[0];
        set(DATA_NONE | ACTION_MASK, MSIX, 5, 1);
        irqs.trigger(MSIX, 5);
        assertThat(irqs.pending(MSIX, 5)).isTrue();
        int before = Fds.openFdCount();

        set(DATA_NONE | ACTION_TRIGGER, MSIX, 0, 0);

        assertThat(Fds.openFdCount()).isEqualTo(before - 8);
        for (int v = 0; v < 8; v++) {
            assertThat(irqs.assigned(MSIX, v)).isFalse();
            irqs.trigger(MSIX, v);
        }
        assertThat(irqs.pending(MSIX, 5)).isTrue(); // re-pended by the trigger above: still masked
        set(DATA_NONE | ACTION_UNMASK, MSIX, 5, 1);
        assertThat(irqs.pending(MSIX, 5)).isFalse();
        for (EventFd e : msix) {
            assertThat(e.read()).isZero();
        }
        assertThat(irqs.assigned(MSI, 0)).isTrue(); // other indexes untouched
        irqs.trigger(MSI, 0);
        assertThat(msi.read()).isEqualTo(1);
    }

    @Test
    void disableAllClearsPending() throws IOException {
        assign(MSIX, 0, 2);
        set(DATA_NONE | ACTION_MASK, MSIX, 0, 2);
        irqs.trigger(MSIX, 1);
        assertThat(irqs.pending(MSIX, 1)).isTrue();
        set(DATA_NONE | ACTION_TRIGGER, MSIX, 0, 0);
        assertThat(irqs.pending(MSIX, 1)).isFalse();
    }

    @Test
    void noneTriggerFiresTheRangeNow() throws IOException {
        EventFd[] e = assign(MSI, 0, 4);
        set(DATA_NONE | ACTION_TRIGGER, MSI, 1, 2);
        assertThat(e[0].read()).isZero();
        assertThat(e[1].read()).isEqualTo(1);
        assertThat(e[2].read()).isEqualTo(1);
        assertThat(e[3].read()).isZero();
    }

    @Test
    void boolTriggerFiresOnlyWhereTheByteIsOne() throws IOException {
        EventFd[] e = assign(MSIX, 0, 4);
        byte[] bytes = {1, 0, 2, 1}; // only 1 is true (libvfio-user)
        irqs.setIrqs(new SetIrqsRequest(24, DATA_BOOL | ACTION_TRIGGER, MSIX, 0, 4, MemorySegment.ofArray(bytes)),
                null);
        assertThat(e[0].read()).isEqualTo(1);
        assertThat(e[1].read()).isZero();
        assertThat(e[2].read()).isZero();
        assertThat(e[3].read()).isEqualTo(1);
    }

    @Test
    void loopbackTriggerOfAMaskedVectorPends() throws IOException {
        EventFd e = assign(MSI, 0, 1)[0];
        set(DATA_NONE | ACTION_MASK, MSI, 0, 1);
        set(DATA_NONE | ACTION_TRIGGER, MSI, 0, 1);
        assertThat(e.read()).isZero();
        assertThat(irqs.pending(MSI, 0)).isTrue();
    }

    @Test
    void maskedTriggerPendsAndUnmaskFiresOnce() throws IOException {
        EventFd e = assign(MSIX, 0, 2)[1];
        set(DATA_NONE | ACTION_MASK, MSIX, 1, 1);
        assertThat(irqs.masked(MSIX, 1)).isTrue();
        assertThat(irqs.masked(MSIX, 0)).isFalse();
        assertThat(maskEvents).containsExactly("2:1+1=true");

        irqs.trigger(MSIX, 1);
        irqs.trigger(MSIX, 1);
        assertThat(irqs.pending(MSIX, 1)).isTrue();
        assertThat(e.read()).isZero();
        assertThat(irqs.droppedTriggers()).isZero();

        set(DATA_NONE | ACTION_UNMASK, MSIX, 1, 1);
        assertThat(irqs.pending(MSIX, 1)).isFalse();
        assertThat(irqs.masked(MSIX, 1)).isFalse();
        assertThat(e.read()).isEqualTo(1); // once, however many triggers were held
        assertThat(maskEvents).containsExactly("2:1+1=true", "2:1+1=false");

        set(DATA_NONE | ACTION_UNMASK, MSIX, 1, 1); // nothing pending: nothing fires
        assertThat(e.read()).isZero();
        irqs.trigger(MSIX, 1);
        assertThat(e.read()).isEqualTo(1);
    }

    @Test
    void boolMaskActsOnSelectedVectorsAndReportsRuns() {
        byte[] bytes = {1, 1, 0, 1, 0, 1, 1};
        irqs.setIrqs(new SetIrqsRequest(27, DATA_BOOL | ACTION_MASK, MSIX, 1, 7, MemorySegment.ofArray(bytes)), null);
        assertThat(maskEvents).containsExactly("2:1+2=true", "2:4+1=true", "2:6+2=true");
        boolean[] expected = {false, true, true, false, true, false, true, true};
        for (int v = 0; v < 8; v++) {
            assertThat(irqs.masked(MSIX, v)).as("vector %d", v).isEqualTo(expected[v]);
        }
    }

    @Test
    void intxMaskAndUnmask() throws IOException {
        EventFd e = assign(INTX, 0, 1)[0];
        set(DATA_NONE | ACTION_MASK, INTX, 0, 1);
        irqs.trigger(INTX, 0);
        assertThat(e.read()).isZero();
        set(DATA_NONE | ACTION_UNMASK, INTX, 0, 1);
        assertThat(e.read()).isEqualTo(1);
        assertThat(maskEvents).containsExactly("0:0+1=true", "0:0+1=false");
    }

    @Test
    void eventFdMaskIgnoresTheFdsAndActsLikeNone() throws IOException {
        EventFd e = assign(INTX, 0, 1)[0];
        EventFd resample = clientEventFd();
        try (FdList fds = received(resample)) {
            irqs.setIrqs(new SetIrqsRequest(DATA_EVENTFD | ACTION_MASK, INTX, 0, 1), fds);
            assertThat(fds.isTaken(0)).isFalse(); // left for the caller to close
        }
        assertThat(irqs.masked(INTX, 0)).isTrue();
        irqs.trigger(INTX, 0);
        try (FdList fds = received(resample)) {
            irqs.setIrqs(new SetIrqsRequest(DATA_EVENTFD | ACTION_UNMASK, INTX, 0, 1), fds);
            assertThat(fds.isTaken(0)).isFalse();
        }
        irqs.setIrqs(new SetIrqsRequest(DATA_EVENTFD | ACTION_MASK, INTX, 0, 1), new FdList()); // no fds: fine
        assertThat(e.read()).isEqualTo(1);
        assertThat(resample.read()).isZero();
        assertThat(maskEvents).containsExactly("0:0+1=true", "0:0+1=false", "0:0+1=true");
    }

    @Test
    void configMaskAndClientMaskCombine() throws IOException {
        EventFd e = assign(MSI, 0, 1)[0];
        irqs.setMasked(MSI, 0, true);
        assertThat(irqs.masked(MSI, 0)).isTrue();
        irqs.trigger(MSI, 0);
        set(DATA_NONE | ACTION_MASK, MSI, 0, 1);
        irqs.setMasked(MSI, 0, false); // the client's mask still holds
        assertThat(irqs.masked(MSI, 0)).isTrue();
        assertThat(irqs.pending(MSI, 0)).isTrue();
        assertThat(e.read()).isZero();
        set(DATA_NONE | ACTION_UNMASK, MSI, 0, 1);
        assertThat(irqs.pending(MSI, 0)).isFalse();
        assertThat(e.read()).isEqualTo(1);
        assertThat(maskEvents).containsExactly("1:0+1=true", "1:0+1=false"); // config masks are not reported
    }

    @Test
    void configUnmaskOfAPendingVectorFiresIt() throws IOException {
        EventFd e = assign(MSIX, 3, 1)[0];
        irqs.setMasked(MSIX, 3, true);
        irqs.trigger(MSIX, 3);
        assertThat(e.read()).isZero();
        irqs.setMasked(MSIX, 3, false);
        assertThat(e.read()).isEqualTo(1);
        assertThat(irqs.pending(MSIX, 3)).isFalse();
    }

    @Test
    void functionMaskHoldsEveryVectorAndKeepsPending() throws IOException {
        EventFd[] e = assign(MSIX, 0, 3);
        irqs.setFunctionMasked(MSIX, true);
        for (int v = 0; v < 8; v++) {
            assertThat(irqs.masked(MSIX, v)).isTrue();
        }
        irqs.trigger(MSIX, 0);
        irqs.trigger(MSIX, 2);
        assertThat(e[0].read()).isZero();
        assertThat(e[2].read()).isZero();
        assertThat(irqs.pending(MSIX, 0)).isTrue();
        assertThat(irqs.pending(MSIX, 1)).isFalse();
        assertThat(irqs.pending(MSIX, 2)).isTrue();

        irqs.setFunctionMasked(MSIX, false);
        assertThat(e[0].read()).isEqualTo(1);
        assertThat(e[1].read()).isZero();
        assertThat(e[2].read()).isEqualTo(1);
        assertThat(irqs.pending(MSIX, 0)).isFalse();
        assertThat(irqs.pending(MSIX, 2)).isFalse();
    }

    @Test
    void functionMaskAndIndividualMaskInterplay() throws IOException {
        EventFd[] e = assign(MSIX, 0, 2);
        irqs.setMasked(MSIX, 1, true); // vector 1 individually masked in the table
        irqs.setFunctionMasked(MSIX, true);
        irqs.trigger(MSIX, 0);
        irqs.trigger(MSIX, 1);

        irqs.setFunctionMasked(MSIX, false); // only vector 0 fires
        assertThat(e[0].read()).isEqualTo(1);
        assertThat(e[1].read()).isZero();
        assertThat(irqs.pending(MSIX, 1)).isTrue();
        assertThat(irqs.masked(MSIX, 1)).isTrue();

        irqs.setFunctionMasked(MSIX, true);
        irqs.setMasked(MSIX, 1, false); // the function mask still holds vector 1
        assertThat(e[1].read()).isZero();
        assertThat(irqs.pending(MSIX, 1)).isTrue();

        irqs.setFunctionMasked(MSIX, false);
        assertThat(e[1].read()).isEqualTo(1);
        assertThat(irqs.pending(MSIX, 1)).isFalse();
        assertThat(e[0].read()).isZero();
    }

    @Test
    void disabledIndexDropsTriggers() throws IOException {
        EventFd e = assign(MSI, 0, 1)[0];
        irqs.trigger(MSI, 0); // never reported: enabled
        assertThat(e.read()).isEqualTo(1);
        irqs.setEnabled(MSI, false);
        irqs.trigger(MSI, 0);
        set(DATA_NONE | ACTION_TRIGGER, MSI, 0, 1);
        assertThat(e.read()).isZero();
        assertThat(irqs.droppedTriggers()).isEqualTo(2);
        irqs.setEnabled(MSI, true);
        irqs.trigger(MSI, 0);
        assertThat(e.read()).isEqualTo(1);
    }

    @Test
    void errAndReqTriggerOnly() throws IOException {
        EventFd err = assign(ERR, 0, 1)[0];
        EventFd req = assign(REQ, 0, 1)[0];
        irqs.trigger(REQ, 0);
        set(DATA_NONE | ACTION_TRIGGER, ERR, 0, 1);
        assertThat(err.read()).isEqualTo(1);
        assertThat(req.read()).isEqualTo(1);
        set(DATA_NONE | ACTION_TRIGGER, REQ, 0, 0); // disable all
        assertThat(irqs.assigned(REQ, 0)).isFalse();
    }

    @Test
    void triggerOfAVectorTheDeviceDoesNotHaveIsADeviceBug() {
        assertThatThrownBy(() -> irqs.trigger(MSI, 4)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> irqs.trigger(5, 0)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> irqs.trigger(-1, 0)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> irqs.setMasked(MSIX, 8, true)).isInstanceOf(IndexOutOfBoundsException.class);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Validation (protocol reference §8.6, libvfio-user's list), every case written by hand.

    /** A request together with the number of eventfds sent with it. */
    private record Bad(String why, SetIrqsRequest request, int fds) {
        static Bad of(String why, int flags, long index, long start, long count) {
            return new Bad(why, new SetIrqsRequest(flags, index, start, count), 0);
        }

        static Bad withFds(String why, int flags, long index, long start, long count, int fds) {
            return new Bad(why, new SetIrqsRequest(flags, index, start, count), fds);
        }

        static Bad bool(String why, int action, long index, long start, long count, int dataBytes) {
            return new Bad(why, new SetIrqsRequest(20 + dataBytes, DATA_BOOL | action, index, start, count,
                    MemorySegment.ofArray(new byte[dataBytes])), 0);
        }
    }

    private static List<Bad> badRequests() {
        return List.of(
                Bad.of("index 5", DATA_NONE | ACTION_TRIGGER, 5, 0, 1),
                Bad.of("index u32 max", DATA_NONE | ACTION_TRIGGER, 0xFFFF_FFFFL, 0, 1),
                Bad.of("no action", DATA_NONE, MSI, 0, 1),
                Bad.of("no data type", ACTION_TRIGGER, MSI, 0, 1),
                Bad.of("two data types", DATA_NONE | DATA_BOOL | ACTION_TRIGGER, MSI, 0, 1),
                Bad.of("two actions", DATA_NONE | ACTION_MASK | ACTION_UNMASK, MSI, 0, 1),
                Bad.of("unknown flag bit", DATA_NONE | ACTION_TRIGGER | 0x40, MSI, 0, 1),
                Bad.of("start = vectors", DATA_NONE | ACTION_TRIGGER, MSI, 4, 1),
                Bad.of("start beyond vectors", DATA_NONE | ACTION_TRIGGER, MSIX, 100, 1),
                Bad.of("start u32 max", DATA_NONE | ACTION_TRIGGER, MSIX, 0xFFFF_FFFFL, 1),
                Bad.of("start + count beyond vectors", DATA_NONE | ACTION_TRIGGER, MSI, 2, 3),
                Bad.of("count beyond vectors", DATA_EVENTFD | ACTION_TRIGGER, MSIX, 0, 9),
                Bad.of("start + count overflows u32", DATA_NONE | ACTION_TRIGGER, MSIX, 1, 0xFFFF_FFFFL),
                Bad.of("count 0 with start != 0", DATA_NONE | ACTION_TRIGGER, MSIX, 1, 0),
                Bad.of("count 0 with MASK", DATA_NONE | ACTION_MASK, MSIX, 0, 0),
                Bad.of("count 0 with UNMASK", DATA_NONE | ACTION_UNMASK, MSIX, 0, 0),
                Bad.of("count 0 with EVENTFD", DATA_EVENTFD | ACTION_TRIGGER, MSIX, 0, 0),
                Bad.bool("count 0 with BOOL", ACTION_TRIGGER, MSIX, 0, 0, 0),
                Bad.of("ERR MASK", DATA_NONE | ACTION_MASK, ERR, 0, 1),
                Bad.of("ERR UNMASK", DATA_NONE | ACTION_UNMASK, ERR, 0, 1),
                Bad.of("REQ MASK", DATA_NONE | ACTION_MASK, REQ, 0, 1),
                Bad.withFds("REQ EVENTFD UNMASK", DATA_EVENTFD | ACTION_UNMASK, REQ, 0, 1, 1),
                Bad.of("ERR count 2", DATA_NONE | ACTION_TRIGGER, ERR, 0, 2),
                Bad.of("REQ start 1", DATA_NONE | ACTION_TRIGGER, REQ, 1, 1),
                Bad.bool("BOOL with fewer bytes than count", ACTION_TRIGGER, MSIX, 0, 3, 2),
                Bad.bool("BOOL with more bytes than count", ACTION_MASK, MSIX, 0, 3, 4),
                new Bad("NONE with data bytes", new SetIrqsRequest(21, DATA_NONE | ACTION_TRIGGER, MSIX, 0, 1,
                        MemorySegment.ofArray(new byte[1])), 0),
                Bad.withFds("fds with DATA_NONE", DATA_NONE | ACTION_TRIGGER, MSIX, 0, 1, 1),
                Bad.withFds("fds with DATA_NONE MASK", DATA_NONE | ACTION_MASK, MSIX, 0, 1, 1),
                new Bad("fds with DATA_BOOL", SetIrqsRequest.bools(ACTION_TRIGGER, MSIX, 0, true), 1),
                Bad.withFds("fewer fds than count", DATA_EVENTFD | ACTION_TRIGGER, MSIX, 0, 3, 2),
                Bad.withFds("more fds than count", DATA_EVENTFD | ACTION_TRIGGER, MSIX, 0, 1, 2),
                Bad.withFds("fd count mismatch on MASK", DATA_EVENTFD | ACTION_MASK, MSIX, 0, 2, 1),
                Bad.of("disable all on an index without vectors", DATA_NONE | ACTION_TRIGGER, 0, 0, 0));
    }

    @Test
    void everyInvalidRequestIsRejectedWithEinvalAndChangesNothing() throws IOException {
        try (IrqController noIntx = new IrqController(new int[] {0, 4, 8, 1, 1}, null)) {
            EventFd[] msix = new EventFd[8];
            for (int v = 0; v < 8; v++) {
                msix[v] = clientEventFd();
            }
            try (FdList fds = received(msix)) {
                noIntx.setIrqs(new SetIrqsRequest(DATA_EVENTFD | ACTION_TRIGGER, MSIX, 0, 8), fds);
            }
            noIntx.setIrqs(new SetIrqsRequest(DATA_NONE | ACTION_MASK, MSIX, 0, 1), null);
            noIntx.trigger(MSIX, 0);

            for (Bad bad : badRequests()) {
                EventFd[] sent = new EventFd[bad.fds()];
                for (int i = 0; i < sent.length; i++) {
                    sent[i] = clientEventFd();
                }
                try (FdList fds = received(sent)) {
                    assertThatThrownBy(() -> noIntx.setIrqs(bad.request(), fds))
                            .as(bad.why())
                            .isInstanceOfSatisfying(VfioUserException.class, e -> {
                                assertThat(e.errno()).isEqualTo(Errno.EINVAL);
                                assertThat(e.getMessage()).contains("start " + bad.request().start())
                                        .contains("count " + bad.request().count());
                            });
                    for (int i = 0; i < sent.length; i++) {
                        assertThat(fds.isTaken(i)).as(bad.why() + ": fd %d left to the caller", i).isFalse();
                    }
                }
                // State unchanged: all MSI-X vectors assigned, vector 0 masked and pending, no trigger fired.
                for (int v = 0; v < 8; v++) {
                    assertThat(noIntx.assigned(MSIX, v)).as(bad.why()).isTrue();
                    assertThat(noIntx.masked(MSIX, v)).as(bad.why()).isEqualTo(v == 0);
                    assertThat(noIntx.pending(MSIX, v)).as(bad.why()).isEqualTo(v == 0);
                    assertThat(msix[v].read()).as(bad.why()).isZero();
                }
                for (int v = 0; v < 4; v++) {
                    assertThat(noIntx.masked(MSI, v)).isFalse();
                }
            }
            assertThat(noIntx.droppedTriggers()).isZero();
            // ...and it still works.
            noIntx.trigger(MSIX, 7);
            assertThat(msix[7].read()).isEqualTo(1);
        }
    }

    @Test
    void nonEventFdsAreRejected() throws IOException {
        try (FdList fds = new FdList()) {
            fds.add(Fds.dup(0)); // stdin: not an eventfd
            assertThatThrownBy(() -> irqs.setIrqs(new SetIrqsRequest(DATA_EVENTFD | ACTION_TRIGGER, MSI, 0, 1), fds))
                    .isInstanceOfSatisfying(VfioUserException.class,
                            e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
            assertThat(fds.isTaken(0)).isFalse();
        }
        assertThat(irqs.assigned(MSI, 0)).isFalse();
    }

    @Test
    void keptFdsAreTakenOthersStayWithTheCaller() throws IOException {
        EventFd a = clientEventFd();
        EventFd b = clientEventFd();
        FdList fds = received(a, b);
        irqs.setIrqs(new SetIrqsRequest(DATA_EVENTFD | ACTION_TRIGGER, MSIX, 6, 2), fds);
        assertThat(fds.isTaken(0)).isTrue();
        assertThat(fds.isTaken(1)).isTrue();
        int before = Fds.openFdCount();
        fds.close(); // closes nothing: both were taken
        assertThat(Fds.openFdCount()).isEqualTo(before);
        irqs.trigger(MSIX, 7);
        assertThat(b.read()).isEqualTo(1);
    }

    @Test
    void releaseAllClosesEveryEventFdAndResetsClientState() throws IOException {
        int before = Fds.openFdCount();
        EventFd[] msix = assign(MSIX, 0, 8);
        EventFd[] msi = assign(MSI, 0, 4);
        EventFd intx = assign(INTX, 0, 1)[0];
        assign(ERR, 0, 1);
        assign(REQ, 0, 1);
        assertThat(Fds.openFdCount()).isEqualTo(before + 2 * 15);
        set(DATA_NONE | ACTION_MASK, MSIX, 0, 8);
        irqs.setMasked(MSI, 2, true);
        irqs.trigger(MSIX, 3);
        irqs.trigger(MSI, 2);

        irqs.releaseAll();

        assertThat(Fds.openFdCount()).isEqualTo(before + 15); // only the client's ends remain
        for (int index = 0; index < 5; index++) {
            for (int v = 0; v < irqs.count(index); v++) {
                assertThat(irqs.assigned(index, v)).isFalse();
                assertThat(irqs.pending(index, v)).isFalse();
            }
        }
        assertThat(irqs.masked(MSIX, 3)).isFalse(); // client masks back to default
        assertThat(irqs.masked(MSI, 2)).isTrue(); // config-space mask kept: it mirrors config space
        irqs.trigger(MSIX, 3);
        irqs.trigger(INTX, 0);
        assertThat(msix[3].read()).isZero();
        assertThat(msi[2].read()).isZero();
        assertThat(intx.read()).isZero();

        // A new client can assign again.
        EventFd again = assign(MSIX, 3, 1)[0];
        irqs.trigger(MSIX, 3);
        assertThat(again.read()).isEqualTo(1);
    }

    @Test
    void closeReleasesAndRefusesFurtherRequests() throws IOException {
        int before = Fds.openFdCount();
        assign(MSIX, 0, 2);
        irqs.close();
        irqs.close();
        assertThat(Fds.openFdCount()).isEqualTo(before + 2);
        irqs.trigger(MSIX, 0);
        assertThat(irqs.droppedTriggers()).isEqualTo(1);
        EventFd late = clientEventFd();
        try (FdList fds = received(late)) {
            assertThatThrownBy(() -> irqs.setIrqs(new SetIrqsRequest(DATA_EVENTFD | ACTION_TRIGGER, MSIX, 0, 1), fds))
                    .isInstanceOf(IllegalStateException.class);
        }
        assertThat(Fds.openFdCount()).isEqualTo(before + 3); // the late server-side fd was closed
    }

    @Test
    void concurrentTriggersAndReassignmentsNeitherLoseCountsNorLeak() throws Exception {
        EventFd target = assign(MSIX, 0, 1)[0];
        int rounds = 2000;
        Thread[] threads = new Thread[2];
        for (int t = 0; t < threads.length; t++) {
            threads[t] = Thread.ofPlatform().start(() -> {
                for (int i = 0; i < rounds; i++) {
                    irqs.trigger(MSIX, 0);
                }
            });
        }
        for (int i = 0; i < 50; i++) {
            try (FdList fds = received(target)) {
                irqs.setIrqs(new SetIrqsRequest(DATA_EVENTFD | ACTION_TRIGGER, MSIX, 0, 1), fds);
            }
        }
        for (Thread t : threads) {
            t.join();
        }
        // Every trigger either reached the (shared) counter or was dropped because its fd closed under it.
        assertThat(target.read() + irqs.droppedTriggers()).isEqualTo(2L * rounds);
    }
}
