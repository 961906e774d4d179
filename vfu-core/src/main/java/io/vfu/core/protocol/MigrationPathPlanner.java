package io.vfu.core.protocol;

import static io.vfu.core.protocol.MigrationState.ERROR;
import static io.vfu.core.protocol.MigrationState.PRE_COPY;
import static io.vfu.core.protocol.MigrationState.PRE_COPY_P2P;
import static io.vfu.core.protocol.MigrationState.RESUMING;
import static io.vfu.core.protocol.MigrationState.RUNNING;
import static io.vfu.core.protocol.MigrationState.RUNNING_P2P;
import static io.vfu.core.protocol.MigrationState.STOP;
import static io.vfu.core.protocol.MigrationState.STOP_COPY;

import io.vfu.core.linux.Errno;
import java.util.ArrayList;
import java.util.List;

/**
 * Plans migration state transitions exactly as the Linux kernel does (protocol reference §11.2, §11.3).
 *
 * <p>A SET of MIG_DEVICE_STATE may name any supported state; the server walks there one <em>arc</em> at a
 * time, calling the device once per arc. This class reproduces, as data, the kernel's
 * {@code vfio_mig_get_next_state()} in {@code drivers/vfio/vfio_main.c}:
 * <ul>
 *   <li>an 8×8 next-hop table ({@code vfio_from_fsm_table}), written for a device that
 *       supports every optional state;</li>
 *   <li>the per-state feature requirements ({@code state_flags_table}, here
 *       {@link MigrationFeatures#supports(MigrationState)});</li>
 *   <li>the reroute rule: when the next hop is a state the device does not support, look it up again from
 *       that state ({@code next = table[next][target]}) until a supported state is reached — so a device
 *       without P2P sees e.g. RUNNING → STOP directly instead of RUNNING → RUNNING_P2P → STOP.</li>
 * </ul>
 *
 * <p>Refused with {@link Errno#EINVAL} (where the kernel returns {@code -EINVAL}): a source or target the
 * features do not support, ERROR as source or target, and the blocked arcs STOP_COPY → PRE_COPY and
 * STOP_COPY → PRE_COPY_P2P (the table holds ERROR there). The kernel's reroute loop did not stop on that
 * ERROR entry (ERROR needs every flag, so it never counts as supported, and {@code table[ERROR][*]} is
 * ERROR): a blocked arc on a PRE_COPY device spins forever in kernels without the 2026 patch that
 * terminates the skip loop on the ERROR sentinel. Here the reroute stops on ERROR and every walk is bounded by the number of
 * states, so planning always terminates.
 *
 * <p>libvfio-user (protocol reference §11.3) implements the same paths for its non-P2P states.
 */
public final class MigrationPathPlanner {
    private static final int N = MigrationState.values().length;

    /**
     * {@code NEXT[from][target]}: the next state on the way from {@code from} to {@code target} for a device
     * with every feature. Rows and columns in wire order: ERROR, STOP, RUNNING, STOP_COPY, RESUMING,
     * RUNNING_P2P, PRE_COPY, PRE_COPY_P2P. Transcribed from the kernel's {@code vfio_from_fsm_table}.
     */
    private static final MigrationState[][] NEXT = {
        // from \ to        ERROR  STOP         RUNNING      STOP_COPY     RESUMING     RUNNING_P2P  PRE_COPY     PRE_COPY_P2P
        /* ERROR */        {ERROR, ERROR,       ERROR,       ERROR,        ERROR,       ERROR,       ERROR,       ERROR},
        /* STOP */         {ERROR, STOP,        RUNNING_P2P, STOP_COPY,    RESUMING,    RUNNING_P2P, RUNNING_P2P, RUNNING_P2P},
        /* RUNNING */      {ERROR, RUNNING_P2P, RUNNING,     RUNNING_P2P,  RUNNING_P2P, RUNNING_P2P, PRE_COPY,    RUNNING_P2P},
        /* STOP_COPY */    {ERROR, STOP,        STOP,        STOP_COPY,    STOP,        STOP,        ERROR,       ERROR},
        /* RESUMING */     {ERROR, STOP,        STOP,        STOP,         RESUMING,    STOP,        STOP,        STOP},
        /* RUNNING_P2P */  {ERROR, STOP,        RUNNING,     STOP,         STOP,        RUNNING_P2P, RUNNING,     PRE_COPY_P2P},
        /* PRE_COPY */     {ERROR, RUNNING,     RUNNING,     PRE_COPY_P2P, RUNNING,     RUNNING,     PRE_COPY,    PRE_COPY_P2P},
        /* PRE_COPY_P2P */ {ERROR, RUNNING_P2P, RUNNING_P2P, STOP_COPY,    RUNNING_P2P, RUNNING_P2P, PRE_COPY,    PRE_COPY_P2P},
    };

    /**
     * An arc a device implements when it supports both ends, unless one of {@code unlessFlags} is set (then
     * the planner goes through a P2P state instead). From the arc lists in the kernel's comment above
     * {@code vfio_from_fsm_table}.
     */
    private record Arc(MigrationState from, MigrationState to, long unlessFlags) {}

    private static final List<Arc> ARCS = List.of(
            // always
            new Arc(STOP, STOP_COPY, 0),
            new Arc(STOP_COPY, STOP, 0),
            new Arc(STOP, RESUMING, 0),
            new Arc(RESUMING, STOP, 0),
            // without P2P only
            new Arc(RUNNING, STOP, MigrationFeatures.FLAG_P2P),
            new Arc(STOP, RUNNING, MigrationFeatures.FLAG_P2P),
            // P2P
            new Arc(RUNNING, RUNNING_P2P, 0),
            new Arc(RUNNING_P2P, RUNNING, 0),
            new Arc(RUNNING_P2P, STOP, 0),
            new Arc(STOP, RUNNING_P2P, 0),
            // PRE_COPY
            new Arc(RUNNING, PRE_COPY, 0),
            new Arc(PRE_COPY, RUNNING, 0),
            new Arc(PRE_COPY, STOP_COPY, MigrationFeatures.FLAG_P2P),
            // P2P and PRE_COPY
            new Arc(PRE_COPY, PRE_COPY_P2P, 0),
            new Arc(PRE_COPY_P2P, PRE_COPY, 0),
            new Arc(PRE_COPY_P2P, RUNNING_P2P, 0),
            new Arc(PRE_COPY_P2P, STOP_COPY, 0),
            new Arc(RUNNING_P2P, PRE_COPY_P2P, 0));

    private MigrationPathPlanner() {}

    /**
     * The states a device with {@code features} passes through on the way from {@code from} to {@code to}:
     * one element per arc (the arc's end), the last one being {@code to}; empty when {@code from == to}
     * (a SET to the current state is a successful no-op). Identical to calling the kernel's
     * {@code vfio_mig_get_next_state()} repeatedly.
     *
     * @throws VfioUserException {@link Errno#EINVAL} if either state is ERROR or not supported by
     *                           {@code features} (checked even when {@code from == to}), or the transition is
     *                           blocked (STOP_COPY → PRE_COPY / PRE_COPY_P2P)
     */
    public static List<MigrationState> path(MigrationFeatures features, MigrationState from, MigrationState to) {
        requireEndpoints(features, from, to);
        List<MigrationState> path = new ArrayList<>(N);
        MigrationState cur = from;
        while (cur != to) {
            if (path.size() == N) { // a path visits each state at most once; unreachable with the kernel table
                throw new VfioUserException(Errno.EINVAL,
                        "migration: no path from " + from + " to " + to + " with " + features);
            }
            cur = step(features, cur, to);
            path.add(cur);
        }
        return List.copyOf(path);
    }

    /**
     * The next state on the way from {@code cur} to {@code target} (the kernel's
     * {@code vfio_mig_get_next_state()}): always a state {@code features} supports and a
     * {@link #isDirectArc(MigrationFeatures, MigrationState, MigrationState) direct arc} from {@code cur};
     * {@code cur} itself when {@code cur == target}.
     *
     * @throws VfioUserException {@link Errno#EINVAL} as for {@link #path}
     */
    public static MigrationState nextState(MigrationFeatures features, MigrationState cur, MigrationState target) {
        requireEndpoints(features, cur, target);
        return cur == target ? cur : step(features, cur, target);
    }

    /**
     * True if {@code from → to} is one of the arcs a device implements for some feature set (18 arcs, see
     * protocol reference §11.2 and the kernel comment above {@code vfio_from_fsm_table}): the arcs that
     * {@link #path} can produce. Equal states are not an arc.
     */
    public static boolean isDirectArc(MigrationState from, MigrationState to) {
        for (Arc arc : ARCS) {
            if (arc.from == from && arc.to == to) {
                return true;
            }
        }
        return false;
    }

    /**
     * True if a device with {@code features} must implement {@code from → to}: exactly the arcs that
     * {@link #path} produces for these features. E.g. RUNNING → STOP exists only without P2P (with P2P the
     * path is RUNNING → RUNNING_P2P → STOP); PRE_COPY → STOP_COPY only with PRE_COPY and without P2P.
     */
    public static boolean isDirectArc(MigrationFeatures features, MigrationState from, MigrationState to) {
        for (Arc arc : ARCS) {
            if (arc.from == from && arc.to == to) {
                return features.supports(from) && features.supports(to) && (features.flags() & arc.unlessFlags) == 0;
            }
        }
        return false;
    }

    private static void requireEndpoints(MigrationFeatures features, MigrationState from, MigrationState to) {
        requireSupported(features, from, "current");
        requireSupported(features, to, "target");
    }

    private static void requireSupported(MigrationFeatures features, MigrationState state, String role) {
        if (state == ERROR) {
            throw new VfioUserException(Errno.EINVAL, "migration: " + role + " state ERROR"
                    + (role.equals("target") ? " cannot be requested" : "; only DEVICE_RESET leaves it"));
        }
        if (!features.supports(state)) {
            throw new VfioUserException(Errno.EINVAL,
                    "migration: " + role + " state " + state + " not supported with " + features);
        }
    }

    /** One kernel step; the endpoints are valid and different. */
    private static MigrationState step(MigrationFeatures features, MigrationState cur, MigrationState target) {
        MigrationState next = NEXT[cur.wireValue()][target.wireValue()];
        // Reroute around unsupported states; stop on the ERROR sentinel (blocked arc). Bounded by N lookups.
        for (int hops = 0; next != ERROR && !features.supports(next); hops++) {
            if (hops == N) {
                throw new VfioUserException(Errno.EINVAL,
                        "migration: no path from " + cur + " to " + target + " with " + features);
            }
            next = NEXT[next.wireValue()][target.wireValue()];
        }
        if (next == ERROR) {
            throw new VfioUserException(Errno.EINVAL,
                    "migration: transition " + cur + " -> " + target + " is not allowed");
        }
        return next;
    }
}
