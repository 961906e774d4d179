package io.vfu.server.pci;

import java.util.Objects;

/**
 * A capability in the standard list (config space 0x40–0xff), laid out by {@link ConfigSpace}.
 */
public sealed interface Capability {

    /** Power Management (id 0x01), version 3, D0 only unless stated. */
    record PowerManagement(boolean d1, boolean d2, boolean noSoftReset) implements Capability {
        public static PowerManagement standard() {
            return new PowerManagement(false, false, true);
        }
    }

    /**
     * MSI (id 0x05).
     *
     * @param vectors       1, 2, 4, 8, 16 or 32 (multiple message capable)
     * @param address64     64-bit message address
     * @param perVectorMask mask and pending bit registers present
     */
    record Msi(int vectors, boolean address64, boolean perVectorMask) implements Capability {
        public Msi {
            if (vectors < 1 || vectors > 32 || Integer.bitCount(vectors) != 1) {
                throw new IllegalArgumentException("MSI vectors must be a power of two in 1..32");
            }
        }
    }

    /**
     * MSI-X (id 0x11): table of 16-byte entries and the pending-bit array, each in a BAR.
     *
     * @param vectors     table size, 1..2048
     * @param tableBar    BAR index of the table
     * @param tableOffset offset of the table in that BAR (8-byte aligned)
     * @param pbaBar      BAR index of the PBA
     * @param pbaOffset   offset of the PBA in that BAR (8-byte aligned)
     */
    record Msix(int vectors, int tableBar, long tableOffset, int pbaBar, long pbaOffset) implements Capability {
        public Msix {
            if (vectors < 1 || vectors > 2048) {
                throw new IllegalArgumentException("MSI-X vectors must be in 1..2048");
            }
            if (tableBar < 0 || tableBar > 5 || pbaBar < 0 || pbaBar > 5) {
                throw new IllegalArgumentException("MSI-X BAR index must be 0..5");
            }
            if ((tableOffset & 7) != 0 || (pbaOffset & 7) != 0 || tableOffset < 0 || pbaOffset < 0
                    || tableOffset > 0xFFFF_FFF8L || pbaOffset > 0xFFFF_FFF8L) {
                throw new IllegalArgumentException("MSI-X offsets must be 8-byte aligned 32-bit values");
            }
        }

        public long tableSize() {
            return 16L * vectors;
        }

        public long pbaSize() {
            return 8L * ((vectors + 63) / 64);
        }
    }

    /**
     * PCI Express (id 0x10), capability version 2. Its presence makes config space 4096 bytes.
     *
     * @param portType         device/port type field (0 = PCI Express Endpoint, 9 = Root Complex Integrated Endpoint)
     * @param maxPayloadSize   encoded max payload size supported (0 = 128 bytes ... 5 = 4096)
     * @param linkSpeed        max link speed (1 = 2.5 GT/s ... ), 0 for no link registers content
     * @param linkWidth        max link width (1, 2, 4, 8, 16, 32), 0 for none
     */
    record PciExpress(int portType, int maxPayloadSize, int linkSpeed, int linkWidth) implements Capability {
        public static final int ENDPOINT = 0;
        public static final int ROOT_COMPLEX_INTEGRATED_ENDPOINT = 9;

        public PciExpress {
            if ((portType & ~0xF) != 0 || maxPayloadSize < 0 || maxPayloadSize > 5 || (linkSpeed & ~0xF) != 0
                    || (linkWidth & ~0x3F) != 0) {
                throw new IllegalArgumentException("bad PCI Express capability fields");
            }
        }

        public static PciExpress endpoint() {
            return new PciExpress(ENDPOINT, 0, 1, 1);
        }
    }

    /**
     * Vendor-specific (id 0x09): after the 2-byte header, a length byte then {@code data}.
     *
     * @param data vendor bytes (at most 253 - 3)
     */
    record VendorSpecific(byte[] data) implements Capability {
        public VendorSpecific {
            Objects.requireNonNull(data);
            if (data.length > 250) {
                throw new IllegalArgumentException("vendor capability too long");
            }
            data = data.clone();
        }

        @Override
        public byte[] data() {
            return data.clone();
        }
    }
}
