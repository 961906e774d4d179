package io.vfu.core.transport;

import java.io.InterruptedIOException;

/** No reply arrived within the reply timeout. The connection stays usable; a late reply is discarded. */
public final class ReplyTimeoutException extends InterruptedIOException {
    public ReplyTimeoutException(String message) {
        super(message);
    }
}
