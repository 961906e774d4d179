package io.vfu.server.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.VfioUserException;
import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Command gating per migration state (§11.7, ambiguity #28), through both forms of {@link MigrationController#gate}. */
class MigrationControllerGateTest {
    private static final Set<Command> STOPPED = EnumSet.of(Command.REGION_READ, Command.REGION_WRITE,
            Command.REGION_WRITE_MULTI, Command.DEVICE_FEATURE, Command.MIG_DATA_READ, Command.DEVICE_GET_INFO,
            Command.DEVICE_GET_REGION_INFO, Command.DEVICE_GET_IRQ_INFO, Command.VERSION);
    private static final Set<Command> STOP_COPY = EnumSet.of(Command.DEVICE_FEATURE, Command.MIG_DATA_READ,
            Command.DEVICE_GET_INFO, Command.DEVICE_GET_REGION_INFO, Command.DEVICE_GET_IRQ_INFO, Command.VERSION);
    private static final Set<Command> NOT_IN_ERROR = EnumSet.of(Command.REGION_READ, Command.REGION_WRITE,
            Command.REGION_WRITE_MULTI, Command.MIG_DATA_READ, Command.MIG_DATA_WRITE);

    @ParameterizedTest
    @EnumSource(MigrationState.class)
    void eachStateLetsThroughItsCommandsOnly(MigrationState state) {
        MigrationController controller = new MigrationController(null);
        controller.force(state);
        for (Command c : Command.values()) {
            boolean expected = switch (state) {
                case STOP -> STOPPED.contains(c);
                case STOP_COPY -> STOP_COPY.contains(c);
                case ERROR -> !NOT_IN_ERROR.contains(c);
                default -> true;
            };
            if (expected) {
                controller.gate(c);
                controller.gate(c, 1 << c.code());
            } else {
                assertThatThrownBy(() -> controller.gate(c)).as(c + " in " + state)
                        .isInstanceOf(VfioUserException.class).hasMessageContaining(state.toString());
                assertThatThrownBy(() -> controller.gate(c, 1 << c.code())).isInstanceOf(VfioUserException.class);
            }
        }
        controller.afterReset();
        assertThat(controller.state()).isEqualTo(state == MigrationState.ERROR ? MigrationState.RUNNING : state);
        if (state == MigrationState.ERROR) {
            controller.gate(Command.REGION_READ); // the mask followed the state back to RUNNING
        }
    }
}
