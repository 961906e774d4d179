package io.vfu.core.protocol;

/**
 * PCI IRQ index types (protocol reference §8.2), the {@code index} of DEVICE_GET_IRQ_INFO and
 * DEVICE_SET_IRQS. Plain {@code int} constants because the wire field is a u32 that a newer device may
 * extend.
 */
public final class IrqIndex {
    /** Legacy INTx (count ≤ 1). */
    public static final int INTX = 0;
    public static final int MSI = 1;
    public static final int MSIX = 2;
    /** Error notification (count ≤ 1). */
    public static final int ERR = 3;
    /** Device request / unplug notification (count ≤ 1). */
    public static final int REQ = 4;
    /** Number of IRQ index types of a PCI device ({@code num_irqs} of DEVICE_GET_INFO). */
    public static final int PCI_NUM_IRQS = 5;

    private IrqIndex() {
    }

    /** The spec name of an index, e.g. {@code "MSIX"}, or {@code "#n"} for others. */
    public static String name(long index) {
        return switch ((int) Math.min(index, Integer.MAX_VALUE)) {
            case INTX -> "INTX";
            case MSI -> "MSI";
            case MSIX -> "MSIX";
            case ERR -> "ERR";
            case REQ -> "REQ";
            default -> "#" + index;
        };
    }
}
