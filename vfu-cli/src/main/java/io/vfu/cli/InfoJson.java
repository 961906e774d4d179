package io.vfu.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vfu.client.pci.PciConfig;
import io.vfu.core.protocol.Capabilities;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.RegionCapability;

/**
 * {@code vfu info --json}: the same content as {@link InfoText}, as one JSON object with snake_case keys.
 * Numbers are JSON numbers (ids, sizes, offsets, addresses; u64 values above 2^63 as unsigned integers).
 */
final class InfoJson {
    private static final JsonNodeFactory F = JsonNodeFactory.instance;
    private static final ObjectMapper MAPPER = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private InfoJson() {
    }

    static String render(Inspection in) {
        ObjectNode root = F.objectNode();
        in.config().ifPresentOrElse(c -> root.set("pci", pci(c, in)), () -> root.put("pci_error", in.configError()));
        ArrayNode regions = root.putArray("regions");
        for (Inspection.Region r : in.regions()) {
            ObjectNode o = regions.addObject().put("index", r.index()).put("name", r.name());
            if (r.error() != null) {
                o.put("error", r.error());
                continue;
            }
            o.put("size", u64(r.size())).put("offset", u64(r.offset())).put("read", r.readable()).put("write", r.writable())
                    .put("mmap", r.mmap());
            ArrayNode areas = o.putArray("sparse_mmap");
            for (RegionCapability.Area a : r.sparseAreas()) {
                areas.addObject().put("offset", u64(a.offset())).put("size", u64(a.size()));
            }
            r.type().ifPresent(t -> o.putObject("type").put("type", t.type()).put("subtype", t.subtype()));
        }
        ArrayNode irqs = root.putArray("irqs");
        for (Inspection.Irq i : in.irqs()) {
            ObjectNode o = irqs.addObject().put("index", i.index()).put("name", IrqIndex.name(i.index()));
            if (i.error() != null) {
                o.put("error", i.error());
            } else {
                o.put("count", i.count());
                ArrayNode flags = o.putArray("flags");
                Inspection.irqFlags(i.flags()).forEach(flags::add);
            }
        }
        ObjectNode mig = root.putObject("migration");
        mig.put("supported", in.migration().isPresent());
        in.migration().ifPresent(f -> {
            ArrayNode features = mig.putArray("features");
            features.add("STOP_COPY");
            if (f.hasP2p()) {
                features.add("P2P");
            }
            if (f.hasPreCopy()) {
                features.add("PRE_COPY");
            }
            mig.put("flags", f.flags());
        });
        in.state().ifPresent(s -> mig.put("state", s.name()));
        mig.put("dma_logging", in.dmaLogging());
        Capabilities c = in.capabilities();
        ObjectNode server = root.putObject("server");
        server.put("major", in.major()).put("minor", in.minor())
                .put("max_data_xfer_size", c.maxDataXferSizeOrDefault())
                .put("max_msg_fds", c.maxMsgFdsOrDefault())
                .put("max_dma_maps", c.maxDmaMapsOrDefault())
                .put("pgsizes", u64(c.pgsizesOrDefault()))
                .put("write_multiple", c.writeMultipleOrDefault())
                .put("twin_socket", in.twinSocket());
        try {
            return MAPPER.writeValueAsString(root) + "\n";
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("JSON tree serialisation failed", e);
        }
    }

    private static JsonNode pci(PciConfig c, Inspection in) {
        ObjectNode o = F.objectNode();
        o.put("vendor_id", c.vendorId()).put("device_id", c.deviceId())
                .put("subsystem_vendor_id", c.subsystemVendorId()).put("subsystem_id", c.subsystemId())
                .put("class_code", c.classCode()).put("class_name", Inspection.className(c.baseClass()))
                .put("revision", c.revision()).put("header_type", c.headerType())
                .put("command", c.command()).put("status", c.status())
                .put("interrupt_pin", c.interruptPin()).put("interrupt_line", c.interruptLine())
                .put("config_size", c.size());
        ArrayNode bars = o.putArray("bars");
        for (PciConfig.Bar b : c.bars()) {
            long size = in.regionSize(b.index());
            if (size == 0) {
                continue;
            }
            bars.addObject().put("index", b.index()).put("type", b.type().name().toLowerCase(java.util.Locale.ROOT))
                    .put("prefetchable", b.prefetchable()).put("address", u64(b.address())).put("size", size);
        }
        ArrayNode caps = o.putArray("capabilities");
        for (PciConfig.Capability cap : c.capabilities()) {
            ObjectNode n = caps.addObject().put("offset", cap.offset()).put("id", cap.id());
            switch (cap) {
                case PciConfig.PowerManagement pm -> n.put("name", "Power Management").put("version", pm.version())
                        .put("pmc", pm.pmc()).put("d1", pm.d1Support()).put("d2", pm.d2Support())
                        .put("pme_support", pm.pmeSupport()).put("power_state", pm.powerState())
                        .put("no_soft_reset", pm.noSoftReset()).put("pme_enable", pm.pmeEnable());
                case PciConfig.Msi m -> n.put("name", "MSI").put("enabled", m.enabled())
                        .put("vectors_capable", m.vectorsCapable()).put("vectors_enabled", m.vectorsEnabled())
                        .put("address64", m.address64()).put("per_vector_mask", m.perVectorMask())
                        .put("address", u64(m.address())).put("data", m.data());
                case PciConfig.Msix x -> n.put("name", "MSI-X").put("table_size", x.tableSize())
                        .put("table_bir", x.tableBir()).put("table_offset", x.tableOffset())
                        .put("pba_bir", x.pbaBir()).put("pba_offset", x.pbaOffset())
                        .put("enabled", x.enabled()).put("function_mask", x.functionMask());
                case PciConfig.PciExpress e -> n.put("name", "PCI Express").put("version", e.version())
                        .put("port_type", e.portType()).put("port_type_name", e.portTypeName())
                        .put("max_payload_supported", e.maxPayloadSupported()).put("max_payload", e.maxPayload())
                        .put("max_read_request", e.maxReadRequest())
                        .put("max_link_speed", PciConfig.PciExpress.speedName(e.maxLinkSpeed()))
                        .put("max_link_width", e.maxLinkWidth())
                        .put("link_speed", PciConfig.PciExpress.speedName(e.linkSpeed()))
                        .put("link_width", e.linkWidth());
                case PciConfig.VendorSpecific v -> n.put("name", "Vendor Specific").put("length", v.length())
                        .put("data", java.util.HexFormat.of().formatHex(v.data()));
                case PciConfig.Unknown u -> n.put("name", "unknown");
            }
        }
        ArrayNode ext = o.putArray("extended_capabilities");
        for (PciConfig.ExtendedCapability cap : c.extendedCapabilities()) {
            ObjectNode n = ext.addObject().put("offset", cap.offset()).put("id", cap.id()).put("version", cap.version());
            switch (cap) {
                case PciConfig.DeviceSerialNumber d -> n.put("name", "Device Serial Number").put("serial", d.serialString());
                case PciConfig.VendorExtended v -> n.put("name", "Vendor Specific Extended").put("vsec_id", v.vsecId())
                        .put("vsec_rev", v.vsecRev()).put("vsec_length", v.vsecLength());
                case PciConfig.UnknownExtended u -> n.put("name", "unknown");
            }
        }
        ArrayNode problems = o.putArray("problems");
        c.problems().forEach(problems::add);
        return o;
    }

    private static java.math.BigInteger u64(long v) {
        return new java.math.BigInteger(Long.toUnsignedString(v));
    }
}
