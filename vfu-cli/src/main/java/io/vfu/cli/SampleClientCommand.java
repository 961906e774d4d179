package io.vfu.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code vfu sample-client SOCKET}: libvfio-user's sample client walk-through ({@link SampleWalkthrough}) against
 * a sample server, including the migration into a fresh destination server.
 */
@Command(name = "sample-client", mixinStandardHelpOptions = true,
        description = {"Walks a libvfio-user sample server (the C samples/server or 'vfu sample-server') through "
                + "the sequence of libvfio-user's samples/client: negotiation, discovery, DMA, interrupts, dirty "
                + "logging, then a live migration into a fresh destination server listening on SOCKET_migrated, "
                + "started by this command (one-shot: it must exit 0 when the client leaves).",
                "Prints progress lines; exit 0 when every check passed, 1 with the reason otherwise."})
final class SampleClientCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "SOCKET", description = "The source sample server's UNIX socket.")
    Path socket;

    @Option(names = "--destination-command", paramLabel = "CMD",
            description = "Command line of the destination server, split at spaces; {} stands for the destination "
                    + "socket path (appended if absent), {bar1} for BAR1's size. Default: this JVM running "
                    + "'vfu sample-server --bar1-size {bar1} -v {}'. "
                    + "Example: '/path/to/libvfio-user/build/samples/server -v {}'.")
    String destinationCommand;

    @Option(names = "--bar1-size", paramLabel = "N|auto", defaultValue = "auto",
            description = "BAR1 size the device must have (bytes, 0x… accepted), or auto: as GET_REGION_INFO says "
                    + "(default: ${DEFAULT-VALUE}).")
    String bar1Size;

    @Option(names = "--deadline", paramLabel = "SECONDS", defaultValue = "3",
            description = "Before migrating, BAR0 := now + SECONDS: the destination's interrupt fires then, so the "
                    + "destination must be running by then (the C client uses 10; default: ${DEFAULT-VALUE}).")
    int deadline;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "5",
            description = "Reply timeout per request, and longest wait for the first interrupt and for the "
                    + "device's DMA (default: ${DEFAULT-VALUE}).")
    long timeoutSeconds;

    @Option(names = "--start-timeout", paramLabel = "SECONDS", defaultValue = "30",
            description = "Longest wait for the destination to listen, and to exit (default: ${DEFAULT-VALUE}).")
    long startTimeoutSeconds;

    @Option(names = {"-v", "--show-destination"},
            description = "Copy the destination server's output to stderr, prefixed 'destination: '.")
    boolean showDestination;

    @Override
    public Integer call() throws Exception {
        CommandLine cl = spec.commandLine();
        long size = parseSize(cl, bar1Size);
        if (deadline < 2) {
            throw new CommandLine.ParameterException(cl, "--deadline must be at least 2 seconds");
        }
        if (timeoutSeconds < 1 || startTimeoutSeconds < 1) {
            throw new CommandLine.ParameterException(cl, "timeouts must be at least 1 second");
        }
        List<String> destination = destinationCommand == null
                ? SampleWalkthrough.defaultDestinationCommand()
                : SampleWalkthrough.parseCommand(destinationCommand);
        Duration timeout = Duration.ofSeconds(timeoutSeconds);
        SampleWalkthrough.Options options = new SampleWalkthrough.Options(socket, destination, size, deadline,
                timeout, Duration.ofSeconds(startTimeoutSeconds), timeout);
        PrintWriter out = cl.getOut();
        new SampleWalkthrough(options, out, showDestination ? cl.getErr() : null).run();
        out.flush();
        return 0;
    }

    private static long parseSize(CommandLine cl, String value) {
        String v = value.trim().toLowerCase(Locale.ROOT);
        if (v.equals("auto")) {
            return 0;
        }
        long n;
        try {
            n = v.startsWith("0x") ? Long.parseLong(v.substring(2), 16) : Long.parseLong(v);
        } catch (NumberFormatException e) {
            n = -1;
        }
        if (n <= 0 || n % SampleWalkthrough.MIG_CHUNK != 0) {
            throw new CommandLine.ParameterException(cl, "--bar1-size: '" + value + "' is not 'auto' or a positive "
                    + "multiple of " + SampleWalkthrough.MIG_CHUNK);
        }
        return n;
    }
}
