package io.vfu.client.pci;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Objects;

/**
 * A decoded PCI configuration space, as read from a device's config region (vfio-user region 7, 256 bytes for
 * conventional PCI, 4096 for PCI Express): the type-0 header, the BAR registers, the standard capability list
 * from the pointer at 0x34 and the extended capability list from 0x100.
 *
 * <pre>
 *   0x00 vendor id (16)   0x02 device id (16)   0x04 command (16)   0x06 status (16)
 *   0x08 revision (8)     0x09 class code (24: prog-if, sub-class, base class)
 *   0x0e header type (8, bit 7 = multi-function)
 *   0x10..0x27 BAR0..BAR5 (32 each; a 64-bit memory BAR also takes the next register)
 *   0x2c subsystem vendor id (16)   0x2e subsystem id (16)   0x30 expansion ROM (32)
 *   0x34 capabilities pointer (8)   0x3c interrupt line (8)  0x3d interrupt pin (8)
 * </pre>
 *
 * <p>Decoding is total: every input of 64..4096 bytes yields a value. A capability list that loops, points
 * outside the config space or below the header, or a capability whose registers do not fit, ends the walk
 * (or becomes an {@link Capability.Unknown} / {@link ExtendedCapability.Unknown}) and is reported in
 * {@link #problems()}; nothing throws. The walks follow the Linux kernel's rules: pointers are masked with
 * {@code ~3}, the standard list is walked only when status bit 4 (Capabilities List) is set, at most 48
 * standard and 480 extended entries, an extended header of 0 or 0xffffffff means "none".
 *
 * <p>Only the type-0 (endpoint) header is decoded in full; for other header types only BAR0 and BAR1 exist and
 * the subsystem ids read as 0 (a problem says so).
 *
 * {@snippet :
 * PciConfig config = PciConfig.parse(client.read(RegionIndex.CONFIG, 0, 4096));
 * config.capabilities().forEach(System.out::println);
 * }
 *
 * @param size                 bytes decoded (the input length)
 * @param vendorId             0x00
 * @param deviceId             0x02
 * @param command              0x04
 * @param status               0x06
 * @param revision             0x08
 * @param classCode            0x09–0x0b as one 24-bit value (base class in bits 23:16)
 * @param headerType           0x0e, including the multi-function bit 7
 * @param subsystemVendorId    0x2c (type 0 only, else 0)
 * @param subsystemId          0x2e (type 0 only, else 0)
 * @param expansionRom         0x30 raw register (type 0 only, else 0)
 * @param interruptLine        0x3c
 * @param interruptPin         0x3d (0 none, 1 INTA# … 4 INTD#)
 * @param bars                 the BAR registers in index order; the upper half of a 64-bit BAR is not listed
 * @param capabilities         the standard capability list in list order
 * @param extendedCapabilities the extended capability list in list order
 * @param problems             what was wrong with the lists (empty for a well-formed config space)
 */
public record PciConfig(int size, int vendorId, int deviceId, int command, int status, int revision, int classCode,
                        int headerType, int subsystemVendorId, int subsystemId, long expansionRom,
                        int interruptLine, int interruptPin, List<Bar> bars, List<Capability> capabilities,
                        List<ExtendedCapability> extendedCapabilities, List<String> problems) {

    /** Smallest accepted input: the 64-byte header. */
    public static final int HEADER_SIZE = 64;
    /** Size of a conventional PCI config space. */
    public static final int PCI_SIZE = 256;
    /** Size of a PCI Express config space; extended capabilities live in 0x100..0xfff. */
    public static final int PCIE_SIZE = 4096;
    /** Status register bit 4: the capability list is present. */
    public static final int STATUS_CAP_LIST = 0x0010;

    static final int MAX_STANDARD_CAPS = 48;
    static final int MAX_EXTENDED_CAPS = (PCIE_SIZE - PCI_SIZE) / 8;

    public PciConfig {
        bars = List.copyOf(bars);
        capabilities = List.copyOf(capabilities);
        extendedCapabilities = List.copyOf(extendedCapabilities);
        problems = List.copyOf(problems);
    }

    /** Base class (bits 23:16 of the class code), e.g. 0x02 network controller. */
    public int baseClass() {
        return classCode >>> 16;
    }

    /** Sub-class (bits 15:8 of the class code). */
    public int subClass() {
        return (classCode >>> 8) & 0xff;
    }

    /** Programming interface (bits 7:0 of the class code). */
    public int progIf() {
        return classCode & 0xff;
    }

    /** The first standard capability of {@code type}, if any. */
    public <T extends Capability> java.util.Optional<T> capability(Class<T> type) {
        return capabilities.stream().filter(type::isInstance).map(type::cast).findFirst();
    }

    /** The first extended capability of {@code type}, if any. */
    public <T extends ExtendedCapability> java.util.Optional<T> extendedCapability(Class<T> type) {
        return extendedCapabilities.stream().filter(type::isInstance).map(type::cast).findFirst();
    }

    // ------------------------------------------------------------------------------------------------
    // BARs

    /** BAR decoding types (BAR bit 0, and bits 2:1 of a memory BAR). */
    public enum BarType {
        /** Memory, 32-bit address (bits 2:1 = 00; the legacy "below 1 MiB" type 01 is reported as this too). */
        MEM32,
        /** Memory, 64-bit address (bits 2:1 = 10): the next register holds bits 63:32. */
        MEM64,
        /** I/O space (bit 0 = 1). */
        IO
    }

    /**
     * One BAR register (or register pair, for 64-bit memory).
     *
     * @param index        0–5
     * @param type         decoding type
     * @param prefetchable bit 3 of a memory BAR
     * @param address      the programmed base address (type bits cleared); 0 when not programmed
     * @param raw          the raw low register
     */
    public record Bar(int index, BarType type, boolean prefetchable, long address, int raw) {
    }

    // ------------------------------------------------------------------------------------------------
    // Standard capabilities

    /** A capability of the standard list (0x40–0xff). */
    public sealed interface Capability {
        /** Config-space offset of the capability header. */
        int offset();

        /** Capability id (PCI Code and ID Assignment). */
        int id();
    }

    /**
     * Power Management (id 0x01; PCI PM 1.2 §3.2): PMC at +2, PMCSR at +4.
     *
     * @param version     PMC bits 2:0 (3 = PCI PM 1.2)
     * @param pmc         the raw PM Capabilities register (flags)
     * @param pmcsr       the raw PM Control/Status register
     */
    public record PowerManagement(int offset, int version, int pmc, int pmcsr) implements Capability {
        public static final int ID = 0x01;

        @Override
        public int id() {
            return ID;
        }

        /** PMC bit 9. */
        public boolean d1Support() {
            return (pmc & 0x0200) != 0;
        }

        /** PMC bit 10. */
        public boolean d2Support() {
            return (pmc & 0x0400) != 0;
        }

        /** PMC bits 15:11: the states from which PME# can be asserted (bit 0 = D0 … bit 4 = D3cold). */
        public int pmeSupport() {
            return pmc >>> 11;
        }

        /** PMC bit 5: device specific initialisation. */
        public boolean dsi() {
            return (pmc & 0x0020) != 0;
        }

        /** PMCSR bits 1:0: 0 = D0, 1 = D1, 2 = D2, 3 = D3hot. */
        public int powerState() {
            return pmcsr & 0x3;
        }

        /** PMCSR bit 3. */
        public boolean noSoftReset() {
            return (pmcsr & 0x0008) != 0;
        }

        /** PMCSR bit 8. */
        public boolean pmeEnable() {
            return (pmcsr & 0x0100) != 0;
        }

        /** PMCSR bit 15. */
        public boolean pmeStatus() {
            return (pmcsr & 0x8000) != 0;
        }
    }

    /**
     * MSI (id 0x05; PCI 3.0 §6.8.1).
     *
     * @param control        the Message Control register (+2)
     * @param address        message address (upper half only with 64-bit addressing)
     * @param data           message data
     * @param mask           mask bits (0 without per-vector masking)
     * @param pending        pending bits (0 without per-vector masking)
     */
    public record Msi(int offset, int control, long address, int data, int mask, int pending) implements Capability {
        public static final int ID = 0x05;

        @Override
        public int id() {
            return ID;
        }

        /** Control bit 0. */
        public boolean enabled() {
            return (control & 0x1) != 0;
        }

        /** Multiple Message Capable (bits 3:1) as a vector count: 1, 2, 4 … 32. */
        public int vectorsCapable() {
            return 1 << Math.min(5, (control >>> 1) & 0x7);
        }

        /** Multiple Message Enable (bits 6:4) as a vector count. */
        public int vectorsEnabled() {
            return 1 << Math.min(5, (control >>> 4) & 0x7);
        }

        /** Control bit 7. */
        public boolean address64() {
            return (control & 0x0080) != 0;
        }

        /** Control bit 8. */
        public boolean perVectorMask() {
            return (control & 0x0100) != 0;
        }

        /** Bytes the capability occupies: 10/14 (32/64-bit), plus 10 with per-vector masking. */
        static int length(int control) {
            return ((control & 0x0080) != 0 ? 14 : 10) + ((control & 0x0100) != 0 ? 10 : 0);
        }
    }

    /**
     * MSI-X (id 0x11; PCI 3.0 §6.8.2).
     *
     * @param control     the Message Control register (+2)
     * @param tableBir    BAR index of the table (table register bits 2:0)
     * @param tableOffset table offset in that BAR (bits 31:3, as a byte offset)
     * @param pbaBir      BAR index of the pending bit array
     * @param pbaOffset   PBA offset in that BAR
     */
    public record Msix(int offset, int control, int tableBir, long tableOffset, int pbaBir, long pbaOffset)
            implements Capability {
        public static final int ID = 0x11;

        @Override
        public int id() {
            return ID;
        }

        /** Table Size (bits 10:0) + 1: the number of vectors. */
        public int tableSize() {
            return (control & 0x07ff) + 1;
        }

        /** Control bit 15. */
        public boolean enabled() {
            return (control & 0x8000) != 0;
        }

        /** Control bit 14. */
        public boolean functionMask() {
            return (control & 0x4000) != 0;
        }
    }

    /**
     * PCI Express (id 0x10; PCI Express Base §7.5.3).
     *
     * @param flags         PCI Express Capabilities register (+2): version 3:0, port type 7:4
     * @param deviceCap     Device Capabilities (+4)
     * @param deviceControl Device Control (+8)
     * @param linkCap       Link Capabilities (+0xc)
     * @param linkStatus    Link Status (+0x12)
     */
    public record PciExpress(int offset, int flags, int deviceCap, int deviceControl, int linkCap, int linkStatus)
            implements Capability {
        public static final int ID = 0x10;

        @Override
        public int id() {
            return ID;
        }

        /** Capability version (flags bits 3:0). */
        public int version() {
            return flags & 0xf;
        }

        /** Device/port type (flags bits 7:4): 0 endpoint, 1 legacy endpoint, 4 root port, 9 RC integrated endpoint, … */
        public int portType() {
            return (flags >>> 4) & 0xf;
        }

        /** The port type as {@code lspci} names it. */
        public String portTypeName() {
            return switch (portType()) {
                case 0 -> "Endpoint";
                case 1 -> "Legacy Endpoint";
                case 4 -> "Root Port";
                case 5 -> "Upstream Port";
                case 6 -> "Downstream Port";
                case 7 -> "PCI-Express to PCI/PCI-X Bridge";
                case 8 -> "PCI/PCI-X to PCI-Express Bridge";
                case 9 -> "Root Complex Integrated Endpoint";
                case 10 -> "Root Complex Event Collector";
                default -> "Unknown type " + portType();
            };
        }

        /** Max Payload Size Supported in bytes (Device Capabilities bits 2:0: 128 &lt;&lt; n). */
        public int maxPayloadSupported() {
            return 128 << Math.min(5, deviceCap & 0x7);
        }

        /** Max Payload Size in bytes (Device Control bits 7:5). */
        public int maxPayload() {
            return 128 << Math.min(5, (deviceControl >>> 5) & 0x7);
        }

        /** Max Read Request Size in bytes (Device Control bits 14:12). */
        public int maxReadRequest() {
            return 128 << Math.min(5, (deviceControl >>> 12) & 0x7);
        }

        /** Max Link Speed encoding (Link Capabilities bits 3:0): 1 = 2.5 GT/s, 2 = 5, 3 = 8, 4 = 16, 5 = 32, 6 = 64. */
        public int maxLinkSpeed() {
            return linkCap & 0xf;
        }

        /** Maximum Link Width (Link Capabilities bits 9:4). */
        public int maxLinkWidth() {
            return (linkCap >>> 4) & 0x3f;
        }

        /** Current Link Speed (Link Status bits 3:0). */
        public int linkSpeed() {
            return linkStatus & 0xf;
        }

        /** Negotiated Link Width (Link Status bits 9:4). */
        public int linkWidth() {
            return (linkStatus >>> 4) & 0x3f;
        }

        /** A link speed encoding as text, e.g. {@code "2.5GT/s"}; {@code "unknown"} otherwise. */
        public static String speedName(int encoding) {
            return switch (encoding) {
                case 1 -> "2.5GT/s";
                case 2 -> "5GT/s";
                case 3 -> "8GT/s";
                case 4 -> "16GT/s";
                case 5 -> "32GT/s";
                case 6 -> "64GT/s";
                default -> "unknown";
            };
        }
    }

    /**
     * Vendor-specific (id 0x09): a length byte at +2 (covering the whole capability) then vendor bytes.
     *
     * @param length the length byte
     * @param data   the bytes after the 3-byte header (length − 3 of them, clipped to config space)
     */
    public record VendorSpecific(int offset, int length, byte[] data) implements Capability {
        public static final int ID = 0x09;

        public VendorSpecific {
            data = data.clone();
        }

        @Override
        public int id() {
            return ID;
        }

        @Override
        public byte[] data() {
            return data.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof VendorSpecific v && v.offset == offset && v.length == length
                    && java.util.Arrays.equals(v.data, data);
        }

        @Override
        public int hashCode() {
            return Objects.hash(offset, length, java.util.Arrays.hashCode(data));
        }

        @Override
        public String toString() {
            return "VendorSpecific[offset=" + offset + ", length=" + length + ", data=" + hex(data) + "]";
        }
    }

    /** A capability this decoder does not interpret (or whose registers do not fit in config space). */
    public record Unknown(int offset, int id) implements Capability {
    }

    // ------------------------------------------------------------------------------------------------
    // Extended capabilities

    /** A PCI Express extended capability (0x100–0xfff). */
    public sealed interface ExtendedCapability {
        /** Config-space offset of the header. */
        int offset();

        /** Extended capability id (header bits 15:0). */
        int id();

        /** Capability version (header bits 19:16). */
        int version();
    }

    /**
     * Device Serial Number (id 0x0003; PCI Express Base §7.9.3): lower dword at +4, upper at +8.
     *
     * @param serial the 64-bit serial number
     */
    public record DeviceSerialNumber(int offset, int version, long serial) implements ExtendedCapability {
        public static final int ID = 0x0003;

        @Override
        public int id() {
            return ID;
        }

        /** The serial as {@code lspci} prints it, most significant byte first: {@code 01-23-45-67-89-ab-cd-ef}. */
        public String serialString() {
            StringBuilder sb = new StringBuilder(23);
            for (int shift = 56; shift >= 0; shift -= 8) {
                if (sb.length() > 0) {
                    sb.append('-');
                }
                sb.append(String.format("%02x", (serial >>> shift) & 0xff));
            }
            return sb.toString();
        }
    }

    /**
     * Vendor-Specific Extended Capability (id 0x000b; PCI Express Base §7.9.5): the VSEC header at +4.
     *
     * @param vsecId     VSEC ID (bits 15:0)
     * @param vsecRev    VSEC Rev (bits 19:16)
     * @param vsecLength VSEC Length in bytes, including the 8 header bytes (bits 31:20)
     */
    public record VendorExtended(int offset, int version, int vsecId, int vsecRev, int vsecLength)
            implements ExtendedCapability {
        public static final int ID = 0x000b;

        @Override
        public int id() {
            return ID;
        }
    }

    /** An extended capability this decoder does not interpret (or that does not fit). */
    public record UnknownExtended(int offset, int id, int version) implements ExtendedCapability {
    }

    // ------------------------------------------------------------------------------------------------
    // Parsing

    /** {@link #parse(MemorySegment)} of an array. */
    public static PciConfig parse(byte[] config) {
        return parse(MemorySegment.ofArray(config.clone()));
    }

    /**
     * Decodes {@code config}: the bytes of config space from offset 0 (usually 256 or 4096 of them).
     *
     * @throws IllegalArgumentException the input is shorter than the 64-byte header or longer than 4096 bytes
     */
    public static PciConfig parse(MemorySegment config) {
        long length = config.byteSize();
        if (length < HEADER_SIZE || length > PCIE_SIZE) {
            throw new IllegalArgumentException("config space of " + length + " bytes: expected 64..4096 (256 or 4096)");
        }
        return new Parser(config, (int) length).parse();
    }

    private static final class Parser {
        private final MemorySegment c;
        private final int size;
        private final List<String> problems = new ArrayList<>();

        Parser(MemorySegment c, int size) {
            this.c = c;
            this.size = size;
        }

        int u8(int off) {
            return Byte.toUnsignedInt(c.get(ValueLayout.JAVA_BYTE, off));
        }

        int u16(int off) {
            return u8(off) | u8(off + 1) << 8;
        }

        int u32(int off) {
            return u16(off) | u16(off + 2) << 16;
        }

        PciConfig parse() {
            int status = u16(0x06);
            int headerType = u8(0x0e);
            boolean type0 = (headerType & 0x7f) == 0;
            if (!type0) {
                problems.add(String.format("header type 0x%02x is not 0: only BAR0-1 decoded, no subsystem ids",
                        headerType & 0x7f));
            }
            return new PciConfig(size, u16(0x00), u16(0x02), u16(0x04), status, u8(0x08),
                    u16(0x09) | u8(0x0b) << 16, headerType,
                    type0 ? u16(0x2c) : 0, type0 ? u16(0x2e) : 0, type0 ? Integer.toUnsignedLong(u32(0x30)) : 0,
                    u8(0x3c), u8(0x3d), bars(type0 ? 6 : 2),
                    (status & STATUS_CAP_LIST) != 0 ? capabilities() : List.of(), extended(), problems);
        }

        List<Bar> bars(int count) {
            List<Bar> bars = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                int raw = u32(0x10 + 4 * i);
                if ((raw & 1) != 0) {
                    bars.add(new Bar(i, BarType.IO, false, Integer.toUnsignedLong(raw) & ~0x3L, raw));
                    continue;
                }
                boolean prefetch = (raw & 0x8) != 0;
                long low = Integer.toUnsignedLong(raw) & ~0xfL;
                if (((raw >>> 1) & 0x3) == 2) {
                    if (i + 1 >= count) {
                        problems.add("BAR" + i + " is 64-bit but has no upper register");
                        bars.add(new Bar(i, BarType.MEM64, prefetch, low, raw));
                    } else {
                        long high = Integer.toUnsignedLong(u32(0x10 + 4 * (i + 1)));
                        bars.add(new Bar(i, BarType.MEM64, prefetch, high << 32 | low, raw));
                        i++;
                    }
                } else {
                    bars.add(new Bar(i, BarType.MEM32, prefetch, low, raw));
                }
            }
            return bars;
        }

        List<Capability> capabilities() {
            List<Capability> caps = new ArrayList<>();
            BitSet seen = new BitSet(PCI_SIZE);
            int limit = Math.min(size, PCI_SIZE);
            int ptr = u8(0x34) & ~3;
            while (ptr != 0) {
                if (ptr < HEADER_SIZE || ptr + 2 > limit) {
                    problems.add(String.format("capability pointer 0x%02x outside 0x40..0x%02x", ptr, limit - 2));
                    break;
                }
                if (seen.get(ptr)) {
                    problems.add(String.format("capability list loops back to 0x%02x", ptr));
                    break;
                }
                if (caps.size() == MAX_STANDARD_CAPS) {
                    problems.add("capability list longer than " + MAX_STANDARD_CAPS + " entries");
                    break;
                }
                seen.set(ptr);
                caps.add(capability(ptr, limit));
                ptr = u8(ptr + 1) & ~3;
            }
            return caps;
        }

        private boolean fits(int off, int length, int limit, String what) {
            if (off + length > limit) {
                problems.add(String.format("%s capability at 0x%02x needs %d bytes, beyond 0x%02x", what, off,
                        length, limit));
                return false;
            }
            return true;
        }

        Capability capability(int off, int limit) {
            int id = u8(off);
            switch (id) {
                case PowerManagement.ID -> {
                    if (fits(off, 8, limit, "Power Management")) {
                        int pmc = u16(off + 2);
                        return new PowerManagement(off, pmc & 0x7, pmc, u16(off + 4));
                    }
                }
                case Msi.ID -> {
                    int control = off + 4 <= limit ? u16(off + 2) : 0;
                    if (fits(off, Msi.length(control), limit, "MSI")) {
                        boolean a64 = (control & 0x0080) != 0;
                        long address = Integer.toUnsignedLong(u32(off + 4));
                        if (a64) {
                            address |= Integer.toUnsignedLong(u32(off + 8)) << 32;
                        }
                        int data = a64 ? off + 12 : off + 8;
                        boolean masked = (control & 0x0100) != 0;
                        return new Msi(off, control, address, u16(data), masked ? u32(data + 4) : 0,
                                masked ? u32(data + 8) : 0);
                    }
                }
                case Msix.ID -> {
                    if (fits(off, 12, limit, "MSI-X")) {
                        int table = u32(off + 4);
                        int pba = u32(off + 8);
                        return new Msix(off, u16(off + 2), table & 7, Integer.toUnsignedLong(table) & ~7L,
                                pba & 7, Integer.toUnsignedLong(pba) & ~7L);
                    }
                }
                case PciExpress.ID -> {
                    if (fits(off, 0x14, limit, "PCI Express")) {
                        return new PciExpress(off, u16(off + 2), u32(off + 4), u16(off + 8), u32(off + 0xc),
                                u16(off + 0x12));
                    }
                }
                case VendorSpecific.ID -> {
                    if (fits(off, 3, limit, "Vendor-specific")) {
                        int length = u8(off + 2);
                        int end = Math.min(limit, off + Math.max(3, length));
                        if (length < 3 || off + length > limit) {
                            problems.add(String.format("Vendor-specific capability at 0x%02x: length %d does not fit",
                                    off, length));
                        }
                        byte[] data = c.asSlice(off + 3, end - off - 3).toArray(ValueLayout.JAVA_BYTE);
                        return new VendorSpecific(off, length, data);
                    }
                }
                default -> {
                    // not interpreted
                }
            }
            return new Unknown(off, id);
        }

        List<ExtendedCapability> extended() {
            List<ExtendedCapability> caps = new ArrayList<>();
            if (size < PCI_SIZE + 4) {
                return caps;
            }
            int header = u32(PCI_SIZE);
            if (header == 0 || header == -1) {
                return caps;
            }
            BitSet seen = new BitSet(PCIE_SIZE);
            int ptr = PCI_SIZE;
            while (true) {
                if (ptr < PCI_SIZE || ptr + 4 > size) {
                    problems.add(String.format("extended capability pointer 0x%03x outside 0x100..0x%03x", ptr, size - 4));
                    break;
                }
                if (seen.get(ptr)) {
                    problems.add(String.format("extended capability list loops back to 0x%03x", ptr));
                    break;
                }
                if (caps.size() == MAX_EXTENDED_CAPS) {
                    problems.add("extended capability list longer than " + MAX_EXTENDED_CAPS + " entries");
                    break;
                }
                seen.set(ptr);
                header = u32(ptr);
                caps.add(extendedCapability(ptr, header));
                ptr = (header >>> 20) & ~3;
                if (ptr == 0) {
                    break;
                }
            }
            return caps;
        }

        ExtendedCapability extendedCapability(int off, int header) {
            int id = header & 0xffff;
            int version = (header >>> 16) & 0xf;
            if (id == DeviceSerialNumber.ID) {
                if (off + 12 <= size) {
                    long serial = Integer.toUnsignedLong(u32(off + 4)) | Integer.toUnsignedLong(u32(off + 8)) << 32;
                    return new DeviceSerialNumber(off, version, serial);
                }
                problems.add(String.format("Device Serial Number capability at 0x%03x does not fit", off));
            } else if (id == VendorExtended.ID) {
                if (off + 8 <= size) {
                    int vsec = u32(off + 4);
                    int vsecLength = vsec >>> 20;
                    if (vsecLength < 8 || off + vsecLength > size) {
                        problems.add(String.format("Vendor-specific extended capability at 0x%03x: length %d does not fit",
                                off, vsecLength));
                    }
                    return new VendorExtended(off, version, vsec & 0xffff, (vsec >>> 16) & 0xf, vsecLength);
                }
                problems.add(String.format("Vendor-specific extended capability at 0x%03x does not fit", off));
            }
            return new UnknownExtended(off, id, version);
        }
    }

    static String hex(byte[] data) {
        StringBuilder sb = new StringBuilder(data.length * 3);
        for (byte b : data) {
            if (sb.length() > 0) {
                sb.append(' ');
            }
            sb.append(String.format("%02x", b & 0xff));
        }
        return sb.toString();
    }
}
