package io.vfu.server;

import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.server.pci.BarLayout;
import io.vfu.server.pci.Capability;
import io.vfu.server.pci.ConfigSpaceSpec;
import io.vfu.server.pci.ExtendedCapability;
import io.vfu.server.pci.PciIdentity;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * A PCI endpoint to serve over vfio-user: identity, BARs, expansion ROM, capabilities, interrupts, and the
 * device's callbacks. Immutable; assemble it with {@link #builder()}.
 *
 * {@snippet :
 * PciDevice device = PciDevice.builder()
 *         .identity(new PciIdentity(0x1af4, 0x10f0, 0x1af4, 0x0001, 0xff0000, 1))
 *         .bar(0, Bar.mem32(Region.trapped(0x1000, registers)))
 *         .bar(2, Bar.mem64(Region.memory(0x10000)))
 *         .capability(Capability.PowerManagement.standard())
 *         .capability(new Capability.Msi(4, true, true))
 *         .irqs(IrqIndex.INTX, 1)
 *         .onAttach(ctx -> this.ctx = ctx)
 *         .build();
 * }
 */
public final class PciDevice {
    private final PciIdentity identity;
    private final Bar[] bars;
    private final Region rom;
    private final Region vga;
    private final List<Capability> capabilities;
    private final List<ExtendedCapability> extended;
    private final int[] irqCounts;
    private final int interruptPin;
    private final MigrationHandler migration;
    private final ResetHandler reset;
    private final List<IoEventFd> ioEventFds;
    private final Consumer<DeviceContext> onAttach;

    private PciDevice(Builder b) {
        this.identity = Objects.requireNonNull(b.identity, "identity is required");
        this.bars = b.bars.clone();
        this.rom = b.rom;
        this.vga = b.vga;
        this.capabilities = List.copyOf(b.capabilities);
        this.extended = List.copyOf(b.extended);
        this.migration = b.migration;
        this.reset = b.reset;
        this.ioEventFds = List.copyOf(b.ioEventFds);
        this.onAttach = b.onAttach;
        this.irqCounts = b.irqCounts.clone();
        for (Capability c : capabilities) {
            if (c instanceof Capability.Msi msi && irqCounts[IrqIndex.MSI] < 0) {
                irqCounts[IrqIndex.MSI] = msi.vectors();
            } else if (c instanceof Capability.Msix msix && irqCounts[IrqIndex.MSIX] < 0) {
                irqCounts[IrqIndex.MSIX] = msix.vectors();
            }
        }
        if (irqCounts[IrqIndex.INTX] < 0) {
            irqCounts[IrqIndex.INTX] = 1;
        }
        for (int i = 0; i < irqCounts.length; i++) {
            if (irqCounts[i] < 0) {
                irqCounts[i] = i == IrqIndex.ERR || i == IrqIndex.REQ ? 1 : 0;
            }
        }
        this.interruptPin = irqCounts[IrqIndex.INTX] > 0 ? 1 : 0;
        validate();
    }

    private void validate() {
        for (int i = 0; i < 6; i++) {
            if (bars[i] != null && bars[i].kind() == Bar.Kind.MEMORY64) {
                if (i == 5 || bars[i + 1] != null) {
                    throw new IllegalArgumentException("64-bit BAR" + i + " needs BAR" + (i + 1) + " free");
                }
            }
        }
        for (Capability c : capabilities) {
            if (c instanceof Capability.Msix msix) {
                requireInBar(msix.tableBar(), msix.tableOffset(), msix.tableSize(), "MSI-X table");
                requireInBar(msix.pbaBar(), msix.pbaOffset(), msix.pbaSize(), "MSI-X PBA");
            }
        }
        if (irqCounts[IrqIndex.ERR] > 1 || irqCounts[IrqIndex.REQ] > 1) {
            throw new IllegalArgumentException("ERR and REQ have at most one vector");
        }
        for (IoEventFd e : ioEventFds) {
            Region r = region(e.region());
            if (r == null || e.offset() + Math.max(1, e.size()) > r.size()) {
                throw new IllegalArgumentException("ioeventfd outside region " + e.region());
            }
        }
        configSpaceSpec(); // validates capability combinations
    }

    private void requireInBar(int bar, long offset, long size, String what) {
        Bar b = bars[bar];
        if (b == null || b.kind() == Bar.Kind.IO || offset + size > b.region().size()) {
            throw new IllegalArgumentException(what + " does not fit in memory BAR" + bar);
        }
        // The library emulates the MSI-X structures: a client mapping them would bypass the emulation.
        for (MmapArea a : b.region().mmapAreas()) {
            if (offset < a.end() && a.offset() < offset + size) {
                throw new IllegalArgumentException(what + " overlaps mmap area " + a + " of BAR" + bar);
            }
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    public PciIdentity identity() {
        return identity;
    }

    /** The BAR at {@code index} (0–5), or {@code null}. */
    public Bar bar(int index) {
        return bars[index];
    }

    /** The region at a vfio region index (BARs 0–5, ROM 6, VGA 8), or {@code null}; config space (7) is not a {@link Region}. */
    public Region region(int index) {
        return switch (index) {
            case 0, 1, 2, 3, 4, 5 -> bars[index] == null ? null : bars[index].region();
            case RegionIndex.ROM -> rom;
            case RegionIndex.VGA -> vga;
            default -> null;
        };
    }

    public List<Capability> capabilities() {
        return capabilities;
    }

    public List<ExtendedCapability> extendedCapabilities() {
        return extended;
    }

    /** Vectors per IRQ index (INTx, MSI, MSI-X, ERR, REQ). */
    public int irqCount(int index) {
        return irqCounts[index];
    }

    public int[] irqCounts() {
        return irqCounts.clone();
    }

    /** The migration handler, or {@code null} if the device cannot migrate. */
    public MigrationHandler migration() {
        return migration;
    }

    /** The reset handler (never null: a no-op by default). */
    public ResetHandler reset() {
        return reset;
    }

    public List<IoEventFd> ioEventFds() {
        return ioEventFds;
    }

    /** Called once when a server starts serving this device, with the device's context. */
    public Consumer<DeviceContext> onAttach() {
        return onAttach;
    }

    /** The config-space description derived from this device. */
    public ConfigSpaceSpec configSpaceSpec() {
        BarLayout[] layouts = new BarLayout[6];
        for (int i = 0; i < 6; i++) {
            if (bars[i] != null) {
                layouts[i] = BarLayout.of(bars[i]);
            }
        }
        long romSize = 0;
        if (rom != null) {
            romSize = Math.max(2048, Long.highestOneBit(Math.max(1, rom.size())));
            if (romSize < rom.size()) {
                romSize <<= 1;
            }
        }
        return new ConfigSpaceSpec(identity, layouts, romSize, interruptPin, capabilities, extended);
    }

    @Override
    public String toString() {
        return "PciDevice[" + identity + ", bars=" + Arrays.toString(bars) + "]";
    }

    /**
     * Builds a {@link PciDevice}. Defaults: no BARs, no ROM, no capabilities; INTx 1 vector, MSI/MSI-X as
     * many vectors as their capabilities declare (0 without), ERR 1, REQ 1; no migration; a no-op reset.
     */
    public static final class Builder {
        private PciIdentity identity;
        private final Bar[] bars = new Bar[6];
        private Region rom;
        private Region vga;
        private final List<Capability> capabilities = new ArrayList<>();
        private final List<ExtendedCapability> extended = new ArrayList<>();
        private final int[] irqCounts = {-1, -1, -1, -1, -1};
        private MigrationHandler migration;
        private ResetHandler reset = reason -> { };
        private final List<IoEventFd> ioEventFds = new ArrayList<>();
        private Consumer<DeviceContext> onAttach = ctx -> { };

        private Builder() {
        }

        public Builder identity(PciIdentity identity) {
            this.identity = identity;
            return this;
        }

        /** BAR {@code index} (0–5). A 64-bit BAR also takes {@code index + 1}. */
        public Builder bar(int index, Bar bar) {
            Objects.checkIndex(index, 6);
            bars[index] = Objects.requireNonNull(bar);
            return this;
        }

        /** Expansion ROM (region 6); served read-only. */
        public Builder rom(Region region) {
            this.rom = region.readOnly();
            return this;
        }

        /** Legacy VGA region (region 8). */
        public Builder vga(Region region) {
            this.vga = region;
            return this;
        }

        public Builder capability(Capability capability) {
            capabilities.add(Objects.requireNonNull(capability));
            return this;
        }

        public Builder extendedCapability(ExtendedCapability capability) {
            extended.add(Objects.requireNonNull(capability));
            return this;
        }

        /** Number of vectors for an IRQ index ({@link IrqIndex}); overrides the defaults. */
        public Builder irqs(int index, int count) {
            Objects.checkIndex(index, 5);
            if (count < 0) {
                throw new IllegalArgumentException("negative IRQ count");
            }
            irqCounts[index] = count;
            return this;
        }

        public Builder migration(MigrationHandler handler) {
            this.migration = handler;
            return this;
        }

        public Builder reset(ResetHandler handler) {
            this.reset = Objects.requireNonNull(handler);
            return this;
        }

        public Builder ioEventFd(IoEventFd ioEventFd) {
            ioEventFds.add(Objects.requireNonNull(ioEventFd));
            return this;
        }

        /** Receives the device's {@link DeviceContext} when a server starts serving it. */
        public Builder onAttach(Consumer<DeviceContext> callback) {
            this.onAttach = Objects.requireNonNull(callback);
            return this;
        }

        public PciDevice build() {
            return new PciDevice(this);
        }
    }
}
