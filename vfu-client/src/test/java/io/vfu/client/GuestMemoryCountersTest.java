package io.vfu.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.protocol.VfioUserException;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** {@link GuestMemory.Region#dmaBytesRead()} / {@link GuestMemory.Region#dmaBytesWritten()}: served DMA only. */
class GuestMemoryCountersTest {
    @Test
    void counts_served_message_dma_per_region() {
        try (GuestMemory memory = new GuestMemory()) {
            GuestMemory.Region a = memory.allocateWithoutFd(0x0, 0x1000, true, true);
            GuestMemory.Region b = memory.allocateWithoutFd(0x1000, 0x1000, true, false);
            a.mapped(true);
            b.mapped(true);
            memory.dmaWrite(0x10, MemorySegment.ofArray(new byte[100]));
            memory.dmaRead(0x0, 2048, MemorySegment.ofArray(new byte[2048]));
            memory.dmaRead(0x1800, 8, MemorySegment.ofArray(new byte[8]));
            assertThatThrownBy(() -> memory.dmaWrite(0x1000, MemorySegment.ofArray(new byte[4])))
                    .isInstanceOf(VfioUserException.class); // refused: not counted
            assertThat(a.dmaBytesWritten()).isEqualTo(100);
            assertThat(a.dmaBytesRead()).isEqualTo(2048);
            assertThat(b.dmaBytesRead()).isEqualTo(8);
            assertThat(b.dmaBytesWritten()).isZero();
        }
    }

    /**
     * A DMA_WRITE received in place: the pages are marked dirty whether or not all the data came (what landed
     * must be migrated), only a complete write is counted, and the memory's lock is let go either way.
     */
    @Test
    void aWriteViewMarksDirtyEvenWhenAbandonedAndCountsOnlyWhatCompleted() throws Exception {
        try (GuestMemory memory = new GuestMemory()) {
            GuestMemory.Region a = memory.allocateWithoutFd(0x0, 0x4000, true, true);
            a.mapped(true);
            GuestMemory.WriteView done = memory.acquireWriteView(0x10, 100);
            done.segment().fill((byte) 7);
            memory.releaseWriteView(done, true);
            GuestMemory.WriteView cut = memory.acquireWriteView(0x2000, 0x1000);
            memory.releaseWriteView(cut, false);
            assertThat(a.segment().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0x10 + 99)).isEqualTo((byte) 7);
            assertThat(a.dmaBytesWritten()).isEqualTo(100);
            assertThat(a.dirtyPageCount()).as("pages 0 and 2").isEqualTo(2);
            assertThatThrownBy(() -> memory.acquireWriteView(0x3f00, 0x200)).isInstanceOf(VfioUserException.class);
            // No lock left behind: another thread can remove the region.
            java.util.concurrent.CompletableFuture.runAsync(() -> memory.remove(a))
                    .get(10, java.util.concurrent.TimeUnit.SECONDS);
        }
    }
}
