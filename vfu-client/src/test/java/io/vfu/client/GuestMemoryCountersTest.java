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
}
