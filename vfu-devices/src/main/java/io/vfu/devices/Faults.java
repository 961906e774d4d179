package io.vfu.devices;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.Bar;
import io.vfu.server.PciDevice;
import io.vfu.server.Region;
import io.vfu.server.RegionHandler;
import java.lang.foreign.MemorySegment;
import java.util.Locale;

/**
 * Test-only fault injection: proves that an interop check can fail. {@code vfu serve} applies the fault named
 * by the environment variable {@link #ENV} ({@code VFU_FAULT}) to the device it serves; with the variable unset
 * or empty the device is served unchanged.
 *
 * <p>Faults:
 * <ul>
 *   <li>{@code bar-read}: every read of a trapped BAR (regions 0–5 with a {@link RegionHandler}) fails with
 *       EIO. Writes, config space and memory-backed BAR accesses are unchanged. A VMM turns the error into
 *       all-ones reads in the guest (QEMU does).</li>
 * </ul>
 */
public final class Faults {
    /** The environment variable {@code vfu serve} reads. */
    public static final String ENV = "VFU_FAULT";
    /** The fault that fails trapped BAR reads. */
    public static final String BAR_READ = "bar-read";

    private Faults() {
    }

    /**
     * The device with {@code fault} applied.
     *
     * @param fault a fault name, or null / blank for none
     * @return {@code device} itself when there is no fault, else a copy whose trapped BARs misbehave
     * @throws IllegalArgumentException an unknown fault name
     */
    public static PciDevice apply(PciDevice device, String fault) {
        if (fault == null || fault.isBlank()) {
            return device;
        }
        return switch (fault.strip().toLowerCase(Locale.ROOT)) {
            case BAR_READ -> failBarReads(device);
            default -> throw new IllegalArgumentException("unknown " + ENV + " fault '" + fault
                    + "' (known: " + BAR_READ + ")");
        };
    }

    private static PciDevice failBarReads(PciDevice device) {
        PciDevice.Builder b = PciDevice.builder().identity(device.identity());
        for (int i = 0; i < 6; i++) {
            Bar bar = device.bar(i);
            if (bar == null) {
                continue;
            }
            Region r = bar.region();
            if (r.handler() != null) {
                RegionHandler inner = r.handler();
                int index = i;
                RegionHandler failing = new RegionHandler() {
                    @Override
                    public void read(long offset, MemorySegment dst) {
                        throw new VfioUserException(Errno.EIO, "injected fault (" + ENV + "=" + BAR_READ
                                + "): read of BAR" + index + " at 0x" + Long.toHexString(offset));
                    }

                    @Override
                    public void write(long offset, MemorySegment src) {
                        inner.write(offset, src);
                    }
                };
                r = new Region(r.size(), r.readable(), r.writable(), failing, r.memory(), r.mmapAreas());
            }
            b.bar(i, new Bar(bar.kind(), bar.prefetchable(), r));
        }
        if (device.region(6) != null) {
            b.rom(device.region(6));
        }
        if (device.region(8) != null) {
            b.vga(device.region(8));
        }
        device.capabilities().forEach(b::capability);
        device.extendedCapabilities().forEach(b::extendedCapability);
        int[] irqs = device.irqCounts();
        for (int i = 0; i < irqs.length; i++) {
            b.irqs(i, irqs[i]);
        }
        if (device.migration() != null) {
            b.migration(device.migration());
        }
        device.ioEventFds().forEach(b::ioEventFd);
        return b.reset(device.reset())
                .onAttach(device.onAttach())
                .dmaListener(device.dmaListener())
                .build();
    }
}
