package io.vfu.server.internal;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.MigrationPathPlanner;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.MigrationHandler;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The device's migration state machine (protocol reference §11): plans a SET of MIG_DEVICE_STATE with
 * {@link MigrationPathPlanner} (the kernel's table) and walks it arc by arc through the device's
 * {@link MigrationHandler}; gates MIG_DATA_READ/WRITE and other commands by state.
 *
 * <p>Failure semantics (ambiguity #29): an arc that throws {@link VfioUserException} leaves the device in the
 * last state reached (as libvfio-user does); {@link MigrationHandler.DeviceErrorException} moves it to ERROR,
 * which only DEVICE_RESET leaves (spec §11.1). Confined to the connection thread.
 */
public final class MigrationController {
    private static final Logger log = LoggerFactory.getLogger(MigrationController.class);

    private final MigrationHandler handler;
    private volatile MigrationState state = MigrationState.RUNNING;
    /**
     * The commands {@link #gate} lets through in {@code state}, a bit per command code, kept with it: the hot
     * paths test one int instead of following the state object into a switch (two more cache lines per message).
     */
    private volatile int allowed = allowedIn(MigrationState.RUNNING);

    public MigrationController(MigrationHandler handler) {
        this.handler = handler;
    }

    public boolean supported() {
        return handler != null;
    }

    public MigrationHandler handler() {
        return handler;
    }

    public MigrationFeatures features() {
        requireSupported();
        return handler.features();
    }

    public MigrationState state() {
        return state;
    }

    /**
     * Moves to {@code target} along the kernel's path.
     *
     * @return the states passed through, ending with {@code target}
     */
    public List<MigrationState> setState(MigrationState target) {
        requireSupported();
        if (state == MigrationState.ERROR) {
            throw new VfioUserException(Errno.EINVAL, "MIG_DEVICE_STATE: device is in ERROR; DEVICE_RESET recovers it");
        }
        List<MigrationState> path = MigrationPathPlanner.path(handler.features(), state, target);
        for (MigrationState next : path) {
            MigrationState from = state;
            try {
                handler.transition(from, next);
            } catch (MigrationHandler.DeviceErrorException e) {
                enter(MigrationState.ERROR);
                log.warn("migration arc {} -> {} broke the device: {}", from, next, e.getMessage());
                throw new VfioUserException(Errno.EIO, "MIG_DEVICE_STATE: " + from + " -> " + next
                        + " failed, device in ERROR: " + e.getMessage());
            } catch (VfioUserException e) {
                throw new VfioUserException(e.errno(), "MIG_DEVICE_STATE: " + from + " -> " + next + " failed ("
                        + e.detail() + "); device stays in " + from);
            } catch (RuntimeException e) {
                enter(MigrationState.ERROR);
                log.error("migration arc {} -> {} threw", from, next, e);
                throw new VfioUserException(Errno.EIO, "MIG_DEVICE_STATE: " + from + " -> " + next
                        + " threw " + e + "; device in ERROR");
            }
            enter(next);
        }
        return path;
    }

    /** DEVICE_RESET: ERROR goes back to RUNNING (spec §11.1); any other state is kept (libvfio-user, §9.3). */
    public void afterReset() {
        if (state == MigrationState.ERROR) {
            enter(MigrationState.RUNNING);
        }
    }

    /** Forces a state without device involvement (used after a lost connection left a load incomplete). */
    void force(MigrationState s) {
        enter(s);
    }

    private void enter(MigrationState s) {
        state = s;
        allowed = allowedIn(s);
    }

    /** MIG_DATA_READ: fills {@code dst}, returns the byte count; only in PRE_COPY, PRE_COPY_P2P and STOP_COPY. */
    public long readData(MemorySegment dst) {
        requireSupported();
        if (!state.isSaving()) {
            throw new VfioUserException(Errno.EINVAL, "MIG_DATA_READ: not allowed in " + state);
        }
        long n = handler.readData(dst);
        if (n < 0 || n > dst.byteSize()) {
            throw new VfioUserException(Errno.EIO, "MIG_DATA_READ: device returned " + n + " for " + dst.byteSize());
        }
        return n;
    }

    /** MIG_DATA_WRITE: only in RESUMING. */
    public void writeData(MemorySegment src) {
        requireSupported();
        if (state != MigrationState.RESUMING) {
            throw new VfioUserException(Errno.EINVAL, "MIG_DATA_WRITE: not allowed in " + state);
        }
        handler.writeData(src);
    }

    /**
     * Command gating per state, as libvfio-user does (§11.7 / ambiguity #28): while the device is stopped
     * (STOP, STOP_COPY) only region access, DEVICE_FEATURE and MIG_DATA_READ are accepted, and in STOP_COPY
     * region access is refused too (the device image is being read). RESUMING also takes MIG_DATA_WRITE and
     * everything a destination needs to set up. ERROR accepts DEVICE_FEATURE and DEVICE_RESET.
     */
    public void gate(Command command) {
        gate(command, 1 << command.code());
    }

    /** {@link #gate(Command)} for the hot paths: {@code bit} is {@code 1 << command.code()} (a constant there). */
    public void gate(Command command, int bit) {
        if ((allowed & bit) == 0) {
            throw new VfioUserException(Errno.EINVAL, command + ": not allowed while the device is in " + state);
        }
    }

    private static int allowedIn(MigrationState s) {
        int mask = 0;
        for (Command c : Command.values()) {
            // VERSION always: a new client must be able to attach to a stopped device (e.g. a destination)
            if (c == Command.VERSION || allowedIn(s, c)) {
                mask |= 1 << c.code();
            }
        }
        return mask;
    }

    private static boolean allowedIn(MigrationState s, Command command) {
        return switch (s) {
            case STOP -> command == Command.REGION_READ || command == Command.REGION_WRITE
                    || command == Command.REGION_WRITE_MULTI || command == Command.DEVICE_FEATURE
                    || command == Command.MIG_DATA_READ || command == Command.DEVICE_GET_INFO
                    || command == Command.DEVICE_GET_REGION_INFO || command == Command.DEVICE_GET_IRQ_INFO;
            case STOP_COPY -> command == Command.DEVICE_FEATURE || command == Command.MIG_DATA_READ
                    || command == Command.DEVICE_GET_INFO || command == Command.DEVICE_GET_REGION_INFO
                    || command == Command.DEVICE_GET_IRQ_INFO;
            case ERROR -> command != Command.REGION_READ && command != Command.REGION_WRITE
                    && command != Command.REGION_WRITE_MULTI && command != Command.MIG_DATA_READ
                    && command != Command.MIG_DATA_WRITE;
            default -> true;
        };
    }

    private void requireSupported() {
        if (handler == null) {
            throw new VfioUserException(Errno.EINVAL, "device does not support migration");
        }
    }
}
