package io.vfu.server;

import io.vfu.core.linux.PeerCredentials;
import io.vfu.core.linux.UnixSocket;
import io.vfu.server.internal.DeviceRuntime;
import io.vfu.server.internal.ServerSettings;
import io.vfu.server.internal.Session;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves one {@link PciDevice} on a UNIX socket: one client at a time, a new one after a disconnect (the
 * old client's DMA mappings and IRQ fds are released, device state is kept; protocol reference §2).
 *
 * <p>Threading: one platform thread per server accepts and serves; every device callback runs on it, so a
 * device never sees two callbacks at once. Many servers (one socket each) may run in one JVM.
 *
 * {@snippet :
 * try (VfioUserServer server = VfioUserServer.builder(device, Path.of("/run/vfu/dev0.sock")).start()) {
 *     server.awaitTermination();
 * }
 * }
 */
public final class VfioUserServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(VfioUserServer.class);

    private final Builder options;
    private final DeviceRuntime runtime;
    private final UnixSocket listener;
    private final Thread thread;
    private final CountDownLatch terminated = new CountDownLatch(1);
    private final AtomicInteger sessions = new AtomicInteger();
    private volatile Session current;
    private volatile boolean closing;

    private VfioUserServer(Builder b) throws IOException {
        this.options = b;
        this.runtime = new DeviceRuntime(b.device, b.maxDmaMappings);
        try {
            removeStaleSocket(b.socket);
            this.listener = UnixSocket.listen(b.socket, b.socketMode, 1);
        } catch (IOException | RuntimeException e) {
            runtime.close();
            throw e;
        }
        b.device.onAttach().accept(runtime);
        this.thread = Thread.ofPlatform().name("vfu-server-" + b.socket.getFileName()).unstarted(this::acceptLoop);
    }

    /**
     * Removes a socket file nobody listens on (left by a server that died). A live socket, or a file that is
     * not a socket, is left alone: binding then fails with EADDRINUSE.
     */
    private static void removeStaleSocket(Path path) throws IOException {
        java.nio.file.attribute.BasicFileAttributes attrs;
        try {
            attrs = java.nio.file.Files.readAttributes(path, java.nio.file.attribute.BasicFileAttributes.class,
                    java.nio.file.LinkOption.NOFOLLOW_LINKS);
        } catch (java.nio.file.NoSuchFileException e) {
            return;
        }
        if (!attrs.isOther()) {
            return;
        }
        try (UnixSocket probe = UnixSocket.connect(path)) {
            log.debug("{}: a server is listening there", path);
        } catch (io.vfu.core.linux.LinuxException e) {
            if (e.errno() == io.vfu.core.linux.Errno.ECONNREFUSED) {
                log.info("{}: removing a stale socket", path);
                java.nio.file.Files.deleteIfExists(path);
            }
        }
    }

    /** A builder for serving {@code device} on {@code socket}. */
    public static Builder builder(PciDevice device, Path socket) {
        return new Builder(device, socket);
    }

    /** Serves {@code device} on {@code socket} with default options. */
    public static VfioUserServer start(PciDevice device, Path socket) throws IOException {
        return builder(device, socket).start();
    }

    public Path socketPath() {
        return options.socket;
    }

    /** The device's context (DMA, IRQs, region memory), as handed to {@link PciDevice#onAttach()}. */
    public DeviceContext context() {
        return runtime;
    }

    /** Number of client connections accepted so far. */
    public int sessionsServed() {
        return sessions.get();
    }

    /** Whether a client is connected now. */
    public boolean clientConnected() {
        return current != null;
    }

    private void acceptLoop() {
        try {
            while (!closing) {
                UnixSocket socket;
                try {
                    socket = listener.accept();
                } catch (IOException e) {
                    if (!closing) {
                        log.error("{}: accept failed", options.socket, e);
                    }
                    break;
                }
                if (!allowed(socket)) {
                    socket.close();
                    continue;
                }
                sessions.incrementAndGet();
                Session session = new Session(runtime, socket, options.settings());
                current = session;
                try {
                    if (!closing) {
                        session.run();
                    } else {
                        session.close();
                    }
                } catch (RuntimeException e) {
                    log.error("{}: session failed", options.socket, e);
                    session.close();
                } finally {
                    synchronized (this) {
                        current = null;
                        notifyAll();
                    }
                }
                if (options.oneShot) {
                    break;
                }
            }
        } finally {
            listener.close();
            runtime.close();
            terminated.countDown();
        }
    }

    private boolean allowed(UnixSocket socket) {
        if (options.allowedUid.isEmpty()) {
            return true;
        }
        try {
            PeerCredentials peer = socket.peerCredentials();
            if (peer.uid() == options.allowedUid.getAsInt()) {
                return true;
            }
            log.warn("{}: refusing client pid {} uid {}", options.socket, peer.pid(), peer.uid());
        } catch (IOException e) {
            log.warn("{}: cannot read peer credentials: {}", options.socket, e.getMessage());
        }
        return false;
    }

    /**
     * Waits until no client is connected (the last one's resources are released), up to {@code timeout}.
     *
     * @return true if idle
     */
    public synchronized boolean awaitIdle(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (current != null) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            TimeUnit.NANOSECONDS.timedWait(this, left);
        }
        return true;
    }

    /** Blocks until the server stopped (closed, or its one client left in one-shot mode). */
    public void awaitTermination() throws InterruptedException {
        terminated.await();
    }

    /** Waits up to {@code timeout} for the server to stop. */
    public boolean awaitTermination(Duration timeout) throws InterruptedException {
        return terminated.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
    }

    /**
     * Stops serving: disconnects the client (its resources are released as after any disconnect), removes
     * the socket file and releases the device's memory. Idempotent.
     */
    @Override
    public void close() {
        closing = true;
        listener.close();
        Session s = current;
        if (s != null) {
            s.connection().close();
        }
        if (Thread.currentThread() != thread) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Server options. Defaults: socket mode 0600, any peer uid, 1 MiB transfers, 16 fds, 65535 DMA mappings,
     * twin socket offered, 5 s DMA reply timeout, serve clients until closed.
     */
    public static final class Builder {
        private final PciDevice device;
        private final Path socket;
        private int socketMode = UnixSocket.DEFAULT_MODE;
        private OptionalInt allowedUid = OptionalInt.empty();
        private long maxDataXferSize = 1L << 20;
        private int maxMsgFds = 16;
        private boolean twinSocket = true;
        private Duration replyTimeout = Duration.ofSeconds(5);
        private boolean oneShot;
        private int maxDmaMappings = 65535;

        private Builder(PciDevice device, Path socket) {
            this.device = Objects.requireNonNull(device);
            this.socket = Objects.requireNonNull(socket);
        }

        /** File mode of the socket (default 0600). */
        public Builder socketMode(int mode) {
            this.socketMode = mode;
            return this;
        }

        /** Accept only clients running as {@code uid} (checked with SO_PEERCRED). */
        public Builder allowedUid(int uid) {
            this.allowedUid = OptionalInt.of(uid);
            return this;
        }

        /** Largest data transfer accepted and advertised as max_data_xfer_size (default 1 MiB, at most 64 MiB). */
        public Builder maxDataXferSize(long bytes) {
            this.maxDataXferSize = bytes;
            return this;
        }

        /** Most fds accepted in one message, advertised as max_msg_fds (default 16). */
        public Builder maxMsgFds(int n) {
            this.maxMsgFds = n;
            return this;
        }

        /** Offer a twin socket for server→client DMA when the client supports it (default true). */
        public Builder twinSocket(boolean offer) {
            this.twinSocket = offer;
            return this;
        }

        /** How long to wait for the client's replies to DMA_READ/DMA_WRITE (default 5 s). */
        public Builder replyTimeout(Duration timeout) {
            this.replyTimeout = Objects.requireNonNull(timeout);
            return this;
        }

        /**
         * Most DMA mappings a client may hold at once, advertised as max_dma_maps (default 65535, QEMU's
         * limit; the table is a sorted map, so far larger values work). Beyond it DMA_MAP fails with ENOSPC.
         */
        public Builder maxDmaMappings(int n) {
            this.maxDmaMappings = n;
            return this;
        }

        /** Serve a single client, then stop (libvfio-user's sample server does this). Default false. */
        public Builder oneShot(boolean oneShot) {
            this.oneShot = oneShot;
            return this;
        }

        ServerSettings settings() {
            return new ServerSettings(maxDataXferSize, maxMsgFds, twinSocket, replyTimeout, maxDmaMappings);
        }

        /** Binds the socket and starts serving. */
        public VfioUserServer start() throws IOException {
            settings(); // validate before binding
            VfioUserServer server = new VfioUserServer(this);
            server.thread.start();
            return server;
        }
    }
}
