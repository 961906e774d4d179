package io.vfu.core.transport;

import io.vfu.core.protocol.Reply;

/**
 * What a {@link CommandHandler} answers: a success reply payload, the fds to attach (caller-owned: the
 * connection does not close them), and an action to run once the reply is out.
 *
 * <p>{@code coalescible}: the reply (its data tail included) stays valid while the <em>next</em> command is
 * handled, so the connection may hold it back while the next command is already arriving and send the replies
 * together with one sendmsg (one wake-up of the peer instead of several). Pipelined MIG_DATA_READs and
 * MIG_DATA_WRITEs use it.
 */
public record Response(Reply reply, int[] fds, Runnable afterSend, boolean coalescible) {
    private static final int[] NO_FDS = new int[0];
    private static final Runnable NOTHING = () -> { };

    public Response {
        fds = fds == null ? NO_FDS : fds;
        afterSend = afterSend == null ? NOTHING : afterSend;
    }

    public Response(Reply reply, int[] fds, Runnable afterSend) {
        this(reply, fds, afterSend, false);
    }

    public static Response of(Reply reply) {
        return new Response(reply, NO_FDS, NOTHING, false);
    }

    public static Response of(Reply reply, int... fds) {
        return new Response(reply, fds, NOTHING, false);
    }

    /** A reply without fds that stays valid until the next command has been handled (see above). */
    public static Response coalescible(Reply reply) {
        return new Response(reply, NO_FDS, NOTHING, true);
    }

    /**
     * This response with an action run after the reply was sent, or was not sent (No_reply, send failure):
     * e.g. closing a local copy of an fd that was handed to the peer.
     */
    public Response andThen(Runnable action) {
        return new Response(reply, fds, action, false); // a held-back reply runs no action: never coalesced
    }
}
