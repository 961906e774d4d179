package io.vfu.server.pci;

/**
 * Register offsets and bit masks of PCI configuration space (PCI Local Bus 3.0, PCI Power Management 1.2,
 * PCI Express Base 4.0+). Names follow the spec (and the spelling of Linux {@code pci_regs.h}, for easy
 * cross-checking); values are facts from the specifications.
 */
final class PciRegs {
    private PciRegs() {
    }

    // ---- Type 0 header (PCI 3.0 §6.1) ----
    static final int VENDOR_ID = 0x00;
    static final int DEVICE_ID = 0x02;
    static final int COMMAND = 0x04;
    static final int STATUS = 0x06;
    static final int REVISION_ID = 0x08;
    static final int CLASS_PROG = 0x09;
    static final int CACHE_LINE_SIZE = 0x0c;
    static final int LATENCY_TIMER = 0x0d;
    static final int HEADER_TYPE = 0x0e;
    static final int BIST = 0x0f;
    static final int BASE_ADDRESS_0 = 0x10;
    static final int CARDBUS_CIS = 0x28;
    static final int SUBSYSTEM_VENDOR_ID = 0x2c;
    static final int SUBSYSTEM_ID = 0x2e;
    static final int ROM_ADDRESS = 0x30;
    static final int CAPABILITY_LIST = 0x34;
    static final int INTERRUPT_LINE = 0x3c;
    static final int INTERRUPT_PIN = 0x3d;
    static final int MIN_GNT = 0x3e;
    static final int MAX_LAT = 0x3f;

    /** First byte after the header: standard capabilities start here. */
    static final int CAP_START = 0x40;
    /** First byte of the extended configuration space (PCI Express only). */
    static final int EXT_CAP_START = 0x100;

    // Command register bits
    static final int COMMAND_IO = 0x0001;
    static final int COMMAND_MEMORY = 0x0002;
    static final int COMMAND_MASTER = 0x0004;
    static final int COMMAND_PARITY = 0x0040;
    static final int COMMAND_SERR = 0x0100;
    static final int COMMAND_INTX_DISABLE = 0x0400;
    /** The command bits a function without special cycles, MWI, VGA snooping or fast back-to-back decodes. */
    static final int COMMAND_WRITABLE = COMMAND_IO | COMMAND_MEMORY | COMMAND_MASTER | COMMAND_PARITY
            | COMMAND_SERR | COMMAND_INTX_DISABLE;

    // Status register bits
    static final int STATUS_INTERRUPT = 0x0008;
    static final int STATUS_CAP_LIST = 0x0010;
    static final int STATUS_PARITY = 0x0100;          // master data parity error
    static final int STATUS_SIG_TARGET_ABORT = 0x0800;
    static final int STATUS_REC_TARGET_ABORT = 0x1000;
    static final int STATUS_REC_MASTER_ABORT = 0x2000;
    static final int STATUS_SIG_SYSTEM_ERROR = 0x4000;
    static final int STATUS_DETECTED_PARITY = 0x8000;
    /** The write-1-to-clear error bits of the status register. */
    static final int STATUS_W1C = STATUS_PARITY | STATUS_SIG_TARGET_ABORT | STATUS_REC_TARGET_ABORT
            | STATUS_REC_MASTER_ABORT | STATUS_SIG_SYSTEM_ERROR | STATUS_DETECTED_PARITY;

    // BAR low bits
    static final int BAR_SPACE_IO = 0x01;
    static final int BAR_MEM_TYPE_64 = 0x04;
    static final int BAR_MEM_PREFETCH = 0x08;
    static final long BAR_MEM_MASK = ~0xfL;
    static final long BAR_IO_MASK = ~0x3L;
    static final int ROM_ENABLE = 0x1;
    static final long ROM_ADDRESS_MASK = 0xffff_f800L;

    // ---- Capability ids (PCI Code and ID Assignment) ----
    static final int CAP_ID_PM = 0x01;
    static final int CAP_ID_MSI = 0x05;
    static final int CAP_ID_VNDR = 0x09;
    static final int CAP_ID_EXP = 0x10;
    static final int CAP_ID_MSIX = 0x11;
    static final int EXT_CAP_ID_DSN = 0x0003;
    static final int EXT_CAP_ID_VNDR = 0x000b;

    static final int CAP_NEXT = 1;

    // ---- Power Management (PCI PM 1.2 §3.2) ----
    static final int PM_PMC = 2;
    static final int PM_CTRL = 4;
    static final int PM_SIZEOF = 8;
    static final int PM_CAP_VER_3 = 0x0003;
    static final int PM_CAP_D1 = 0x0200;
    static final int PM_CAP_D2 = 0x0400;
    static final int PM_CTRL_STATE_MASK = 0x0003;
    static final int PM_CTRL_NO_SOFT_RESET = 0x0008;
    static final int D0 = 0;
    static final int D3HOT = 3;

    // ---- MSI (PCI 3.0 §6.8.1) ----
    static final int MSI_FLAGS = 2;
    static final int MSI_ADDRESS_LO = 4;
    static final int MSI_FLAGS_ENABLE = 0x0001;
    static final int MSI_FLAGS_QMASK = 0x000e;  // multiple message capable
    static final int MSI_FLAGS_QSIZE = 0x0070;  // multiple message enable
    static final int MSI_FLAGS_64BIT = 0x0080;
    static final int MSI_FLAGS_MASKBIT = 0x0100;

    // ---- MSI-X (PCI 3.0 §6.8.2) ----
    static final int MSIX_FLAGS = 2;
    static final int MSIX_TABLE = 4;
    static final int MSIX_PBA = 8;
    static final int MSIX_SIZEOF = 12;
    static final int MSIX_FLAGS_QSIZE = 0x07ff;
    static final int MSIX_FLAGS_MASKALL = 0x4000;
    static final int MSIX_FLAGS_ENABLE = 0x8000;
    static final int MSIX_ENTRY_SIZE = 16;
    static final int MSIX_ENTRY_VECTOR_CTRL = 12;
    static final int MSIX_ENTRY_CTRL_MASKBIT = 0x1;

    // ---- PCI Express capability, version 2 (PCIe Base §7.5.3) ----
    static final int EXP_FLAGS = 0x02;
    static final int EXP_DEVCAP = 0x04;
    static final int EXP_DEVCTL = 0x08;
    static final int EXP_DEVSTA = 0x0a;
    static final int EXP_LNKCAP = 0x0c;
    static final int EXP_LNKCTL = 0x10;
    static final int EXP_LNKSTA = 0x12;
    static final int EXP_DEVCAP2 = 0x24;
    static final int EXP_LNKCAP2 = 0x2c;
    static final int EXP_SIZEOF_V2 = 0x3c;
    static final int EXP_FLAGS_VERS_2 = 0x0002;
    static final int EXP_DEVCAP_RBER = 0x0000_8000;  // role-based error reporting (mandatory since 1.1)
    static final int EXP_DEVCAP_FLR = 0x1000_0000;
    /** Error reporting enables, relaxed ordering, max payload size, no snoop, max read request size. */
    static final int EXP_DEVCTL_WRITABLE = 0x000f | 0x0010 | 0x00e0 | 0x0800 | 0x7000;
    /** Power-on Device Control: relaxed ordering and no snoop enabled, max read request 512 bytes. */
    static final int EXP_DEVCTL_DEFAULT = 0x0010 | 0x0800 | 0x2000;
    static final int EXP_DEVCTL_BCR_FLR = 0x8000;
    /** Correctable, non-fatal, fatal and unsupported-request detected. */
    static final int EXP_DEVSTA_W1C = 0x000f;
    /** ASPM control, common clock configuration, extended synch. */
    static final int EXP_LNKCTL_WRITABLE = 0x0003 | 0x0040 | 0x0080;

    // ---- Extended capabilities (PCIe Base §7.6, §7.9.3, §7.9.5) ----
    static final int DSN_SIZEOF = 12;
    static final int VSEC_HEADER = 4;
    static final int VSEC_DATA = 8;
}
