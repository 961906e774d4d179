package io.vfu.server;

/**
 * The device's interrupts. {@link #trigger} signals the eventfd the client assigned to a vector; a vector
 * without an eventfd, or of a disabled type, is dropped (counted, not an error); a masked MSI/MSI-X vector
 * sets its pending bit and fires when unmasked.
 *
 * <p>Thread-safe: a device may trigger from any thread (timers, worker threads).
 */
public interface Irqs {
    /** Signals vector {@code vector} of IRQ index {@code index} ({@link io.vfu.core.protocol.IrqIndex}). */
    void trigger(int index, int vector);

    /** Number of vectors the device declared for {@code index}. */
    int count(int index);

    /** Whether the client assigned an eventfd to the vector. */
    boolean assigned(int index, int vector);

    /** Whether the vector is masked (by SET_IRQS MASK, the MSI mask bits, or the MSI-X table). */
    boolean masked(int index, int vector);

    /** Whether a masked vector fired and waits for its unmask. */
    boolean pending(int index, int vector);
}
