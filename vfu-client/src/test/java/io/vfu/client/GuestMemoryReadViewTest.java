package io.vfu.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.VfioUserException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The view a DMA_READ reply is sent from ({@link GuestMemory#acquireReadView}): the guest's bytes themselves, no
 * copy, and the lock that keeps the region from being removed is held only between acquire and release.
 */
class GuestMemoryReadViewTest {
    @Test
    void theViewIsTheGuestMemoryAndReleasingItLetsTheRegionGo() throws Exception {
        try (GuestMemory memory = new GuestMemory()) {
            GuestMemory.Region r = memory.allocateWithoutFd(0x4000, 0x1000, true, true);
            r.mapped(true);
            r.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0x100, 0x1122334455667788L);
            MemorySegment view = memory.acquireReadView(0x4100, 8);
            try {
                assertThat(view.address()).as("a view, not a copy").isEqualTo(r.segment().address() + 0x100);
                assertThat(view.get(ValueLayout.JAVA_LONG_UNALIGNED, 0)).isEqualTo(0x1122334455667788L);
            } finally {
                memory.releaseReadView();
            }
            assertThat(r.dmaBytesRead()).isEqualTo(8);
            removeFromAnotherThread(memory, r); // would wait forever if the read lock were still held
            assertThat(memory.region(0x4000)).isEmpty();
        }
    }

    @Test
    void aRefusedReadHoldsNoLock() throws Exception {
        try (GuestMemory memory = new GuestMemory()) {
            GuestMemory.Region r = memory.allocateWithoutFd(0x0, 0x1000, false, true);
            r.mapped(true);
            assertThatThrownBy(() -> memory.acquireReadView(0x0, 8))
                    .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EPERM));
            assertThatThrownBy(() -> memory.acquireReadView(0xff8, 16))
                    .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EFAULT));
            removeFromAnotherThread(memory, r);
            assertThat(memory.regions()).isEmpty();
        }
    }

    private static void removeFromAnotherThread(GuestMemory memory, GuestMemory.Region r) throws Exception {
        CompletableFuture.runAsync(() -> memory.remove(r), task -> Thread.ofPlatform().start(task))
                .get(10, TimeUnit.SECONDS);
    }
}
