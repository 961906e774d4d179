package io.vfu.devices;

import io.vfu.server.PciDevice;

/**
 * Makes a servable device. Implementations are listed in {@link Devices}: the built-in ones, those registered
 * with {@link Devices#register}, and those found with {@link java.util.ServiceLoader} (declare them in
 * {@code META-INF/services/io.vfu.devices.DeviceFactory}).
 */
public interface DeviceFactory {
    /** Short name used on the command line, e.g. {@code "demo"}: lower case letters, digits and '-'. */
    String name();

    /** One line saying what the device is. */
    String description();

    /** A new device in its reset state (each call a fresh, independent instance). */
    PciDevice create();

    /** A factory from its parts. */
    static DeviceFactory of(String name, String description, java.util.function.Supplier<PciDevice> create) {
        java.util.Objects.requireNonNull(create, "create");
        record Simple(String name, String description, java.util.function.Supplier<PciDevice> supplier)
                implements DeviceFactory {
            @Override
            public PciDevice create() {
                return supplier.get();
            }
        }
        return new Simple(name, description, create);
    }
}
