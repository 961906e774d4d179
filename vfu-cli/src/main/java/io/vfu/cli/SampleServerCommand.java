package io.vfu.cli;

import io.vfu.devices.SampleServerDevice;
import io.vfu.server.VfioUserServer;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code vfu sample-server [-v] [--bar1-size N] SOCKET_PATH}: libvfio-user's {@code samples/server} command
 * line, serving {@link SampleServerDevice}, so that a launcher named {@code server} can stand in for the C
 * sample (see docs/interop.md). Serves exactly one connection (max_msg_fds 8, like the C sample) and exits 0
 * after the client disconnected, 1 if the device met an error the C sample would have exited for.
 */
@Command(name = "sample-server", mixinStandardHelpOptions = true,
        description = {"Serves libvfio-user's sample server device (BAR0 alarm clock, BAR1 memory, DMA on alarm, "
                + "migration) to exactly one client, then exits: 0 after a clean session, 1 if the device met an "
                + "error (the C sample would have exited).",
                "Drop-in for samples/server: same arguments; 'doing dma io' is printed on stdout per alarm."})
final class SampleServerCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "-v", description = "Debug logging to stderr.")
    boolean debug;

    @Option(names = "--bar1-size", paramLabel = "BYTES", defaultValue = "0x3000", converter = SizeConverter.class,
            description = "Size of BAR1, a multiple of 0x1000 (default: ${DEFAULT-VALUE}; post-PR-#872 C clients "
                    + "expect 0x4000).")
    long bar1Size;

    @Parameters(index = "0", paramLabel = "SOCKET_PATH", description = "Socket file to create.")
    Path socket;

    @Override
    public Integer call() throws Exception {
        // slf4j-simple reads its level when the first logger is made: set it before touching the server.
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", debug ? "debug" : "warn");
        }
        if (debug && System.getProperty("org.slf4j.simpleLogger.showDateTime") == null) {
            System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
            System.setProperty("org.slf4j.simpleLogger.dateTimeFormat", "HH:mm:ss.SSS");
        }
        PrintWriter out = spec.commandLine().getOut();
        SampleServerDevice device;
        try {
            device = new SampleServerDevice(bar1Size, line -> {
                synchronized (out) {
                    out.println(line);
                    out.flush();
                }
            });
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--bar1-size: " + e.getMessage());
        }
        try (device) {
            VfioUserServer server = VfioUserServer.builder(device.build(), socket)
                    .oneShot(true)
                    .maxMsgFds(8)
                    .start();
            Thread hook = Thread.ofPlatform().name("vfu-sample-server-shutdown").unstarted(server::close);
            Runtime.getRuntime().addShutdownHook(hook);
            server.awaitTermination();
            server.close();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // already shutting down
            }
        }
        if (device.errors() > 0) {
            spec.commandLine().getErr().println("vfu: sample server: " + device.errors()
                    + " device error(s), see the log");
            spec.commandLine().getErr().flush();
            return VfuCommand.EXIT_ERROR;
        }
        return 0;
    }

    /** Decimal or 0x-hex byte counts. */
    static final class SizeConverter implements CommandLine.ITypeConverter<Long> {
        @Override
        public Long convert(String value) {
            try {
                return Long.decode(value.trim());
            } catch (NumberFormatException e) {
                throw new CommandLine.TypeConversionException("'" + value + "' is not a number");
            }
        }
    }
}
