package io.vfu.cli;

import io.vfu.devices.DeviceFactory;
import io.vfu.devices.Devices;
import io.vfu.server.VfioUserServer;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code vfu serve DEVICE --socket PATH}: serves a device from the {@link Devices} registry. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serves a device over vfio-user on a UNIX socket until SIGTERM/SIGINT (the socket file "
                + "is removed on the way out) or, with --one-shot, until the first client disconnects.",
                "Prints 'listening on PATH' once clients can connect. 'vfu serve --list' lists the devices."})
final class ServeCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", arity = "0..1", paramLabel = "DEVICE", description = "Device name (see --list).")
    String device;

    @Option(names = "--list", description = "List the devices that can be served, and exit.")
    boolean list;

    @Option(names = "--socket", paramLabel = "PATH", description = "Socket file to create (must not exist).")
    Path socket;

    @Option(names = "--socket-mode", paramLabel = "MODE", defaultValue = "0600",
            description = "Octal file mode of the socket (default: ${DEFAULT-VALUE}).")
    String socketMode;

    @Option(names = "--one-shot", description = "Serve a single client, then exit.")
    boolean oneShot;

    @Option(names = "--max-data-xfer-size", paramLabel = "BYTES", defaultValue = "1048576",
            description = "Largest data transfer accepted, advertised in VERSION (default: ${DEFAULT-VALUE}).")
    long maxDataXferSize;

    @Override
    public Integer call() throws Exception {
        var out = spec.commandLine().getOut();
        if (list) {
            for (DeviceFactory f : Devices.list()) {
                out.printf("%-18s %s%n", f.name(), f.description());
            }
            out.flush();
            return 0;
        }
        if (device == null) {
            throw new CommandLine.ParameterException(spec.commandLine(), "Missing required parameter: 'DEVICE'");
        }
        if (socket == null) {
            throw new CommandLine.ParameterException(spec.commandLine(), "Missing required option: '--socket=PATH'");
        }
        int mode;
        try {
            mode = Integer.parseInt(socketMode, 8);
        } catch (NumberFormatException e) {
            mode = -1;
        }
        if (mode < 0 || mode > 0777) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--socket-mode: '" + socketMode + "' is not an octal mode 0..0777");
        }
        DeviceFactory factory = Devices.find(device).orElseThrow(() -> new CommandLine.ParameterException(
                spec.commandLine(), "unknown device '" + device + "' (see vfu serve --list)"));
        VfioUserServer server = VfioUserServer.builder(factory.create(), socket)
                .socketMode(mode)
                .oneShot(oneShot)
                .maxDataXferSize(maxDataXferSize)
                .start();
        Thread hook = Thread.ofPlatform().name("vfu-serve-shutdown").unstarted(server::close);
        Runtime.getRuntime().addShutdownHook(hook);
        out.println("listening on " + socket);
        out.flush();
        server.awaitTermination();
        server.close(); // one-shot end: make sure the socket file is gone before we return
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // already shutting down: the hook runs anyway
        }
        return 0;
    }
}
