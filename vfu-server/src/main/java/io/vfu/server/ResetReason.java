package io.vfu.server;

/** Why the device is being reset (libvfio-user's reset reasons). */
public enum ResetReason {
    /** The client sent DEVICE_RESET. */
    CLIENT_REQUEST,
    /** The client disconnected; its DMA mappings and IRQ fds are gone. */
    LOST_CONNECTION,
    /** A PCI function-level reset requested through config space. */
    FUNCTION_LEVEL_RESET
}
