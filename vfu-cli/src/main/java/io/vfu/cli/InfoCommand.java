package io.vfu.cli;

import io.vfu.client.VfioUserClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code vfu info SOCKET [--json]}: what a vfio-user device offers. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = {"Connects to a vfio-user device and describes it: PCI identity, BARs and capabilities "
                + "(decoded from config space, like lspci -vvv), regions, IRQs, migration support and state, "
                + "DMA logging, and the server's VERSION capabilities."})
final class InfoCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "SOCKET", description = "The device's UNIX socket.")
    Path socket;

    @Option(names = "--json", description = "Print one JSON object instead of text.")
    boolean json;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "5",
            description = "Reply timeout per request (default: ${DEFAULT-VALUE}).")
    long timeoutSeconds;

    @Override
    public Integer call() throws Exception {
        Inspection in;
        try (VfioUserClient client = Connect.to(socket, Duration.ofSeconds(Math.max(1, timeoutSeconds)))) {
            in = Inspection.of(client);
        }
        var out = spec.commandLine().getOut();
        out.print(json ? InfoJson.render(in) : InfoText.render(in));
        out.flush();
        return 0;
    }
}
