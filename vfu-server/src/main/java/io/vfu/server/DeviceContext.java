package io.vfu.server;

import io.vfu.core.protocol.MigrationState;
import java.lang.foreign.MemorySegment;

/**
 * What a device may use while it is served: client memory, its interrupts, its own memory-backed regions.
 *
 * <p>{@link #dma()} and {@link #irqs()} are thread-safe. The context exists from {@link VfioUserServer}
 * start to close; DMA succeeds only while a client has memory mapped.
 */
public interface DeviceContext {
    /** Client (guest) memory by IOVA. */
    Dma dma();

    /** The device's interrupts. */
    Irqs irqs();

    /**
     * The memory of a memory-backed region (the same memfd the client may mmap), or {@code null} for a
     * trapped or absent region.
     */
    MemorySegment regionMemory(int index);

    /** Reads config space (e.g. to look at the command register or a BAR address). */
    void readConfig(long offset, MemorySegment dst);

    /** The current migration state (RUNNING when the device has no migration support). */
    MigrationState migrationState();
}
