package io.vfu.client;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.Fds;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.Capabilities;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.VersionReply;
import io.vfu.core.protocol.VersionRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.transport.Connection;
import io.vfu.core.transport.IncomingCommand;
import io.vfu.core.transport.Response;
import io.vfu.core.transport.TransportLimits;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;

/**
 * A scripted vfio-user server for client tests, built on {@link Connection}: listens on a path, accepts one
 * client, answers VERSION (ours or a raw JSON text), creates a twin socket when asked, and routes every other
 * command to a per-command script. {@link #close()} releases blocked scripts and closes everything.
 */
final class FakeServer implements AutoCloseable {
    @FunctionalInterface
    interface Script {
        Response handle(FakeServer server, IncomingCommand command) throws IOException;
    }

    static final TransportLimits LIMITS = TransportLimits.DEFAULT.withReplyTimeout(Duration.ofSeconds(10));

    private final UnixSocket listener;
    private final Map<Command, Script> scripts = new ConcurrentHashMap<>();
    private final Thread acceptor;
    /** Released by {@link #close()}: scripts that must never answer wait on it. */
    final CountDownLatch released = new CountDownLatch(1);

    /**
     * Blocks a script until the server is closed (a server that never answers), then fails the command so
     * nothing useful is sent: {@code return s.hang();}.
     */
    Response hang() {
        try {
            released.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        throw new VfioUserException(Errno.ECONNABORTED, "fake server closed");
    }

    volatile boolean twinEnabled = true;
    volatile long maxDataXferSize = Capabilities.DEFAULT_MAX_DATA_XFER_SIZE;
    volatile boolean writeMultiple;
    /** When set: VERSION answered with major, minor and this JSON text (+ NUL), and these fds. */
    volatile RawVersion rawVersion;
    volatile VersionRequest versionRequest;
    volatile String versionJson;
    volatile Connection conn;
    volatile Connection twin;
    private volatile int twinPeerFd = -1;

    record RawVersion(int major, int minor, String json, boolean twinFd) {
    }

    private FakeServer(Path path) throws IOException {
        this.listener = UnixSocket.listen(path);
        this.acceptor = Thread.ofPlatform().name("fake-server-accept").daemon(true).start(this::acceptOne);
    }

    static FakeServer start(Path path) throws IOException {
        return new FakeServer(path);
    }

    FakeServer on(Command command, Script script) {
        scripts.put(command, script);
        return this;
    }

    private void acceptOne() {
        try {
            UnixSocket s = listener.accept();
            Connection c = new Connection(s, LIMITS, "server");
            conn = c;
            c.start(cmd -> dispatch(cmd));
        } catch (IOException e) {
            // listener closed
        }
    }

    /** Where server→client commands go: the twin socket when active, else the main socket. */
    Connection dma() {
        Connection t = twin;
        return t != null ? t : conn;
    }

    private Response dispatch(IncomingCommand cmd) throws IOException {
        Command c = cmd.header().command();
        if (c == Command.VERSION) {
            return version(cmd);
        }
        Script s = c == null ? null : scripts.get(c);
        if (s == null) {
            throw new VfioUserException(Errno.EINVAL, "fake server: no script for " + c);
        }
        return s.handle(this, cmd);
    }

    private Response version(IncomingCommand cmd) throws IOException {
        byte[] raw = cmd.payload().asSlice(4).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        versionJson = raw.length == 0 ? "" : new String(raw, 0, raw.length - 1, StandardCharsets.UTF_8);
        VersionRequest request = VersionRequest.decode(cmd.payload());
        versionRequest = request;
        RawVersion rv = rawVersion;
        boolean makeTwin = rv != null ? rv.twinFd() : twinEnabled && request.capabilitiesOrNone().twinSocketSupported();
        int[] fds = new int[0];
        if (makeTwin) {
            UnixSocket[] pair = UnixSocket.pair();
            Connection t = new Connection(pair[0], LIMITS, "server-twin");
            t.start(x -> {
                throw new VfioUserException(Errno.EINVAL, "nothing is served on the twin socket");
            });
            twin = rv != null && !rv.json().contains("fd_index\": 0") && !rv.json().contains("fd_index\":0") ? null : t;
            if (twin == null) {
                t.close();
            }
            twinPeerFd = pair[1].fd();
            fds = new int[] {twinPeerFd};
        }
        if (rv != null) {
            byte[] json = rv.json().getBytes(StandardCharsets.UTF_8);
            byte[] payload = new byte[4 + json.length + 1];
            payload[0] = (byte) rv.major();
            payload[1] = (byte) (rv.major() >> 8);
            payload[2] = (byte) rv.minor();
            payload[3] = (byte) (rv.minor() >> 8);
            System.arraycopy(json, 0, payload, 4, json.length);
            return Response.of(RawReply.of(Command.VERSION, payload), fds);
        }
        Capabilities caps = Capabilities.NONE.withMaxMsgFds(8).withMaxDataXferSize(maxDataXferSize);
        if (makeTwin) {
            caps = caps.withTwinSocket(Capabilities.TwinSocket.accepted(0));
        }
        if (writeMultiple) {
            caps = caps.withWriteMultiple(true);
        }
        return Response.of(new VersionReply(0, 0, caps), fds);
    }

    @Override
    public void close() {
        released.countDown();
        listener.close();
        try {
            acceptor.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Connection t = twin;
        if (t != null) {
            t.close();
        }
        Connection c = conn;
        if (c != null) {
            c.close();
        }
        if (twinPeerFd >= 0) {
            Fds.closeQuietly(twinPeerFd);
        }
    }
}
