package io.vfu.server;

import io.vfu.core.protocol.VfioUserException;

/**
 * Resets device state. Called on the connection's thread; may take long (the client waits for the reply).
 * Throw {@link VfioUserException} to fail a DEVICE_RESET.
 */
@FunctionalInterface
public interface ResetHandler {
    void reset(ResetReason reason);
}
