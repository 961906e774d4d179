package io.vfu.cli;

import io.vfu.client.pci.PciConfig;
import io.vfu.core.protocol.Capabilities;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.RegionCapability;

/**
 * The text of {@code vfu info}: the PCI part in the style of {@code lspci -vvv}, then the vfio-user part
 * (regions, IRQs, migration, server). Deterministic for a given device: no addresses of this process, no
 * times, tabs for indentation.
 */
final class InfoText {
    private final StringBuilder out = new StringBuilder();

    private InfoText() {
    }

    static String render(Inspection in) {
        InfoText t = new InfoText();
        t.pci(in);
        t.regions(in);
        t.irqs(in);
        t.migration(in);
        t.server(in);
        return t.out.toString();
    }

    private void line(String format, Object... args) {
        out.append(String.format(format, args)).append('\n');
    }

    private static String flag(String name, boolean on) {
        return name + (on ? "+" : "-");
    }

    // ------------------------------------------------------------------------------------------------

    private void pci(Inspection in) {
        if (in.config().isEmpty()) {
            line("PCI: config space not available (%s)", in.configError());
            return;
        }
        PciConfig c = in.config().get();
        line("%04x:%04x %s [%04x] (rev %02x, prog-if %02x)", c.vendorId(), c.deviceId(),
                Inspection.className(c.baseClass()), c.classCode() >>> 8, c.revision(), c.progIf());
        line("\tSubsystem: %04x:%04x", c.subsystemVendorId(), c.subsystemId());
        line("\tHeader type: %02x, config space %d bytes", c.headerType(), c.size());
        int cmd = c.command();
        line("\tControl: %s %s %s %s %s %s", flag("I/O", (cmd & 0x1) != 0), flag("Mem", (cmd & 0x2) != 0),
                flag("BusMaster", (cmd & 0x4) != 0), flag("ParErr", (cmd & 0x40) != 0),
                flag("SERR", (cmd & 0x100) != 0), flag("DisINTx", (cmd & 0x400) != 0));
        int st = c.status();
        line("\tStatus: %s %s %s %s %s %s", flag("Cap", (st & 0x10) != 0), flag("INTx", (st & 0x8) != 0),
                flag(">TAbort", (st & 0x1000) != 0), flag("<MAbort", (st & 0x2000) != 0),
                flag(">SERR", (st & 0x4000) != 0), flag("<PERR", (st & 0x8000) != 0));
        if (c.interruptPin() != 0) {
            line("\tInterrupt: pin %s routed to IRQ %d",
                    c.interruptPin() <= 4 ? String.valueOf((char) ('A' + c.interruptPin() - 1)) : "?" + c.interruptPin(),
                    c.interruptLine());
        }
        for (PciConfig.Bar bar : c.bars()) {
            long size = in.regionSize(bar.index());
            if (size == 0) {
                continue;
            }
            switch (bar.type()) {
                case IO -> line("\tRegion %d: I/O ports at %04x [size=%s]", bar.index(), bar.address(), Inspection.size(size));
                case MEM32 -> line("\tRegion %d: Memory at %08x (32-bit, %s) [size=%s]", bar.index(), bar.address(),
                        bar.prefetchable() ? "prefetchable" : "non-prefetchable", Inspection.size(size));
                case MEM64 -> line("\tRegion %d: Memory at %016x (64-bit, %s) [size=%s]", bar.index(), bar.address(),
                        bar.prefetchable() ? "prefetchable" : "non-prefetchable", Inspection.size(size));
            }
        }
        long rom = in.regionSize(io.vfu.core.protocol.RegionIndex.ROM);
        if (rom > 0) {
            line("\tExpansion ROM at %08x [%s] [size=%s]", c.expansionRom() & 0xffff_f800L,
                    (c.expansionRom() & 1) != 0 ? "enabled" : "disabled", Inspection.size(rom));
        }
        for (PciConfig.Capability cap : c.capabilities()) {
            capability(cap);
        }
        for (PciConfig.ExtendedCapability cap : c.extendedCapabilities()) {
            extended(cap);
        }
        for (String p : c.problems()) {
            line("\tWarning: %s", p);
        }
    }

    private void capability(PciConfig.Capability cap) {
        String at = String.format("\tCapabilities: [%02x] ", cap.offset());
        switch (cap) {
            case PciConfig.PowerManagement pm -> {
                line("%sPower Management version %d", at, pm.version());
                int pme = pm.pmeSupport();
                line("\t\tFlags: %s %s %s PME(%s,%s,%s,%s,%s)", flag("DSI", pm.dsi()), flag("D1", pm.d1Support()),
                        flag("D2", pm.d2Support()), flag("D0", (pme & 1) != 0), flag("D1", (pme & 2) != 0),
                        flag("D2", (pme & 4) != 0), flag("D3hot", (pme & 8) != 0), flag("D3cold", (pme & 16) != 0));
                line("\t\tStatus: D%s %s %s %s", pm.powerState() == 3 ? "3hot" : String.valueOf(pm.powerState()),
                        flag("NoSoftRst", pm.noSoftReset()), flag("PME-Enable", pm.pmeEnable()), flag("PME", pm.pmeStatus()));
            }
            case PciConfig.Msi msi -> {
                line("%sMSI: %s Count=%d/%d Maskable%s 64bit%s", at, flag("Enable", msi.enabled()),
                        msi.vectorsEnabled(), msi.vectorsCapable(), msi.perVectorMask() ? "+" : "-",
                        msi.address64() ? "+" : "-");
                line("\t\tAddress: %016x  Data: %04x", msi.address(), msi.data());
                if (msi.perVectorMask()) {
                    line("\t\tMasking: %08x  Pending: %08x", msi.mask(), msi.pending());
                }
            }
            case PciConfig.Msix x -> {
                line("%sMSI-X: %s Count=%d %s", at, flag("Enable", x.enabled()), x.tableSize(),
                        flag("Masked", x.functionMask()));
                line("\t\tVector table: BAR=%d offset=%08x", x.tableBir(), x.tableOffset());
                line("\t\tPBA: BAR=%d offset=%08x", x.pbaBir(), x.pbaOffset());
            }
            case PciConfig.PciExpress e -> {
                line("%sExpress (v%d) %s", at, e.version(), e.portTypeName());
                line("\t\tDevCap: MaxPayload %d bytes", e.maxPayloadSupported());
                line("\t\tDevCtl: MaxPayload %d bytes, MaxReadReq %d bytes", e.maxPayload(), e.maxReadRequest());
                line("\t\tLnkCap: Speed %s, Width x%d", PciConfig.PciExpress.speedName(e.maxLinkSpeed()), e.maxLinkWidth());
                line("\t\tLnkSta: Speed %s, Width x%d", PciConfig.PciExpress.speedName(e.linkSpeed()), e.linkWidth());
            }
            case PciConfig.VendorSpecific v -> {
                line("%sVendor Specific Information: Len=%02x", at, v.length());
                if (v.data().length > 0) {
                    line("\t\tData: %s", hex(v.data()));
                }
            }
            case PciConfig.Unknown u -> line("%s#%02x [unknown]", at, u.id());
        }
    }

    private void extended(PciConfig.ExtendedCapability cap) {
        String at = String.format("\tCapabilities: [%03x v%d] ", cap.offset(), cap.version());
        switch (cap) {
            case PciConfig.DeviceSerialNumber d -> line("%sDevice Serial Number %s", at, d.serialString());
            case PciConfig.VendorExtended v -> line("%sVendor Specific Information: ID=%04x Rev=%d Len=%03x", at,
                    v.vsecId(), v.vsecRev(), v.vsecLength());
            case PciConfig.UnknownExtended u -> line("%sExtended Capability ID %#x", at, u.id());
        }
    }

    private static String hex(byte[] data) {
        StringBuilder sb = new StringBuilder();
        for (byte b : data) {
            if (!sb.isEmpty()) {
                sb.append(' ');
            }
            sb.append(String.format("%02x", b & 0xff));
        }
        return sb.toString();
    }

    // ------------------------------------------------------------------------------------------------

    private void regions(Inspection in) {
        line("Regions: %d", in.regions().size());
        for (Inspection.Region r : in.regions()) {
            if (r.error() != null) {
                line("\t%-2d %-6s error: %s", r.index(), r.name(), r.error());
                continue;
            }
            if (r.size() == 0) {
                line("\t%-2d %-6s -", r.index(), r.name());
                continue;
            }
            String flags = (r.readable() ? "R" : "-") + (r.writable() ? "W" : "-") + (r.mmap() ? "M" : "-");
            line("\t%-2d %-6s size %#x (%s) flags %s%s", r.index(), r.name(), r.size(), Inspection.size(r.size()), flags,
                    r.mmap() ? String.format(" offset %#x", r.offset()) : "");
            for (RegionCapability.Area a : r.sparseAreas()) {
                line("\t\tmmap area %#x-%#x (%s)", a.offset(), a.offset() + a.size() - 1, Inspection.size(a.size()));
            }
            r.type().ifPresent(t -> line("\t\ttype %d subtype %d", t.type(), t.subtype()));
        }
    }

    private void irqs(Inspection in) {
        line("IRQs: %d", in.irqs().size());
        for (Inspection.Irq i : in.irqs()) {
            if (i.error() != null) {
                line("\t%-2d %-5s error: %s", i.index(), IrqIndex.name(i.index()), i.error());
            } else {
                line("\t%-2d %-5s count %d flags %s", i.index(), IrqIndex.name(i.index()), i.count(),
                        String.join(",", Inspection.irqFlags(i.flags())));
            }
        }
    }

    private void migration(Inspection in) {
        line("Migration:");
        if (in.migration().isEmpty()) {
            line("\tnot supported");
        } else {
            MigrationFeatures f = in.migration().get();
            line("\tFeatures: STOP_COPY+ %s %s", flag("P2P", f.hasP2p()), flag("PRE_COPY", f.hasPreCopy()));
            line("\tState: %s", in.state().map(Enum::name).orElse("unknown"));
        }
        line("\tDMA logging: %s", in.dmaLogging() ? "supported" : "not supported");
    }

    /** Marks a value the server did not send (the spec's default applies). */
    private static String dflt(boolean absent) {
        return absent ? " (default)" : "";
    }

    private void server(Inspection in) {
        Capabilities c = in.capabilities();
        line("Server:");
        line("\tVersion: %d.%d", in.major(), in.minor());
        line("\tmax_data_xfer_size: %d%s", c.maxDataXferSizeOrDefault(), dflt(c.maxDataXferSize().isEmpty()));
        line("\tmax_msg_fds: %d%s", c.maxMsgFdsOrDefault(), dflt(c.maxMsgFds().isEmpty()));
        line("\tmax_dma_maps: %d%s", c.maxDmaMapsOrDefault(), dflt(c.maxDmaMaps().isEmpty()));
        line("\tpgsizes: %#x%s", c.pgsizesOrDefault(), dflt(c.pgsizes().isEmpty()));
        line("\twrite_multiple: %s%s", c.writeMultipleOrDefault() ? "yes" : "no", dflt(c.writeMultiple().isEmpty()));
        line("\ttwin_socket: %s", in.twinSocket() ? "active" : (c.twinSocketSupported() ? "offered" : "no"));
    }
}
