package io.vfu.core.protocol;

import io.vfu.core.linux.Errno;

/**
 * The vfio-user wire version numbers carried by VERSION (protocol reference §5.1, ambiguity #1). These
 * are not the document revision (0.9.2): libvfio-user speaks 0.2, QEMU's client 0.0 (and refuses a
 * server minor &gt; 0). A minor implies all lower minors; no minor-specific semantics exist.
 */
public final class ProtocolVersion {
    /** The only major version in use. */
    public static final int MAJOR = 0;
    /** The minor our client sends (like QEMU and rust-vmm). */
    public static final int CLIENT_MINOR = 0;
    /** The highest minor our server accepts (like libvfio-user); it replies {@link #negotiateMinor}. */
    public static final int SERVER_MINOR = 2;

    private ProtocolVersion() {
    }

    /** The minor a server replies with: {@code min(clientMinor, ownMinor)}. */
    public static int negotiateMinor(int clientMinor, int ownMinor) {
        return Math.min(clientMinor, ownMinor);
    }

    /**
     * Checks the peer's major version.
     *
     * @throws VfioUserException EINVAL unless {@code major} is {@link #MAJOR}
     */
    public static void requireMajor(int major) {
        if (major != MAJOR) {
            throw new VfioUserException(Errno.EINVAL, "VERSION: unsupported major version " + major + " (need " + MAJOR + ")");
        }
    }
}
