package io.vfu.devices;

import io.vfu.core.protocol.IrqIndex;
import io.vfu.server.PciDevice;
import io.vfu.server.pci.PciIdentity;

/**
 * A PCI device that does nothing, with the external behaviour of libvfio-user's sample {@code null}
 * ({@code samples/null.c}, checked at commit 7e7a0a6): conventional PCI, every identity register 0 (vendor,
 * device, subsystem, class, revision), a 256-byte config space without capabilities and no region beyond it,
 * no interrupt pin (INTx 0, MSI 0, MSI-X 0; ERR 1 and REQ 1 as every libvfio-user device), no migration.
 * Built only on vfu-server's public API.
 *
 * <p>Difference from the C sample: the C sample does not enable DMA, so libvfio-user acknowledges DMA_MAP and
 * DMA_UNMAP without doing anything and refuses the DMA logging features; vfu-server always manages the client's
 * mappings and offers dirty logging (it is the library's job), so here DMA_MAP really maps and a PROBE of
 * DMA_LOGGING_START succeeds. The device never does DMA either way.
 */
public final class NullDevice {
    /** Identity registers: all zero, as the C sample (it never calls {@code vfu_pci_set_id}). */
    public static final PciIdentity IDENTITY = new PciIdentity(0, 0, 0, 0, 0, 0);

    /** The null device; it has no state. */
    public NullDevice() {
    }

    /** The device description to serve. */
    public PciDevice build() {
        return PciDevice.builder()
                .identity(IDENTITY)
                .irqs(IrqIndex.INTX, 0)
                .build();
    }
}
