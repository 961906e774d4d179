package io.vfu.core.transport;

import io.vfu.core.protocol.Reply;

/**
 * What a {@link CommandHandler} answers: a success reply payload, the fds to attach (caller-owned: the
 * connection does not close them), and an action to run once the reply is out.
 */
public record Response(Reply reply, int[] fds, Runnable afterSend) {
    private static final int[] NO_FDS = new int[0];
    private static final Runnable NOTHING = () -> { };

    public Response {
        fds = fds == null ? NO_FDS : fds;
        afterSend = afterSend == null ? NOTHING : afterSend;
    }

    public static Response of(Reply reply) {
        return new Response(reply, NO_FDS, NOTHING);
    }

    public static Response of(Reply reply, int... fds) {
        return new Response(reply, fds, NOTHING);
    }

    /**
     * This response with an action run after the reply was sent, or was not sent (No_reply, send failure):
     * e.g. closing a local copy of an fd that was handed to the peer.
     */
    public Response andThen(Runnable action) {
        return new Response(reply, fds, action);
    }
}
