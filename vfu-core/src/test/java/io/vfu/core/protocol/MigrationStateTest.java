package io.vfu.core.protocol;

import static io.vfu.core.protocol.MigrationState.ERROR;
import static io.vfu.core.protocol.MigrationState.PRE_COPY;
import static io.vfu.core.protocol.MigrationState.PRE_COPY_P2P;
import static io.vfu.core.protocol.MigrationState.RESUMING;
import static io.vfu.core.protocol.MigrationState.RUNNING;
import static io.vfu.core.protocol.MigrationState.RUNNING_P2P;
import static io.vfu.core.protocol.MigrationState.STOP;
import static io.vfu.core.protocol.MigrationState.STOP_COPY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** MigrationState wire values (protocol reference §11.1) and MigrationFeatures flags (§10, feature 1). */
class MigrationStateTest {

    static void assertEinval(Runnable r) {
        assertThatThrownBy(r::run)
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
    }

    @Test
    void wireValues() {
        assertThat(ERROR.wireValue()).isZero();
        assertThat(STOP.wireValue()).isEqualTo(1);
        assertThat(RUNNING.wireValue()).isEqualTo(2);
        assertThat(STOP_COPY.wireValue()).isEqualTo(3);
        assertThat(RESUMING.wireValue()).isEqualTo(4);
        assertThat(RUNNING_P2P.wireValue()).isEqualTo(5);
        assertThat(PRE_COPY.wireValue()).isEqualTo(6);
        assertThat(PRE_COPY_P2P.wireValue()).isEqualTo(7);
        for (MigrationState s : MigrationState.values()) {
            assertThat(MigrationState.fromWire(s.wireValue())).isSameAs(s);
        }
    }

    @Test
    void outOfRangeValuesRejected() {
        assertEinval(() -> MigrationState.fromWire(8)); // slips past libvfio-user's check (§11.3)
        assertEinval(() -> MigrationState.fromWire(9));
        assertEinval(() -> MigrationState.fromWire(-1));
        assertEinval(() -> MigrationState.fromWire(0xFFFF_FFFFL));
        assertEinval(() -> MigrationState.fromWire(0x1_0000_0002L));
        assertEinval(() -> MigrationState.fromWire(Long.MIN_VALUE));
    }

    @Test
    void predicates() {
        assertThat(select(MigrationState::isSaving)).containsExactlyInAnyOrder(STOP_COPY, PRE_COPY, PRE_COPY_P2P);
        assertThat(select(MigrationState::isRunning))
                .containsExactlyInAnyOrder(RUNNING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P);
        assertThat(select(MigrationState::isP2pQuiesced)).containsExactlyInAnyOrder(RUNNING_P2P, PRE_COPY_P2P);
        assertThat(select(MigrationState::isStopped)).containsExactlyInAnyOrder(STOP, STOP_COPY, RESUMING);
    }

    static Set<MigrationState> select(java.util.function.Predicate<MigrationState> p) {
        EnumSet<MigrationState> set = EnumSet.noneOf(MigrationState.class);
        for (MigrationState s : MigrationState.values()) {
            if (p.test(s)) {
                set.add(s);
            }
        }
        return set;
    }

    @Test
    void featureSets() {
        assertThat(MigrationFeatures.fromWire(0x1)).isEqualTo(MigrationFeatures.STOP_COPY);
        assertThat(MigrationFeatures.fromWire(0x3)).isEqualTo(MigrationFeatures.STOP_COPY_P2P);
        assertThat(MigrationFeatures.fromWire(0x5)).isEqualTo(MigrationFeatures.STOP_COPY_PRE_COPY);
        assertThat(MigrationFeatures.fromWire(0x7)).isEqualTo(MigrationFeatures.STOP_COPY_P2P_PRE_COPY);
        assertThat(MigrationFeatures.ALL).hasSize(4);
        assertThat(MigrationFeatures.STOP_COPY_PRE_COPY.hasPreCopy()).isTrue();
        assertThat(MigrationFeatures.STOP_COPY_PRE_COPY.hasP2p()).isFalse();
        assertThat(MigrationFeatures.STOP_COPY_P2P.hasP2p()).isTrue();
        assertThat(MigrationFeatures.STOP_COPY_P2P.hasPreCopy()).isFalse();
        assertThat(MigrationFeatures.STOP_COPY_P2P_PRE_COPY.toString()).isEqualTo("STOP_COPY|P2P|PRE_COPY");
    }

    @Test
    void invalidFeatureFlagsRejected() {
        for (long flags : new long[] {0x0, 0x2, 0x4, 0x6, 0x8, 0x9, 0xF, 1L << 63, -1L}) {
            assertEinval(() -> MigrationFeatures.fromWire(flags));
        }
    }

    @Test
    void supportedStatesPerSet() {
        assertThat(MigrationFeatures.STOP_COPY.supportedStates())
                .containsExactly(STOP, RUNNING, STOP_COPY, RESUMING);
        assertThat(MigrationFeatures.STOP_COPY_P2P.supportedStates())
                .containsExactly(STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P);
        assertThat(MigrationFeatures.STOP_COPY_PRE_COPY.supportedStates())
                .containsExactly(STOP, RUNNING, STOP_COPY, RESUMING, PRE_COPY);
        assertThat(MigrationFeatures.STOP_COPY_P2P_PRE_COPY.supportedStates())
                .containsExactly(STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P);
        for (MigrationFeatures f : MigrationFeatures.ALL) {
            assertThat(f.supports(ERROR)).as(f.toString()).isFalse();
        }
    }
}
