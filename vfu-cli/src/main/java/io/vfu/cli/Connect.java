package io.vfu.cli;

import io.vfu.client.ClientOptions;
import io.vfu.client.VfioUserClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/** Connecting to a device socket with a clear one-line failure. */
final class Connect {
    private Connect() {
    }

    static VfioUserClient to(Path socket, Duration timeout) throws IOException {
        if (!Files.exists(socket)) {
            throw new VfuCommand.CliException("cannot connect to " + socket + ": no such file");
        }
        try {
            return VfioUserClient.connect(socket, ClientOptions.builder().replyTimeout(timeout).build());
        } catch (IOException e) {
            throw new IOException("cannot connect to " + socket + ": " + e.getMessage(), e);
        }
    }
}
