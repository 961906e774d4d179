package io.vfu.cli;

import io.vfu.client.RegionInfo;
import io.vfu.client.VfioUserClient;
import io.vfu.client.pci.PciConfig;
import io.vfu.core.protocol.Capabilities;
import io.vfu.core.protocol.DeviceFeature;
import io.vfu.core.protocol.DeviceInfoReply;
import io.vfu.core.protocol.IrqInfoReply;
import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.RegionCapability;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.core.protocol.VfioUserException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Everything {@code vfu info} shows, gathered from a connected client in one pass; rendered by
 * {@link InfoText} and {@link InfoJson}.
 *
 * @param major         server's VERSION major
 * @param minor         server's VERSION minor
 * @param capabilities  server's VERSION capabilities
 * @param twinSocket    whether a twin socket is in use
 * @param device        DEVICE_GET_INFO
 * @param regions       one entry per region index below {@code num_regions}
 * @param config        decoded config space, empty if the config region is absent or unreadable
 * @param configError   why config space could not be read, or null
 * @param irqs          one entry per IRQ index below {@code num_irqs}
 * @param migration     migration features, empty when the device does not support migration
 * @param state         current migration state, empty when not supported
 * @param dmaLogging    whether DMA_LOGGING_START is supported (PROBE of feature 6 with SET)
 */
record Inspection(int major, int minor, Capabilities capabilities, boolean twinSocket, DeviceInfoReply device,
                  List<Region> regions, Optional<PciConfig> config, String configError, List<Irq> irqs,
                  Optional<MigrationFeatures> migration, Optional<MigrationState> state, boolean dmaLogging) {

    /** One region: its reply, or the error the server gave. */
    record Region(int index, long size, long offset, boolean readable, boolean writable, boolean mmap,
                  List<RegionCapability.Area> sparseAreas, Optional<RegionCapability.RegionType> type, String error) {
        String name() {
            return RegionIndex.name(index);
        }

        boolean present() {
            return error == null && size > 0;
        }
    }

    /** One IRQ index: its reply, or the error. */
    record Irq(int index, long count, int flags, String error) {
    }

    static Inspection of(VfioUserClient client) throws IOException {
        DeviceInfoReply device = client.deviceInfo();
        List<Region> regions = new ArrayList<>();
        for (int i = 0; i < device.numRegions(); i++) {
            try (RegionInfo r = client.regionInfo(i)) {
                regions.add(new Region(i, r.size(), r.offset(), r.readable(), r.writable(), r.mappable(),
                        r.sparseMmapAreas(), r.regionType(), null));
            } catch (VfioUserException e) {
                regions.add(new Region(i, 0, 0, false, false, false, List.of(), Optional.empty(), e.getMessage()));
            }
        }
        Optional<PciConfig> config = Optional.empty();
        String configError = null;
        if (regions.size() > RegionIndex.CONFIG && regions.get(RegionIndex.CONFIG).present()) {
            Region c = regions.get(RegionIndex.CONFIG);
            int size = (int) Math.min(c.size(), PciConfig.PCIE_SIZE);
            if (size < PciConfig.HEADER_SIZE) {
                configError = "config region of " + c.size() + " bytes is smaller than the 64-byte header";
            } else {
                try {
                    config = Optional.of(PciConfig.parse(client.read(RegionIndex.CONFIG, 0, size)));
                } catch (VfioUserException e) {
                    configError = e.getMessage();
                }
            }
        } else {
            configError = "no config region";
        }
        List<Irq> irqs = new ArrayList<>();
        for (int i = 0; i < device.numIrqs(); i++) {
            try {
                IrqInfoReply r = client.irqInfo(i);
                irqs.add(new Irq(i, r.count(), r.flags(), null));
            } catch (VfioUserException e) {
                irqs.add(new Irq(i, 0, 0, e.getMessage()));
            }
        }
        Optional<MigrationFeatures> migration = Optional.empty();
        Optional<MigrationState> state = Optional.empty();
        try {
            migration = Optional.of(client.migrationFeatures());
            state = Optional.of(client.migrationState());
        } catch (VfioUserException e) {
            switch (e.errno()) {
                case EINVAL, ENOTTY, EOPNOTSUPP, ENOSYS -> { }
                default -> throw e;
            }
        }
        boolean dmaLogging = client.featureProbe(DeviceFeature.DMA_LOGGING_START, DeviceFeature.SET);
        return new Inspection(client.serverVersion().major(), client.serverVersion().minor(),
                client.serverCapabilities(), client.twinSocketActive(), device, List.copyOf(regions), config,
                configError, List.copyOf(irqs), migration, state, dmaLogging);
    }

    /** The region's size if it is present, else 0. */
    long regionSize(int index) {
        return index < regions.size() && regions.get(index).present() ? regions.get(index).size() : 0;
    }

    /** IRQ flag names, e.g. {@code [EVENTFD, MASKABLE]}. */
    static List<String> irqFlags(int flags) {
        List<String> names = new ArrayList<>();
        if ((flags & IrqInfoReply.FLAG_EVENTFD) != 0) {
            names.add("EVENTFD");
        }
        if ((flags & IrqInfoReply.FLAG_MASKABLE) != 0) {
            names.add("MASKABLE");
        }
        if ((flags & IrqInfoReply.FLAG_AUTOMASKED) != 0) {
            names.add("AUTOMASKED");
        }
        if ((flags & IrqInfoReply.FLAG_NORESIZE) != 0) {
            names.add("NORESIZE");
        }
        int unknown = flags & ~0xf;
        if (unknown != 0) {
            names.add(String.format("0x%x", unknown));
        }
        return names;
    }

    /** Base class names (PCI Code and ID Assignment), as lspci prints them for an unknown sub-class. */
    static String className(int baseClass) {
        return switch (baseClass) {
            case 0x00 -> "Unclassified device";
            case 0x01 -> "Mass storage controller";
            case 0x02 -> "Network controller";
            case 0x03 -> "Display controller";
            case 0x04 -> "Multimedia controller";
            case 0x05 -> "Memory controller";
            case 0x06 -> "Bridge";
            case 0x07 -> "Communication controller";
            case 0x08 -> "Generic system peripheral";
            case 0x09 -> "Input device controller";
            case 0x0a -> "Docking station";
            case 0x0b -> "Processor";
            case 0x0c -> "Serial bus controller";
            case 0x0d -> "Wireless controller";
            case 0x0e -> "Intelligent controller";
            case 0x0f -> "Satellite communications controller";
            case 0x10 -> "Encryption controller";
            case 0x11 -> "Signal processing controller";
            case 0x12 -> "Processing accelerators";
            case 0x13 -> "Non-Essential Instrumentation";
            case 0x40 -> "Coprocessor";
            case 0xff -> "Unassigned class";
            default -> "Class";
        };
    }

    /** A size like lspci prints it: {@code 4K}, {@code 1M}, {@code 2G}, or bytes. */
    static String size(long bytes) {
        if (bytes >= 1L << 30 && bytes % (1L << 30) == 0) {
            return (bytes >>> 30) + "G";
        }
        if (bytes >= 1L << 20 && bytes % (1L << 20) == 0) {
            return (bytes >>> 20) + "M";
        }
        if (bytes >= 1L << 10 && bytes % (1L << 10) == 0) {
            return (bytes >>> 10) + "K";
        }
        return Long.toString(bytes);
    }
}
