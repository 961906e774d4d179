package io.vfu.core.transport;

import io.vfu.core.protocol.Reply;

/**
 * What a {@link CommandHandler} answers: a success reply payload and the fds to attach (caller-owned:
 * the connection does not close them).
 */
public record Response(Reply reply, int[] fds) {
    private static final int[] NO_FDS = new int[0];

    public Response {
        fds = fds == null ? NO_FDS : fds;
    }

    public static Response of(Reply reply) {
        return new Response(reply, NO_FDS);
    }

    public static Response of(Reply reply, int... fds) {
        return new Response(reply, fds);
    }
}
