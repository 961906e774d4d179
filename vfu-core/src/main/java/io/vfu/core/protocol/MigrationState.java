package io.vfu.core.protocol;

import io.vfu.core.linux.Errno;

/**
 * Migration v2 device states ({@code device_state}, a u32 in DEVICE_FEATURE MIG_DEVICE_STATE; protocol
 * reference §11.1). The wire values are the kernel's {@code enum vfio_device_mig_state}
 * ({@code include/uapi/linux/vfio.h}).
 *
 * <p>Which states a device offers depends on its {@link MigrationFeatures}: the 5 base states always
 * ({@code ERROR} is never a target), {@link #RUNNING_P2P} only with P2P, {@link #PRE_COPY} only with
 * PRE_COPY, {@link #PRE_COPY_P2P} only with both. Transitions between states are planned by
 * {@link MigrationPathPlanner}.
 */
public enum MigrationState {
    /** 0: the device failed a transition and could not recover; never settable, left via DEVICE_RESET. */
    ERROR(0),
    /** 1: device frozen: no DMA, no interrupts, internal state unchanged. */
    STOP(1),
    /** 2: normal operation (the initial state). */
    RUNNING(2),
    /** 3: stopped; the final device state is readable with MIG_DATA_READ. */
    STOP_COPY(3),
    /** 4: stopped; accepting device state via MIG_DATA_WRITE. */
    RESUMING(4),
    /** 5: RUNNING, except that the device may not initiate peer-to-peer DMA (needs the P2P feature). */
    RUNNING_P2P(5),
    /** 6: running and saving: state readable with MIG_DATA_READ while the device runs (needs PRE_COPY). */
    PRE_COPY(6),
    /** 7: PRE_COPY, except that the device may not initiate peer-to-peer DMA (needs P2P and PRE_COPY). */
    PRE_COPY_P2P(7);

    /** Largest valid wire value ({@code VFIO_DEVICE_STATE_PRE_COPY_P2P}). */
    public static final int MAX_WIRE_VALUE = 7;

    private static final MigrationState[] BY_WIRE = values();

    private final int wireValue;

    MigrationState(int wireValue) {
        this.wireValue = wireValue;
    }

    /** The value carried in {@code device_state}. */
    public int wireValue() {
        return wireValue;
    }

    /**
     * Decodes a {@code device_state} value (a u32 passed as an unsigned value, or any long).
     *
     * <p>Values 0..7 are accepted (including ERROR: it is a valid state to <em>report</em>; the planner refuses
     * it as a target). Everything above 7 is rejected. libvfio-user's range check lets the value 8 slip
     * through and index past its table (protocol reference §11.3); we reject it like every other
     * out-of-range value.
     *
     * @throws VfioUserException {@link Errno#EINVAL} if the value is negative or greater than 7
     */
    public static MigrationState fromWire(long value) {
        if (value < 0 || value > MAX_WIRE_VALUE) {
            throw new VfioUserException(Errno.EINVAL,
                    "device_state " + Long.toUnsignedString(value) + " is not a migration state (0..7)");
        }
        return BY_WIRE[(int) value];
    }

    /**
     * True for the "saving group" — {@link #PRE_COPY}, {@link #PRE_COPY_P2P} and {@link #STOP_COPY} — in
     * which the device's state is readable with MIG_DATA_READ (one stream shared by the whole group).
     */
    public boolean isSaving() {
        return this == PRE_COPY || this == PRE_COPY_P2P || this == STOP_COPY;
    }

    /**
     * True when the device operates: {@link #RUNNING}, {@link #PRE_COPY}, and their P2P variants
     * {@link #RUNNING_P2P} and {@link #PRE_COPY_P2P}. In the P2P variants the device still runs (it may DMA to
     * guest memory and raise interrupts) but must not initiate peer-to-peer DMA — see
     * {@link #isP2pQuiesced()}.
     */
    public boolean isRunning() {
        return this == RUNNING || this == PRE_COPY || this == RUNNING_P2P || this == PRE_COPY_P2P;
    }

    /** True for {@link #RUNNING_P2P} and {@link #PRE_COPY_P2P}: running, peer-to-peer DMA quiesced. */
    public boolean isP2pQuiesced() {
        return this == RUNNING_P2P || this == PRE_COPY_P2P;
    }

    /**
     * True for {@link #STOP}, {@link #STOP_COPY} and {@link #RESUMING}: the device does not operate (no DMA,
     * no interrupts, no change of its internal state other than by MIG_DATA_WRITE in RESUMING).
     */
    public boolean isStopped() {
        return this == STOP || this == STOP_COPY || this == RESUMING;
    }

    /**
     * The {@link MigrationFeatures} flags a device needs to offer this state (the kernel's
     * {@code state_flags_table}); all bits for {@link #ERROR}, so no feature set "supports" it.
     */
    long requiredFlags() {
        return switch (this) {
            case ERROR -> -1L;
            case STOP, RUNNING, STOP_COPY, RESUMING -> MigrationFeatures.FLAG_STOP_COPY;
            case RUNNING_P2P -> MigrationFeatures.FLAG_STOP_COPY | MigrationFeatures.FLAG_P2P;
            case PRE_COPY -> MigrationFeatures.FLAG_STOP_COPY | MigrationFeatures.FLAG_PRE_COPY;
            case PRE_COPY_P2P -> MigrationFeatures.FLAG_STOP_COPY | MigrationFeatures.FLAG_P2P
                    | MigrationFeatures.FLAG_PRE_COPY;
        };
    }
}
