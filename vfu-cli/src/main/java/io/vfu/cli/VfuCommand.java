package io.vfu.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code vfu} command: serve, inspect and migrate vfio-user devices. */
@Command(name = "vfu",
        mixinStandardHelpOptions = true,
        version = "vfu 0.1.0-SNAPSHOT (vfio-user 0.9.2)",
        description = "vfio-user devices in Java: serve, inspect, migrate.",
        subcommands = {CommandLine.HelpCommand.class})
public final class VfuCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** Exit codes: 0 ok, 1 device or protocol error, 2 usage. */
    public static int execute(String... args) {
        return new CommandLine(new VfuCommand()).execute(args);
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }
}
