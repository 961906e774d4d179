package io.vfu.core.transport;

import java.io.IOException;

/** The connection ended (peer gone, closed locally, or a framing error) before the operation completed. */
public final class ConnectionClosedException extends IOException {
    public ConnectionClosedException(String message) {
        super(message);
    }

    public ConnectionClosedException(String message, Throwable cause) {
        super(message, cause);
    }
}
