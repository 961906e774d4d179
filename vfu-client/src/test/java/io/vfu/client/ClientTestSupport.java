package io.vfu.client;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;

/** Shared setup: a fake server on a socket in a temp dir and a client connected to it. */
final class ClientTestSupport {
    private ClientTestSupport() {
    }

    static Path socket(Path dir) {
        return dir.resolve("dev.sock");
    }

    static ClientOptions.Builder options() {
        return ClientOptions.builder().replyTimeout(Duration.ofSeconds(10));
    }

    static VfioUserClient connect(Path dir, ClientOptions options) throws IOException {
        return VfioUserClient.connect(socket(dir), options);
    }
}
