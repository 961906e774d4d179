package io.vfu.core.linux;

/**
 * The credentials of a UNIX socket's peer, as the kernel recorded them at connect(2) or socketpair(2)
 * ({@code SO_PEERCRED}, {@code struct ucred}).
 *
 * @param pid the peer's process id
 * @param uid the peer's effective user id
 * @param gid the peer's effective group id
 * @see UnixSocket#peerCredentials()
 */
public record PeerCredentials(int pid, int uid, int gid) {}
