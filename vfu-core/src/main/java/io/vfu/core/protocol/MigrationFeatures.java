package io.vfu.core.protocol;

import io.vfu.core.linux.Errno;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * The migration capabilities of a device: the {@code flags u64} returned by DEVICE_FEATURE GET of feature 1
 * (MIGRATION; protocol reference §10), the kernel's {@code struct vfio_device_feature_migration}.
 *
 * <pre>
 *   bit 0  0x1  STOP_COPY  mandatory: STOP, RUNNING, STOP_COPY, RESUMING (and ERROR)
 *   bit 1  0x2  P2P        adds RUNNING_P2P (and PRE_COPY_P2P together with PRE_COPY)
 *   bit 2  0x4  PRE_COPY   adds PRE_COPY    (and PRE_COPY_P2P together with P2P)
 * </pre>
 *
 * <p>Exactly four sets are valid: {@link #STOP_COPY}, {@link #STOP_COPY_P2P}, {@link #STOP_COPY_PRE_COPY}
 * and {@link #STOP_COPY_P2P_PRE_COPY}. A set without STOP_COPY, or with any other bit, is rejected: the
 * kernel says "other combinations of flags have behavior to be defined in the future", so a peer cannot
 * plan transitions for flags it does not know. libvfio-user always reports STOP_COPY|PRE_COPY (0x5).
 *
 * @param flags the feature bits, one of the four valid sets
 */
public record MigrationFeatures(long flags) {
    /** {@code VFIO_MIGRATION_STOP_COPY}. */
    public static final long FLAG_STOP_COPY = 0x1;
    /** {@code VFIO_MIGRATION_P2P}. */
    public static final long FLAG_P2P = 0x2;
    /** {@code VFIO_MIGRATION_PRE_COPY}. */
    public static final long FLAG_PRE_COPY = 0x4;
    /** All bits this version understands. */
    public static final long KNOWN_FLAGS = FLAG_STOP_COPY | FLAG_P2P | FLAG_PRE_COPY;

    /** 0x1: the mandatory base states only. */
    public static final MigrationFeatures STOP_COPY = new MigrationFeatures(FLAG_STOP_COPY);
    /** 0x3: base states plus RUNNING_P2P. */
    public static final MigrationFeatures STOP_COPY_P2P = new MigrationFeatures(FLAG_STOP_COPY | FLAG_P2P);
    /** 0x5: base states plus PRE_COPY (what libvfio-user reports). */
    public static final MigrationFeatures STOP_COPY_PRE_COPY =
            new MigrationFeatures(FLAG_STOP_COPY | FLAG_PRE_COPY);
    /** 0x7: every state: RUNNING_P2P, PRE_COPY and PRE_COPY_P2P. */
    public static final MigrationFeatures STOP_COPY_P2P_PRE_COPY =
            new MigrationFeatures(FLAG_STOP_COPY | FLAG_P2P | FLAG_PRE_COPY);

    /** The four valid sets, in flag order. */
    public static final List<MigrationFeatures> ALL =
            List.of(STOP_COPY, STOP_COPY_P2P, STOP_COPY_PRE_COPY, STOP_COPY_P2P_PRE_COPY);

    /**
     * Validates {@code flags}.
     *
     * @throws VfioUserException {@link Errno#EINVAL} if STOP_COPY is missing or an unknown bit is set
     */
    public MigrationFeatures {
        if ((flags & ~KNOWN_FLAGS) != 0) {
            throw new VfioUserException(Errno.EINVAL, "MIGRATION flags 0x" + Long.toHexString(flags)
                    + ": unknown bits 0x" + Long.toHexString(flags & ~KNOWN_FLAGS));
        }
        if ((flags & FLAG_STOP_COPY) == 0) {
            throw new VfioUserException(Errno.EINVAL,
                    "MIGRATION flags 0x" + Long.toHexString(flags) + ": STOP_COPY (0x1) is mandatory");
        }
    }

    /**
     * Decodes the {@code flags u64} of a MIGRATION feature reply.
     *
     * @throws VfioUserException {@link Errno#EINVAL} if STOP_COPY is missing or an unknown bit is set
     */
    public static MigrationFeatures fromWire(long flags) {
        return new MigrationFeatures(flags);
    }

    /** True if RUNNING_P2P (and, with PRE_COPY, PRE_COPY_P2P) is offered. */
    public boolean hasP2p() {
        return (flags & FLAG_P2P) != 0;
    }

    /** True if PRE_COPY (and, with P2P, PRE_COPY_P2P) is offered. */
    public boolean hasPreCopy() {
        return (flags & FLAG_PRE_COPY) != 0;
    }

    /**
     * True if a device with these features offers {@code state} (the kernel's {@code state_flags_table}
     * test: every flag the state needs is set). Never true for {@link MigrationState#ERROR}, which no client
     * may request.
     */
    public boolean supports(MigrationState state) {
        long required = state.requiredFlags();
        return (required & flags) == required;
    }

    /** The states {@link #supports(MigrationState) supported} by these features (never ERROR). */
    public Set<MigrationState> supportedStates() {
        EnumSet<MigrationState> set = EnumSet.noneOf(MigrationState.class);
        for (MigrationState s : MigrationState.values()) {
            if (supports(s)) {
                set.add(s);
            }
        }
        return Collections.unmodifiableSet(set);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("STOP_COPY");
        if (hasP2p()) {
            sb.append("|P2P");
        }
        if (hasPreCopy()) {
            sb.append("|PRE_COPY");
        }
        return sb.toString();
    }
}
