package io.vfu.cli;

import io.vfu.core.protocol.VfioUserException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/**
 * The {@code vfu} command: serve, inspect and migrate vfio-user devices.
 *
 * <p>Exit codes: 0 success; 1 device, protocol or I/O error, reported as one line {@code vfu: reason} on
 * stderr (with the stack trace only under {@code --verbose}); 2 usage error (picocli's default).
 */
@Command(name = "vfu",
        mixinStandardHelpOptions = true,
        version = "vfu 0.1.0-SNAPSHOT (vfio-user 0.9.2)",
        description = "vfio-user devices in Java: serve, inspect, migrate.",
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:success", "1:device, protocol or I/O error (one line on stderr)", "2:usage error"},
        subcommands = {ServeCommand.class, InfoCommand.class, StateCommand.class, SampleServerCommand.class,
                SampleClientCommand.class, SampleDemoCommand.class, io.vfu.bench.BenchCommand.class,
                CommandLine.HelpCommand.class})
public final class VfuCommand implements Runnable {
    /** Exit code of a device, protocol or I/O failure. */
    public static final int EXIT_ERROR = 1;
    /** Exit code of a usage error. */
    public static final int EXIT_USAGE = 2;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--verbose", scope = ScopeType.INHERIT,
            description = "Print stack traces of errors (and more detail where available).")
    boolean verbose;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** A configured command line (tests set its out/err writers). */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new VfuCommand());
        cl.setExecutionExceptionHandler(VfuCommand::handle);
        return cl;
    }

    /** Runs {@code vfu args} with the process's stdout/stderr; returns the exit code. */
    public static int execute(String... args) {
        return commandLine().execute(args);
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    private static int handle(Exception e, CommandLine cl, CommandLine.ParseResult parsed) {
        PrintWriter err = cl.getErr();
        err.println("vfu: " + reason(e));
        if (verbose(parsed)) {
            e.printStackTrace(err);
        }
        err.flush();
        return EXIT_ERROR;
    }

    private static boolean verbose(CommandLine.ParseResult parsed) {
        for (CommandLine.ParseResult p = parsed; p != null; p = p.subcommand()) {
            if (p.hasMatchedOption("--verbose")) {
                return true;
            }
        }
        return false;
    }

    /** One line saying what failed. */
    static String reason(Throwable e) {
        String message = e.getMessage();
        if (e instanceof VfioUserException v) {
            message = v.getMessage();
        } else if (message == null || message.isBlank()) {
            message = e.getClass().getSimpleName();
        } else if (!(e instanceof java.io.IOException) && !(e instanceof CliException)) {
            message = e.getClass().getSimpleName() + ": " + message;
        }
        return message.replace('\n', ' ');
    }

    /** A failure with a message meant for the user as is. */
    static final class CliException extends RuntimeException {
        CliException(String message) {
            super(message);
        }
    }
}
