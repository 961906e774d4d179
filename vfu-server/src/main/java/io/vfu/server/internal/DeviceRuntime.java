package io.vfu.server.internal;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.Fds;
import io.vfu.core.linux.Mapping;
import io.vfu.core.linux.MemFd;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.protocol.Wire;
import io.vfu.server.DeviceContext;
import io.vfu.server.Dma;
import io.vfu.server.Irqs;
import io.vfu.server.MmapArea;
import io.vfu.server.PciDevice;
import io.vfu.server.Region;
import io.vfu.server.ResetReason;
import io.vfu.server.dma.DmaController;
import io.vfu.server.irq.IrqController;
import io.vfu.server.pci.ConfigSpace;
import io.vfu.server.pci.MsixTable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;

/**
 * Everything a served device is made of at run time, and that outlives a client connection: config space,
 * the memfds of memory regions, interrupts, DMA table and migration state. Region access lives here so that
 * the session only decodes and routes.
 */
public final class DeviceRuntime implements DeviceContext, AutoCloseable {
    /** Largest REGION_READ/WRITE count we accept (what we advertise as max_data_xfer_size). */
    public static final long MAX_REGION_ACCESS = 1L << 20;
    /** Default cap on simultaneous DMA mappings (QEMU's max_dma_maps). */
    public static final int MAX_DMA_MAPPINGS = 65535;

    private final PciDevice device;
    private final ConfigSpace config;
    private final IrqController irqs;
    private final DmaController dma;
    private final MigrationController migration;
    private final MemFd[] memfds = new MemFd[9];
    private final Mapping[] memory = new Mapping[9];

    public DeviceRuntime(PciDevice device) {
        this(device, MAX_DMA_MAPPINGS);
    }

    /** @param maxDmaMappings most simultaneous DMA mappings (the table itself scales far beyond QEMU's 65535) */
    public DeviceRuntime(PciDevice device, int maxDmaMappings) {
        this.device = device;
        this.irqs = new IrqController(device.irqCounts(), null);
        this.config = new ConfigSpace(device.configSpaceSpec(), new ConfigListener());
        MsixTable msix = config.msixTable();
        if (msix != null) {
            msix.pendingSource(v -> irqs.pending(IrqIndex.MSIX, v));
        }
        this.dma = new DmaController(null, maxDmaMappings);
        dma.listener(device.dmaListener());
        this.migration = new MigrationController(device.migration());
        try {
            for (int i = 0; i < memory.length; i++) {
                Region r = device.region(i);
                if (r != null && r.memory() && r.size() > 0) {
                    long page = Fds.pageSize();
                    for (MmapArea a : r.mmapAreas()) {
                        if (a.offset() % page != 0 || a.size() % page != 0) {
                            throw new IllegalArgumentException("region " + i + ": mmap area " + a
                                    + " is not page aligned");
                        }
                    }
                    long size = (r.size() + page - 1) / page * page;
                    memfds[i] = MemFd.create("vfu-region" + i, size);
                    memory[i] = memfds[i].map(0, size, true);
                }
            }
        } catch (IOException e) {
            close();
            throw new UncheckedIOException("cannot create region memory", e);
        }
    }

    public PciDevice device() {
        return device;
    }

    public ConfigSpace config() {
        return config;
    }

    public IrqController irqController() {
        return irqs;
    }

    public DmaController dmaController() {
        return dma;
    }

    public MigrationController migration() {
        return migration;
    }

    /** The memfd backing a memory region (for GET_REGION_INFO), or -1. */
    public int regionFd(int index) {
        return index >= 0 && index < memfds.length && memfds[index] != null ? memfds[index].fd() : -1;
    }

    // ---- DeviceContext

    @Override
    public Dma dma() {
        return dma;
    }

    @Override
    public Irqs irqs() {
        return irqs;
    }

    @Override
    public MemorySegment regionMemory(int index) {
        if (index < 0 || index >= memory.length || memory[index] == null) {
            return null;
        }
        return memory[index].segment().asSlice(0, device.region(index).size());
    }

    @Override
    public void readConfig(long offset, MemorySegment dst) {
        config.read(offset, dst);
    }

    @Override
    public MigrationState migrationState() {
        return migration.state();
    }

    // ---- region access

    /** Size of a region index as reported by GET_REGION_INFO (0 for absent regions). */
    public long regionSize(int index) {
        if (index == RegionIndex.CONFIG) {
            return config.size();
        }
        Region r = device.region(index);
        return r == null ? 0 : r.size();
    }

    /** REGION_READ: fills {@code dst} from region {@code index} at {@code offset}. */
    public void read(int index, long offset, MemorySegment dst) {
        checkAccess(index, offset, dst.byteSize(), false);
        if (dst.byteSize() == 0) {
            return;
        }
        if (index == RegionIndex.CONFIG) {
            config.read(offset, dst);
            return;
        }
        MsixTable msix = config.msixTable();
        if (msix != null && index < 6 && msix.covers(index, offset, dst.byteSize())) {
            msix.read(index, offset, dst);
            return;
        }
        Region r = device.region(index);
        if (useMemory(index, r, offset, dst.byteSize())) {
            dst.copyFrom(memory[index].segment().asSlice(offset, dst.byteSize()));
        } else {
            r.handler().read(offset, dst);
        }
    }

    /** REGION_WRITE: applies {@code src} to region {@code index} at {@code offset}. */
    public void write(int index, long offset, MemorySegment src) {
        checkAccess(index, offset, src.byteSize(), true);
        if (src.byteSize() == 0) {
            return;
        }
        if (index == RegionIndex.CONFIG) {
            config.write(offset, src);
            return;
        }
        MsixTable msix = config.msixTable();
        if (msix != null && index < 6 && msix.covers(index, offset, src.byteSize())) {
            msix.write(index, offset, src);
            return;
        }
        Region r = device.region(index);
        if (useMemory(index, r, offset, src.byteSize())) {
            memory[index].segment().asSlice(offset, src.byteSize()).copyFrom(src);
        } else {
            r.handler().write(offset, src);
        }
    }

    /**
     * Message access to a memory region goes to memory when the range lies in an mmap area (the client could
     * have mapped it: both paths must agree) or when the region has no handler.
     */
    private boolean useMemory(int index, Region r, long offset, long length) {
        if (memory[index] == null) {
            return false;
        }
        if (r.handler() == null) {
            return true;
        }
        for (MmapArea a : r.mmapAreas()) {
            if (offset >= a.offset() && offset + length <= a.end()) {
                return true;
            }
        }
        return false;
    }

    private void checkAccess(int index, long offset, long count, boolean write) {
        String what = write ? "REGION_WRITE" : "REGION_READ";
        if (index < 0 || index > RegionIndex.VGA) {
            throw new VfioUserException(Errno.EINVAL, what + ": no region " + index);
        }
        if (count > MAX_REGION_ACCESS) {
            throw new VfioUserException(Errno.EINVAL, what + ": count " + count + " exceeds " + MAX_REGION_ACCESS);
        }
        long size = regionSize(index);
        if (size == 0) {
            throw new VfioUserException(Errno.EINVAL, what + ": region " + index + " is not implemented");
        }
        if (offset < 0 || offset > size || count > size - offset) {
            throw new VfioUserException(Errno.EINVAL, what + ": offset " + Wire.hex(offset) + " + count " + count
                    + " beyond region " + index + " size " + Wire.hex(size));
        }
        if (index != RegionIndex.CONFIG) {
            Region r = device.region(index);
            if (write ? !r.writable() : !r.readable()) {
                throw new VfioUserException(Errno.EINVAL, what + ": region " + index + " is not "
                        + (write ? "writable" : "readable"));
            }
        }
    }

    // ---- lifecycle

    /** DEVICE_RESET from the client, or a function-level reset. */
    public void reset(ResetReason reason) {
        device.reset().reset(reason);
        migration.afterReset();
    }

    /** The client went away: release its DMA mappings and IRQ fds, keep device state (spec §2). */
    public void clientGone() {
        dma.messenger(null);
        dma.unmapAll();
        if (dma.logging()) {
            dma.stopLogging();
        }
        irqs.releaseAll();
        MigrationState s = migration.state();
        if (s.isSaving()) {
            // An aborted save: the source keeps running with its state intact ("nothing lost").
            try {
                migration.setState(MigrationState.RUNNING);
            } catch (VfioUserException e) {
                migration.force(MigrationState.ERROR);
            }
        } else if (s == MigrationState.RESUMING) {
            // An incomplete load is never presented as a device state: ERROR until the next client resets.
            migration.force(MigrationState.ERROR);
        }
        device.reset().reset(ResetReason.LOST_CONNECTION);
    }

    @Override
    public void close() {
        dma.close();
        irqs.close();
        for (int i = 0; i < memory.length; i++) {
            if (memory[i] != null) {
                memory[i].close();
                memory[i] = null;
            }
            if (memfds[i] != null) {
                memfds[i].close();
                memfds[i] = null;
            }
        }
    }

    /** Config-space side effects: interrupt masking, and resets the guest requests through config space. */
    private final class ConfigListener implements ConfigSpace.Listener {
        @Override
        public void functionLevelReset() {
            device.reset().reset(ResetReason.FUNCTION_LEVEL_RESET);
        }

        @Override
        public void powerStateChanged(int oldState, int newState) {
            // D3hot -> D0 without No_Soft_Reset is a reset of the function (PCI PM 1.2 §5.6.1).
            if (oldState == 3 && newState == 0 && !softResetSuppressed()) {
                device.reset().reset(ResetReason.FUNCTION_LEVEL_RESET);
            }
        }

        private boolean softResetSuppressed() {
            return device.capabilities().stream().anyMatch(c -> c instanceof io.vfu.server.pci.Capability.PowerManagement pm
                    && pm.noSoftReset());
        }

        @Override
        public void msiMaskChanged(int vector, boolean masked) {
            irqs.setMasked(IrqIndex.MSI, vector, masked);
        }

        @Override
        public void msixChanged(boolean enabled, boolean functionMask) {
            irqs.setFunctionMasked(IrqIndex.MSIX, functionMask);
        }

        @Override
        public void msixVectorMaskChanged(int vector, boolean masked) {
            irqs.setMasked(IrqIndex.MSIX, vector, masked);
        }
    }
}
