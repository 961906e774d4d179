package io.vfu.cli;

import io.vfu.client.VfioUserClient;
import io.vfu.core.protocol.MigrationState;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code vfu state SOCKET [STATE]}: reads or sets the device's migration state. */
@Command(name = "state", mixinStandardHelpOptions = true,
        description = {"Prints the device's migration state or, given STATE, moves the device there and prints "
                + "the path taken (planned like the kernel's vfio_mig_get_next_state for the device's features) "
                + "and the state read back.",
                "STATE: STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P (any case)."})
final class StateCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "SOCKET", description = "The device's UNIX socket.")
    Path socket;

    @Parameters(index = "1", arity = "0..1", paramLabel = "STATE", converter = StateConverter.class,
            description = "The state to move to.")
    MigrationState target;

    @Override
    public Integer call() throws Exception {
        var out = spec.commandLine().getOut();
        try (VfioUserClient client = Connect.to(socket, Duration.ofSeconds(30))) {
            if (target == null) {
                out.println(client.migrationState());
            } else {
                MigrationState from = client.migrationState();
                List<MigrationState> path = client.expectedMigrationPath(target);
                client.setMigrationState(target);
                MigrationState now = client.migrationState();
                out.println(Stream.concat(Stream.of(from), path.stream()).map(Enum::name)
                        .collect(Collectors.joining(" -> ")) + (path.isEmpty() ? " (no change)" : ""));
                out.println("state: " + now);
                if (now != target) {
                    out.flush();
                    throw new VfuCommand.CliException("the device reports " + now + " after SET " + target);
                }
            }
        }
        out.flush();
        return 0;
    }

    /** Case-insensitive state names; '-' may stand for '_'. ERROR is never a target. */
    static final class StateConverter implements CommandLine.ITypeConverter<MigrationState> {
        @Override
        public MigrationState convert(String value) {
            String name = value.trim().toUpperCase(Locale.ROOT).replace('-', '_');
            for (MigrationState s : MigrationState.values()) {
                if (s.name().equals(name) && s != MigrationState.ERROR) {
                    return s;
                }
            }
            throw new CommandLine.TypeConversionException("'" + value + "' is not a migration state (one of "
                    + Stream.of(MigrationState.values()).filter(s -> s != MigrationState.ERROR).map(Enum::name)
                    .collect(Collectors.joining(", ")) + ")");
        }
    }
}
