package io.vfu.core.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.vfu.core.linux.Errno;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Exhaustive check of {@link MigrationPathPlanner}: 4 feature sets × 8 × 8 state pairs.
 *
 * <p>Every expected path below was worked out BY HAND by applying the kernel's {@code vfio_from_fsm_table}
 * and {@code state_flags_table} (drivers/vfio/vfio_main.c, {@code vfio_mig_get_next_state}) step by step,
 * skipping states the feature set lacks; the PRE_COPY-without-P2P set was cross-checked against protocol
 * reference §11.3, and the all-features set against the combined transitions listed in the kernel comment.
 * Nothing here is computed by the code under test. Format: {@code FROM -> TO : s1, s2, ...} (the states
 * after FROM), {@code -} for an empty path (FROM == TO), {@code EINVAL} for a refused request.
 */
class MigrationPathPlannerTest {

    /** STOP_COPY only (0x1): STOP, RUNNING, STOP_COPY, RESUMING. */
    static final String STOP_COPY_ONLY = """
            ERROR -> ERROR : EINVAL
            ERROR -> STOP : EINVAL
            ERROR -> RUNNING : EINVAL
            ERROR -> STOP_COPY : EINVAL
            ERROR -> RESUMING : EINVAL
            ERROR -> RUNNING_P2P : EINVAL
            ERROR -> PRE_COPY : EINVAL
            ERROR -> PRE_COPY_P2P : EINVAL
            STOP -> ERROR : EINVAL
            STOP -> STOP : -
            STOP -> RUNNING : RUNNING
            STOP -> STOP_COPY : STOP_COPY
            STOP -> RESUMING : RESUMING
            STOP -> RUNNING_P2P : EINVAL
            STOP -> PRE_COPY : EINVAL
            STOP -> PRE_COPY_P2P : EINVAL
            RUNNING -> ERROR : EINVAL
            RUNNING -> STOP : STOP
            RUNNING -> RUNNING : -
            RUNNING -> STOP_COPY : STOP, STOP_COPY
            RUNNING -> RESUMING : STOP, RESUMING
            RUNNING -> RUNNING_P2P : EINVAL
            RUNNING -> PRE_COPY : EINVAL
            RUNNING -> PRE_COPY_P2P : EINVAL
            STOP_COPY -> ERROR : EINVAL
            STOP_COPY -> STOP : STOP
            STOP_COPY -> RUNNING : STOP, RUNNING
            STOP_COPY -> STOP_COPY : -
            STOP_COPY -> RESUMING : STOP, RESUMING
            STOP_COPY -> RUNNING_P2P : EINVAL
            STOP_COPY -> PRE_COPY : EINVAL
            STOP_COPY -> PRE_COPY_P2P : EINVAL
            RESUMING -> ERROR : EINVAL
            RESUMING -> STOP : STOP
            RESUMING -> RUNNING : STOP, RUNNING
            RESUMING -> STOP_COPY : STOP, STOP_COPY
            RESUMING -> RESUMING : -
            RESUMING -> RUNNING_P2P : EINVAL
            RESUMING -> PRE_COPY : EINVAL
            RESUMING -> PRE_COPY_P2P : EINVAL
            RUNNING_P2P -> ERROR : EINVAL
            RUNNING_P2P -> STOP : EINVAL
            RUNNING_P2P -> RUNNING : EINVAL
            RUNNING_P2P -> STOP_COPY : EINVAL
            RUNNING_P2P -> RESUMING : EINVAL
            RUNNING_P2P -> RUNNING_P2P : EINVAL
            RUNNING_P2P -> PRE_COPY : EINVAL
            RUNNING_P2P -> PRE_COPY_P2P : EINVAL
            PRE_COPY -> ERROR : EINVAL
            PRE_COPY -> STOP : EINVAL
            PRE_COPY -> RUNNING : EINVAL
            PRE_COPY -> STOP_COPY : EINVAL
            PRE_COPY -> RESUMING : EINVAL
            PRE_COPY -> RUNNING_P2P : EINVAL
            PRE_COPY -> PRE_COPY : EINVAL
            PRE_COPY -> PRE_COPY_P2P : EINVAL
            PRE_COPY_P2P -> ERROR : EINVAL
            PRE_COPY_P2P -> STOP : EINVAL
            PRE_COPY_P2P -> RUNNING : EINVAL
            PRE_COPY_P2P -> STOP_COPY : EINVAL
            PRE_COPY_P2P -> RESUMING : EINVAL
            PRE_COPY_P2P -> RUNNING_P2P : EINVAL
            PRE_COPY_P2P -> PRE_COPY : EINVAL
            PRE_COPY_P2P -> PRE_COPY_P2P : EINVAL
            """;

    /** STOP_COPY | P2P (0x3): adds RUNNING_P2P, which replaces the direct RUNNING <-> STOP arcs. */
    static final String WITH_P2P = """
            ERROR -> ERROR : EINVAL
            ERROR -> STOP : EINVAL
            ERROR -> RUNNING : EINVAL
            ERROR -> STOP_COPY : EINVAL
            ERROR -> RESUMING : EINVAL
            ERROR -> RUNNING_P2P : EINVAL
            ERROR -> PRE_COPY : EINVAL
            ERROR -> PRE_COPY_P2P : EINVAL
            STOP -> ERROR : EINVAL
            STOP -> STOP : -
            STOP -> RUNNING : RUNNING_P2P, RUNNING
            STOP -> STOP_COPY : STOP_COPY
            STOP -> RESUMING : RESUMING
            STOP -> RUNNING_P2P : RUNNING_P2P
            STOP -> PRE_COPY : EINVAL
            STOP -> PRE_COPY_P2P : EINVAL
            RUNNING -> ERROR : EINVAL
            RUNNING -> STOP : RUNNING_P2P, STOP
            RUNNING -> RUNNING : -
            RUNNING -> STOP_COPY : RUNNING_P2P, STOP, STOP_COPY
            RUNNING -> RESUMING : RUNNING_P2P, STOP, RESUMING
            RUNNING -> RUNNING_P2P : RUNNING_P2P
            RUNNING -> PRE_COPY : EINVAL
            RUNNING -> PRE_COPY_P2P : EINVAL
            STOP_COPY -> ERROR : EINVAL
            STOP_COPY -> STOP : STOP
            STOP_COPY -> RUNNING : STOP, RUNNING_P2P, RUNNING
            STOP_COPY -> STOP_COPY : -
            STOP_COPY -> RESUMING : STOP, RESUMING
            STOP_COPY -> RUNNING_P2P : STOP, RUNNING_P2P
            STOP_COPY -> PRE_COPY : EINVAL
            STOP_COPY -> PRE_COPY_P2P : EINVAL
            RESUMING -> ERROR : EINVAL
            RESUMING -> STOP : STOP
            RESUMING -> RUNNING : STOP, RUNNING_P2P, RUNNING
            RESUMING -> STOP_COPY : STOP, STOP_COPY
            RESUMING -> RESUMING : -
            RESUMING -> RUNNING_P2P : STOP, RUNNING_P2P
            RESUMING -> PRE_COPY : EINVAL
            RESUMING -> PRE_COPY_P2P : EINVAL
            RUNNING_P2P -> ERROR : EINVAL
            RUNNING_P2P -> STOP : STOP
            RUNNING_P2P -> RUNNING : RUNNING
            RUNNING_P2P -> STOP_COPY : STOP, STOP_COPY
            RUNNING_P2P -> RESUMING : STOP, RESUMING
            RUNNING_P2P -> RUNNING_P2P : -
            RUNNING_P2P -> PRE_COPY : EINVAL
            RUNNING_P2P -> PRE_COPY_P2P : EINVAL
            PRE_COPY -> ERROR : EINVAL
            PRE_COPY -> STOP : EINVAL
            PRE_COPY -> RUNNING : EINVAL
            PRE_COPY -> STOP_COPY : EINVAL
            PRE_COPY -> RESUMING : EINVAL
            PRE_COPY -> RUNNING_P2P : EINVAL
            PRE_COPY -> PRE_COPY : EINVAL
            PRE_COPY -> PRE_COPY_P2P : EINVAL
            PRE_COPY_P2P -> ERROR : EINVAL
            PRE_COPY_P2P -> STOP : EINVAL
            PRE_COPY_P2P -> RUNNING : EINVAL
            PRE_COPY_P2P -> STOP_COPY : EINVAL
            PRE_COPY_P2P -> RESUMING : EINVAL
            PRE_COPY_P2P -> RUNNING_P2P : EINVAL
            PRE_COPY_P2P -> PRE_COPY : EINVAL
            PRE_COPY_P2P -> PRE_COPY_P2P : EINVAL
            """;

    /** STOP_COPY | PRE_COPY (0x5, libvfio-user): adds PRE_COPY; STOP_COPY -> PRE_COPY is blocked. */
    static final String WITH_PRE_COPY = """
            ERROR -> ERROR : EINVAL
            ERROR -> STOP : EINVAL
            ERROR -> RUNNING : EINVAL
            ERROR -> STOP_COPY : EINVAL
            ERROR -> RESUMING : EINVAL
            ERROR -> RUNNING_P2P : EINVAL
            ERROR -> PRE_COPY : EINVAL
            ERROR -> PRE_COPY_P2P : EINVAL
            STOP -> ERROR : EINVAL
            STOP -> STOP : -
            STOP -> RUNNING : RUNNING
            STOP -> STOP_COPY : STOP_COPY
            STOP -> RESUMING : RESUMING
            STOP -> RUNNING_P2P : EINVAL
            STOP -> PRE_COPY : RUNNING, PRE_COPY
            STOP -> PRE_COPY_P2P : EINVAL
            RUNNING -> ERROR : EINVAL
            RUNNING -> STOP : STOP
            RUNNING -> RUNNING : -
            RUNNING -> STOP_COPY : STOP, STOP_COPY
            RUNNING -> RESUMING : STOP, RESUMING
            RUNNING -> RUNNING_P2P : EINVAL
            RUNNING -> PRE_COPY : PRE_COPY
            RUNNING -> PRE_COPY_P2P : EINVAL
            STOP_COPY -> ERROR : EINVAL
            STOP_COPY -> STOP : STOP
            STOP_COPY -> RUNNING : STOP, RUNNING
            STOP_COPY -> STOP_COPY : -
            STOP_COPY -> RESUMING : STOP, RESUMING
            STOP_COPY -> RUNNING_P2P : EINVAL
            STOP_COPY -> PRE_COPY : EINVAL
            STOP_COPY -> PRE_COPY_P2P : EINVAL
            RESUMING -> ERROR : EINVAL
            RESUMING -> STOP : STOP
            RESUMING -> RUNNING : STOP, RUNNING
            RESUMING -> STOP_COPY : STOP, STOP_COPY
            RESUMING -> RESUMING : -
            RESUMING -> RUNNING_P2P : EINVAL
            RESUMING -> PRE_COPY : STOP, RUNNING, PRE_COPY
            RESUMING -> PRE_COPY_P2P : EINVAL
            RUNNING_P2P -> ERROR : EINVAL
            RUNNING_P2P -> STOP : EINVAL
            RUNNING_P2P -> RUNNING : EINVAL
            RUNNING_P2P -> STOP_COPY : EINVAL
            RUNNING_P2P -> RESUMING : EINVAL
            RUNNING_P2P -> RUNNING_P2P : EINVAL
            RUNNING_P2P -> PRE_COPY : EINVAL
            RUNNING_P2P -> PRE_COPY_P2P : EINVAL
            PRE_COPY -> ERROR : EINVAL
            PRE_COPY -> STOP : RUNNING, STOP
            PRE_COPY -> RUNNING : RUNNING
            PRE_COPY -> STOP_COPY : STOP_COPY
            PRE_COPY -> RESUMING : RUNNING, STOP, RESUMING
            PRE_COPY -> RUNNING_P2P : EINVAL
            PRE_COPY -> PRE_COPY : -
            PRE_COPY -> PRE_COPY_P2P : EINVAL
            PRE_COPY_P2P -> ERROR : EINVAL
            PRE_COPY_P2P -> STOP : EINVAL
            PRE_COPY_P2P -> RUNNING : EINVAL
            PRE_COPY_P2P -> STOP_COPY : EINVAL
            PRE_COPY_P2P -> RESUMING : EINVAL
            PRE_COPY_P2P -> RUNNING_P2P : EINVAL
            PRE_COPY_P2P -> PRE_COPY : EINVAL
            PRE_COPY_P2P -> PRE_COPY_P2P : EINVAL
            """;

    /**
     * STOP_COPY | P2P | PRE_COPY (0x7): no state is skipped, so this is the kernel table applied verbatim;
     * the multi-step paths match the combined transitions listed in the kernel's comment.
     */
    static final String WITH_P2P_AND_PRE_COPY = """
            ERROR -> ERROR : EINVAL
            ERROR -> STOP : EINVAL
            ERROR -> RUNNING : EINVAL
            ERROR -> STOP_COPY : EINVAL
            ERROR -> RESUMING : EINVAL
            ERROR -> RUNNING_P2P : EINVAL
            ERROR -> PRE_COPY : EINVAL
            ERROR -> PRE_COPY_P2P : EINVAL
            STOP -> ERROR : EINVAL
            STOP -> STOP : -
            STOP -> RUNNING : RUNNING_P2P, RUNNING
            STOP -> STOP_COPY : STOP_COPY
            STOP -> RESUMING : RESUMING
            STOP -> RUNNING_P2P : RUNNING_P2P
            STOP -> PRE_COPY : RUNNING_P2P, RUNNING, PRE_COPY
            STOP -> PRE_COPY_P2P : RUNNING_P2P, PRE_COPY_P2P
            RUNNING -> ERROR : EINVAL
            RUNNING -> STOP : RUNNING_P2P, STOP
            RUNNING -> RUNNING : -
            RUNNING -> STOP_COPY : RUNNING_P2P, STOP, STOP_COPY
            RUNNING -> RESUMING : RUNNING_P2P, STOP, RESUMING
            RUNNING -> RUNNING_P2P : RUNNING_P2P
            RUNNING -> PRE_COPY : PRE_COPY
            RUNNING -> PRE_COPY_P2P : RUNNING_P2P, PRE_COPY_P2P
            STOP_COPY -> ERROR : EINVAL
            STOP_COPY -> STOP : STOP
            STOP_COPY -> RUNNING : STOP, RUNNING_P2P, RUNNING
            STOP_COPY -> STOP_COPY : -
            STOP_COPY -> RESUMING : STOP, RESUMING
            STOP_COPY -> RUNNING_P2P : STOP, RUNNING_P2P
            STOP_COPY -> PRE_COPY : EINVAL
            STOP_COPY -> PRE_COPY_P2P : EINVAL
            RESUMING -> ERROR : EINVAL
            RESUMING -> STOP : STOP
            RESUMING -> RUNNING : STOP, RUNNING_P2P, RUNNING
            RESUMING -> STOP_COPY : STOP, STOP_COPY
            RESUMING -> RESUMING : -
            RESUMING -> RUNNING_P2P : STOP, RUNNING_P2P
            RESUMING -> PRE_COPY : STOP, RUNNING_P2P, RUNNING, PRE_COPY
            RESUMING -> PRE_COPY_P2P : STOP, RUNNING_P2P, PRE_COPY_P2P
            RUNNING_P2P -> ERROR : EINVAL
            RUNNING_P2P -> STOP : STOP
            RUNNING_P2P -> RUNNING : RUNNING
            RUNNING_P2P -> STOP_COPY : STOP, STOP_COPY
            RUNNING_P2P -> RESUMING : STOP, RESUMING
            RUNNING_P2P -> RUNNING_P2P : -
            RUNNING_P2P -> PRE_COPY : RUNNING, PRE_COPY
            RUNNING_P2P -> PRE_COPY_P2P : PRE_COPY_P2P
            PRE_COPY -> ERROR : EINVAL
            PRE_COPY -> STOP : RUNNING, RUNNING_P2P, STOP
            PRE_COPY -> RUNNING : RUNNING
            PRE_COPY -> STOP_COPY : PRE_COPY_P2P, STOP_COPY
            PRE_COPY -> RESUMING : RUNNING, RUNNING_P2P, STOP, RESUMING
            PRE_COPY -> RUNNING_P2P : RUNNING, RUNNING_P2P
            PRE_COPY -> PRE_COPY : -
            PRE_COPY -> PRE_COPY_P2P : PRE_COPY_P2P
            PRE_COPY_P2P -> ERROR : EINVAL
            PRE_COPY_P2P -> STOP : RUNNING_P2P, STOP
            PRE_COPY_P2P -> RUNNING : RUNNING_P2P, RUNNING
            PRE_COPY_P2P -> STOP_COPY : STOP_COPY
            PRE_COPY_P2P -> RESUMING : RUNNING_P2P, STOP, RESUMING
            PRE_COPY_P2P -> RUNNING_P2P : RUNNING_P2P
            PRE_COPY_P2P -> PRE_COPY : PRE_COPY
            PRE_COPY_P2P -> PRE_COPY_P2P : -
            """;

    /**
     * Protocol reference §11.3 table (non-P2P, with PRE_COPY), copied cell by cell: row = from, column = to,
     * columns STOP, RUNNING, STOP_COPY, RESUMING, PRE_COPY; "—" on the diagonal; "error" = refused.
     */
    static final String[][] REFERENCE_11_3 = {
        {"—", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING→PRE_COPY"},
        {"STOP", "—", "STOP→STOP_COPY", "STOP→RESUMING", "PRE_COPY"},
        {"STOP", "STOP→RUNNING", "—", "STOP→RESUMING", "error"},
        {"STOP", "STOP→RUNNING", "STOP→STOP_COPY", "—", "STOP→RUNNING→PRE_COPY"},
        {"RUNNING→STOP", "RUNNING", "STOP_COPY", "RUNNING→STOP→RESUMING", "—"},
    };

    static final MigrationState[] REFERENCE_11_3_ORDER = {
        MigrationState.STOP, MigrationState.RUNNING, MigrationState.STOP_COPY, MigrationState.RESUMING,
        MigrationState.PRE_COPY
    };

    /** Arcs each feature set uses (kernel comment above vfio_from_fsm_table), written by hand. */
    static final String ARCS_STOP_COPY_ONLY =
            "RUNNING>STOP STOP>RUNNING STOP>STOP_COPY STOP_COPY>STOP STOP>RESUMING RESUMING>STOP";
    static final String ARCS_WITH_P2P = "STOP>STOP_COPY STOP_COPY>STOP STOP>RESUMING RESUMING>STOP"
            + " RUNNING>RUNNING_P2P RUNNING_P2P>RUNNING RUNNING_P2P>STOP STOP>RUNNING_P2P";
    static final String ARCS_WITH_PRE_COPY = ARCS_STOP_COPY_ONLY
            + " RUNNING>PRE_COPY PRE_COPY>RUNNING PRE_COPY>STOP_COPY";
    static final String ARCS_WITH_P2P_AND_PRE_COPY = ARCS_WITH_P2P
            + " RUNNING>PRE_COPY PRE_COPY>RUNNING PRE_COPY>PRE_COPY_P2P PRE_COPY_P2P>PRE_COPY"
            + " PRE_COPY_P2P>RUNNING_P2P PRE_COPY_P2P>STOP_COPY RUNNING_P2P>PRE_COPY_P2P";

    /** Expected outcome of one pair: a path, or null for EINVAL. */
    record Expected(MigrationState from, MigrationState to, List<MigrationState> path) {}

    static Map<String, Expected> parse(String table) {
        Map<String, Expected> cases = new LinkedHashMap<>();
        for (String line : table.strip().split("\n")) {
            String[] sides = line.split(":");
            assertThat(sides).as(line).hasSize(2);
            String[] ends = sides[0].split("->");
            assertThat(ends).as(line).hasSize(2);
            MigrationState from = MigrationState.valueOf(ends[0].strip());
            MigrationState to = MigrationState.valueOf(ends[1].strip());
            String result = sides[1].strip();
            List<MigrationState> path;
            if (result.equals("EINVAL")) {
                path = null;
            } else if (result.equals("-")) {
                path = List.of();
            } else {
                path = Arrays.stream(result.split(",")).map(s -> MigrationState.valueOf(s.strip())).toList();
            }
            Expected previous = cases.put(from + "->" + to, new Expected(from, to, path));
            assertThat(previous).as("duplicate line " + line).isNull();
        }
        assertThat(cases).as("table must list all 8 x 8 pairs").hasSize(64);
        return cases;
    }

    static Set<String> arcs(String list) {
        return new HashSet<>(Arrays.asList(list.split(" ")));
    }

    static void assertEinval(Runnable r) {
        assertThatThrownBy(r::run)
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
    }

    void checkExhaustively(MigrationFeatures features, String table) {
        int paths = 0;
        int refused = 0;
        for (Expected c : parse(table).values()) {
            if (c.path == null) {
                assertThatThrownBy(() -> MigrationPathPlanner.path(features, c.from, c.to))
                        .as(features + ": " + c.from + " -> " + c.to)
                        .isInstanceOfSatisfying(VfioUserException.class,
                                e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
                assertEinval(() -> MigrationPathPlanner.nextState(features, c.from, c.to));
                refused++;
            } else {
                assertThat(MigrationPathPlanner.path(features, c.from, c.to))
                        .as(features + ": " + c.from + " -> " + c.to)
                        .containsExactlyElementsOf(c.path);
                MigrationState expectedNext = c.path.isEmpty() ? c.from : c.path.getFirst();
                assertThat(MigrationPathPlanner.nextState(features, c.from, c.to))
                        .as(features + ": next " + c.from + " -> " + c.to)
                        .isEqualTo(expectedNext);
                paths++;
            }
        }
        assertThat(paths + refused).isEqualTo(64);
    }

    @Test
    void stopCopyOnlyMatchesKernel() {
        checkExhaustively(MigrationFeatures.STOP_COPY, STOP_COPY_ONLY);
    }

    @Test
    void p2pMatchesKernel() {
        checkExhaustively(MigrationFeatures.STOP_COPY_P2P, WITH_P2P);
    }

    @Test
    void preCopyMatchesKernel() {
        checkExhaustively(MigrationFeatures.STOP_COPY_PRE_COPY, WITH_PRE_COPY);
    }

    @Test
    void p2pAndPreCopyMatchesKernel() {
        checkExhaustively(MigrationFeatures.STOP_COPY_P2P_PRE_COPY, WITH_P2P_AND_PRE_COPY);
    }

    /** The hand tables of the two non-P2P sets agree with protocol reference §11.3 (a second source). */
    @Test
    void handTablesAgreeWithReferenceSection11_3() {
        Map<String, Expected> preCopy = parse(WITH_PRE_COPY);
        Map<String, Expected> stopCopyOnly = parse(STOP_COPY_ONLY);
        for (int i = 0; i < REFERENCE_11_3_ORDER.length; i++) {
            for (int j = 0; j < REFERENCE_11_3_ORDER.length; j++) {
                MigrationState from = REFERENCE_11_3_ORDER[i];
                MigrationState to = REFERENCE_11_3_ORDER[j];
                String cell = REFERENCE_11_3[i][j];
                List<MigrationState> expected = switch (cell) {
                    case "—" -> List.of();
                    case "error" -> null;
                    default -> Arrays.stream(cell.split("→")).map(MigrationState::valueOf).toList();
                };
                String key = from + "->" + to;
                assertThat(preCopy.get(key).path).as("PRE_COPY table vs §11.3: " + key).isEqualTo(expected);
                if (from != MigrationState.PRE_COPY && to != MigrationState.PRE_COPY) {
                    assertThat(stopCopyOnly.get(key).path).as("STOP_COPY table vs §11.3: " + key)
                            .isEqualTo(expected);
                }
            }
        }
    }

    @Test
    void directArcsPerFeatureSet() {
        Map<MigrationFeatures, Set<String>> expected = Map.of(
                MigrationFeatures.STOP_COPY, arcs(ARCS_STOP_COPY_ONLY),
                MigrationFeatures.STOP_COPY_P2P, arcs(ARCS_WITH_P2P),
                MigrationFeatures.STOP_COPY_PRE_COPY, arcs(ARCS_WITH_PRE_COPY),
                MigrationFeatures.STOP_COPY_P2P_PRE_COPY, arcs(ARCS_WITH_P2P_AND_PRE_COPY));
        Set<String> union = new HashSet<>();
        expected.values().forEach(union::addAll);
        assertThat(union).hasSize(18);
        for (MigrationState from : MigrationState.values()) {
            for (MigrationState to : MigrationState.values()) {
                String arc = from + ">" + to;
                assertThat(MigrationPathPlanner.isDirectArc(from, to)).as(arc).isEqualTo(union.contains(arc));
                for (var e : expected.entrySet()) {
                    assertThat(MigrationPathPlanner.isDirectArc(e.getKey(), from, to))
                            .as(e.getKey() + ": " + arc).isEqualTo(e.getValue().contains(arc));
                }
            }
        }
    }

    /** Every arc of every hand-written path is an arc the feature set's device implements, and vice versa. */
    @Test
    void handPathsUseExactlyTheDeviceArcs() {
        Map<MigrationFeatures, String[]> sets = Map.of(
                MigrationFeatures.STOP_COPY, new String[] {STOP_COPY_ONLY, ARCS_STOP_COPY_ONLY},
                MigrationFeatures.STOP_COPY_P2P, new String[] {WITH_P2P, ARCS_WITH_P2P},
                MigrationFeatures.STOP_COPY_PRE_COPY, new String[] {WITH_PRE_COPY, ARCS_WITH_PRE_COPY},
                MigrationFeatures.STOP_COPY_P2P_PRE_COPY,
                new String[] {WITH_P2P_AND_PRE_COPY, ARCS_WITH_P2P_AND_PRE_COPY});
        for (var e : sets.entrySet()) {
            Set<String> used = new HashSet<>();
            for (Expected c : parse(e.getValue()[0]).values()) {
                if (c.path == null) {
                    continue;
                }
                MigrationState cur = c.from;
                for (MigrationState next : c.path) {
                    used.add(cur + ">" + next);
                    cur = next;
                }
            }
            assertThat(used).as(e.getKey().toString()).isEqualTo(arcs(e.getValue()[1]));
        }
    }

    /** The blocked arcs are refused at once on every set that offers the target (no endless reroute). */
    @Test
    void blockedArcsAreRefused() {
        assertEinval(() -> MigrationPathPlanner.path(
                MigrationFeatures.STOP_COPY_PRE_COPY, MigrationState.STOP_COPY, MigrationState.PRE_COPY));
        assertEinval(() -> MigrationPathPlanner.path(
                MigrationFeatures.STOP_COPY_P2P_PRE_COPY, MigrationState.STOP_COPY, MigrationState.PRE_COPY));
        assertEinval(() -> MigrationPathPlanner.path(
                MigrationFeatures.STOP_COPY_P2P_PRE_COPY, MigrationState.STOP_COPY, MigrationState.PRE_COPY_P2P));
    }

    /** Every one of the 256 requests returns or throws EINVAL quickly; paths never revisit a state. */
    @Test
    void plannerTerminatesForEveryPair() {
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            int count = 0;
            for (MigrationFeatures f : MigrationFeatures.ALL) {
                for (MigrationState from : MigrationState.values()) {
                    for (MigrationState to : MigrationState.values()) {
                        count++;
                        List<MigrationState> path;
                        try {
                            path = MigrationPathPlanner.path(f, from, to);
                        } catch (VfioUserException e) {
                            assertThat(e.errno()).isEqualTo(Errno.EINVAL);
                            continue;
                        }
                        List<MigrationState> visited = new ArrayList<>();
                        visited.add(from);
                        visited.addAll(path);
                        assertThat(EnumSet.copyOf(visited)).as(f + ": " + visited).hasSize(visited.size());
                        if (!path.isEmpty() && path.getLast() != to) {
                            fail(f + ": path " + from + " -> " + to + " ends at " + path.getLast());
                        }
                    }
                }
            }
            assertThat(count).isEqualTo(256);
        });
    }
}
