package io.vfu.server.pci;

/**
 * The identity registers of a type-0 PCI header.
 *
 * @param vendorId          0x00
 * @param deviceId          0x02
 * @param subsystemVendorId 0x2c
 * @param subsystemId       0x2e
 * @param classCode         0x09–0x0b as one 24-bit value: base class, sub-class, programming interface
 * @param revision          0x08
 */
public record PciIdentity(int vendorId, int deviceId, int subsystemVendorId, int subsystemId, int classCode,
                          int revision) {
    public PciIdentity {
        check16(vendorId, "vendorId");
        check16(deviceId, "deviceId");
        check16(subsystemVendorId, "subsystemVendorId");
        check16(subsystemId, "subsystemId");
        if ((classCode & ~0xFFFFFF) != 0) {
            throw new IllegalArgumentException("classCode is 24-bit");
        }
        if ((revision & ~0xFF) != 0) {
            throw new IllegalArgumentException("revision is 8-bit");
        }
    }

    private static void check16(int v, String what) {
        if ((v & ~0xFFFF) != 0) {
            throw new IllegalArgumentException(what + " is 16-bit");
        }
    }
}
