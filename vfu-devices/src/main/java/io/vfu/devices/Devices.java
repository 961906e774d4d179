package io.vfu.devices;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The registry of devices {@code vfu serve} can build, by name.
 *
 * <p>Built in: {@code demo} ({@link DemoDevice}), {@code gpio-pci-idio-16} ({@link GpioPciIdio16Device}),
 * {@code null} ({@link NullDevice}), {@code sample-server} ({@link SampleServerDevice}, BAR1 size from the
 * system property {@value SampleServerDevice#BAR1_SIZE_PROPERTY}). More come from {@link #register} (e.g. at
 * start-up of an application embedding the CLI) and from {@link ServiceLoader} providers of
 * {@link DeviceFactory}, looked up
 * once on first use. Names are unique: registering a taken name fails.
 *
 * <p>Thread-safe.
 */
public final class Devices {
    private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9-]{0,63}");
    private static final Map<String, DeviceFactory> FACTORIES = new TreeMap<>();
    private static boolean loaded;

    private Devices() {
    }

    private static synchronized Map<String, DeviceFactory> factories() {
        if (!loaded) {
            loaded = true;
            add(DeviceFactory.of("demo", "demo endpoint: BAR0 registers with a DMA+MSI-X doorbell, 1 MiB BAR2, "
                    + "MSI-X, PCIe, PM, DSN, migration (PRE_COPY)", () -> new DemoDevice().build()));
            add(DeviceFactory.of("gpio-pci-idio-16", "libvfio-user's gpio-pci-idio-16 sample: 494f:0dc8, 256-byte "
                    + "I/O BAR2 with 16 pulse-counting pins, INTx, migration (PRE_COPY, 64-byte state)",
                    () -> new GpioPciIdio16Device().build()));
            add(DeviceFactory.of("null", "libvfio-user's null sample: 0000:0000, config space only, no IRQ pin, "
                    + "no migration", () -> new NullDevice().build()));
            add(DeviceFactory.of("sample-server", "libvfio-user's samples/server: BAR0 alarm clock, BAR1 memory "
                    + "(size: -D" + SampleServerDevice.BAR1_SIZE_PROPERTY + ", default 0x3000), DMA on alarm, "
                    + "migration (PRE_COPY)", () -> new SampleServerDevice(SampleServerDevice.bar1SizeFromProperty()).build()));
            for (DeviceFactory f : ServiceLoader.load(DeviceFactory.class)) {
                add(f);
            }
        }
        return FACTORIES;
    }

    private static void add(DeviceFactory factory) {
        String name = factory.name();
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("device name must match " + NAME + ": " + name);
        }
        if (FACTORIES.putIfAbsent(name, factory) != null) {
            throw new IllegalArgumentException("a device named " + name + " is already registered");
        }
    }

    /**
     * Adds a device.
     *
     * @throws IllegalArgumentException the name is malformed or taken
     */
    public static synchronized void register(DeviceFactory factory) {
        Objects.requireNonNull(factory, "factory");
        factories();
        add(factory);
    }

    /** Every device, sorted by name. */
    public static synchronized List<DeviceFactory> list() {
        return List.copyOf(factories().values());
    }

    /** The device called {@code name}, if any. */
    public static synchronized Optional<DeviceFactory> find(String name) {
        return Optional.ofNullable(factories().get(name));
    }
}
