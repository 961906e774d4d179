package io.vfu.server;

/** Why the device is being reset (libvfio-user's reset reasons). */
public enum ResetReason {
    /** The client sent DEVICE_RESET. */
    CLIENT_REQUEST,
    /** The client disconnected; its DMA mappings and IRQ fds are gone. */
    LOST_CONNECTION,
    /** A function reset the guest requested through config space: PCIe FLR, or D3hot to D0 without No_Soft_Reset. */
    FUNCTION_LEVEL_RESET
}
