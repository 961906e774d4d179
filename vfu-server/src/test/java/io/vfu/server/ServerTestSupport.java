package io.vfu.server;

import io.vfu.core.protocol.MigrationFeatures;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** Starts servers for tests and closes everything, also on failure. */
final class ServerTestSupport implements AutoCloseable {
    final List<AutoCloseable> resources = new ArrayList<>();
    final Path dir;

    ServerTestSupport(Path dir) {
        this.dir = dir;
    }

    record Served(TestDevice device, VfioUserServer server) {
    }

    Served serve(String name, MigrationFeatures features) throws IOException {
        TestDevice device = add(new TestDevice(features));
        VfioUserServer server = VfioUserServer.builder(device.build(), dir.resolve(name + ".sock"))
                .replyTimeout(Duration.ofSeconds(10))
                .start();
        resources.add(server);
        return new Served(device, server);
    }

    TestClient connect(Served s, boolean twin) throws IOException {
        TestClient c = TestClient.connect(s.server().socketPath(), twin);
        resources.add(c);
        return c;
    }

    <T extends AutoCloseable> T add(T resource) {
        resources.add(resource);
        return resource;
    }

    /**
     * Open fds that this code could leak: sockets, pipes, eventfds, memfds. Jar files the class loader
     * opens lazily on first use of a class are not counted (they are not ours and never closed).
     */
    static int openFds() {
        try (var fds = java.nio.file.Files.list(Path.of("/proc/self/fd"))) {
            return (int) fds.filter(f -> {
                try {
                    String target = java.nio.file.Files.readSymbolicLink(f).toString();
                    return !target.endsWith(".jar") && !target.endsWith("/lib/modules") && !target.startsWith("/proc/");
                } catch (IOException e) {
                    return false; // closed meanwhile (e.g. the directory stream itself)
                }
            }).count();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static int liveThreads() {
        return ManagementFactory.getThreadMXBean().getThreadCount();
    }

    @Override
    public void close() {
        RuntimeException failure = null;
        for (int i = resources.size() - 1; i >= 0; i--) {
            try {
                resources.get(i).close();
            } catch (Exception e) {
                if (failure == null) {
                    failure = new IllegalStateException("closing test resources", e);
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }
}
