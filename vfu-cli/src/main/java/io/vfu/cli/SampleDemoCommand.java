package io.vfu.cli;

import io.vfu.devices.SampleServerDevice;
import io.vfu.server.VfioUserServer;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code vfu sample-demo}: the project's end-to-end run in one command. Serves libvfio-user's sample device
 * ({@link SampleServerDevice}) in this process, drives it with the sample walk-through ({@link SampleWalkthrough}:
 * discovery, DMA, interrupts, dirty logging) and live-migrates it into a fresh destination server started as a
 * separate process, which must come up, restore the state (BAR1 CRC compared) and deliver its interrupt.
 */
@Command(name = "sample-demo", mixinStandardHelpOptions = true,
        description = {"End-to-end run: serve libvfio-user's sample device, drive it like libvfio-user's sample client, "
                + "live-migrate it into a fresh server process and check the result.",
                "Exit 0 when every check passed, 1 with the reason otherwise."})
final class SampleDemoCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--deadline", paramLabel = "SECONDS", defaultValue = "6",
            description = "Seconds from the migration to the destination's interrupt; the destination JVM must be "
                    + "running by then (default: ${DEFAULT-VALUE}).")
    int deadline;

    @Option(names = "--bar1-size", paramLabel = "BYTES", defaultValue = "0x3000",
            converter = SampleServerCommand.SizeConverter.class,
            description = "BAR1 size of the sample device (default: ${DEFAULT-VALUE}).")
    long bar1Size;

    @Option(names = {"-v", "--show-destination"}, description = "Copy the destination server's output to stderr.")
    boolean showDestination;

    @Override
    public Integer call() throws Exception {
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
        PrintWriter out = spec.commandLine().getOut();
        Path dir = Files.createTempDirectory("vfu-sample-demo");
        Path socket = dir.resolve("sample.sock");
        try (SampleServerDevice device = new SampleServerDevice(bar1Size, line -> {
            synchronized (out) {
                out.println("source: " + line);
                out.flush();
            }
        })) {
            VfioUserServer source = VfioUserServer.builder(device.build(), socket).oneShot(true).maxMsgFds(8).start();
            try {
                out.println("source: serving libvfio-user's sample device on " + socket);
                out.flush();
                SampleWalkthrough.Options options = SampleWalkthrough.Options
                        .of(socket, SampleWalkthrough.defaultDestinationCommand())
                        .withBar1Size(bar1Size)
                        .withDeadlineSeconds(deadline);
                new SampleWalkthrough(options, out, showDestination ? spec.commandLine().getErr() : null).run();
                if (!source.awaitTermination(Duration.ofSeconds(30))) {
                    throw new SampleWalkthrough.Failure("the source server did not finish after the client left");
                }
            } finally {
                source.close();
            }
            if (device.errors() > 0) {
                throw new SampleWalkthrough.Failure("the source device reported " + device.errors() + " error(s)");
            }
        } finally {
            deleteTree(dir);
        }
        out.println("sample demo: PASS (served, driven, migrated into a fresh server, state and interrupt checked)");
        out.flush();
        return 0;
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
