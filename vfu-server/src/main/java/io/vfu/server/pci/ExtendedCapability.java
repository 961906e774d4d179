package io.vfu.server.pci;

import java.util.Objects;

/** A PCI Express extended capability (config space 0x100–0xfff), laid out by {@link ConfigSpace}. */
public sealed interface ExtendedCapability {

    /** Device Serial Number (id 0x0003, version 1): a 64-bit serial. */
    record DeviceSerialNumber(long serial) implements ExtendedCapability {
    }

    /**
     * Vendor-Specific Extended Capability (id 0x000b, version 1).
     *
     * @param vsecId  VSEC ID (16-bit)
     * @param vsecRev VSEC revision (4-bit)
     * @param data    bytes after the 8-byte header
     */
    record VendorExtended(int vsecId, int vsecRev, byte[] data) implements ExtendedCapability {
        public VendorExtended {
            Objects.requireNonNull(data);
            if ((vsecId & ~0xFFFF) != 0 || (vsecRev & ~0xF) != 0 || data.length > 4096 - 0x100 - 8) {
                throw new IllegalArgumentException("bad vendor extended capability");
            }
            data = data.clone();
        }

        @Override
        public byte[] data() {
            return data.clone();
        }
    }
}
