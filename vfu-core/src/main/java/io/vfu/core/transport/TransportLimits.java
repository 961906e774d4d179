package io.vfu.core.transport;

import java.time.Duration;

/**
 * Bounds a {@link Connection} enforces on what it receives.
 *
 * @param maxMessageSize largest message (header included) read into memory; anything larger is never
 *                       allocated: it is skipped and answered with E2BIG, or closes the connection
 * @param drainLimit     largest oversized message that is skipped to keep the stream in sync; beyond it
 *                       the connection is closed (reading gigabytes to resynchronise is itself a DoS)
 * @param maxFds         most file descriptors accepted with one message
 * @param replyTimeout   how long {@link Connection#call} waits for a reply
 * @param maxQueued      most commands buffered while a handler waits for a reply on the reader thread
 */
public record TransportLimits(long maxMessageSize, long drainLimit, int maxFds, Duration replyTimeout, int maxQueued) {
    /** libvfio-user's largest message: a 1 MiB REGION_WRITE plus its headers (protocol reference §12). */
    public static final long DEFAULT_MAX_MESSAGE_SIZE = (1L << 20) + 4096;
    public static final long DEFAULT_DRAIN_LIMIT = 64L << 20;
    public static final int DEFAULT_MAX_FDS = 16;
    public static final Duration DEFAULT_REPLY_TIMEOUT = Duration.ofSeconds(5);
    public static final int DEFAULT_MAX_QUEUED = 1024;

    public static final TransportLimits DEFAULT = new TransportLimits(DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_DRAIN_LIMIT,
            DEFAULT_MAX_FDS, DEFAULT_REPLY_TIMEOUT, DEFAULT_MAX_QUEUED);

    public TransportLimits {
        if (maxMessageSize < 16 || maxMessageSize > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("maxMessageSize out of range: " + maxMessageSize);
        }
        if (drainLimit < maxMessageSize) {
            throw new IllegalArgumentException("drainLimit below maxMessageSize");
        }
        if (maxFds < 0 || maxFds > 253) {
            throw new IllegalArgumentException("maxFds out of range: " + maxFds);
        }
        if (replyTimeout.isNegative() || replyTimeout.isZero()) {
            throw new IllegalArgumentException("replyTimeout must be positive");
        }
        if (maxQueued < 1) {
            throw new IllegalArgumentException("maxQueued must be positive");
        }
    }

    public TransportLimits withMaxMessageSize(long size) {
        return new TransportLimits(size, Math.max(drainLimit, size), maxFds, replyTimeout, maxQueued);
    }

    public TransportLimits withReplyTimeout(Duration timeout) {
        return new TransportLimits(maxMessageSize, drainLimit, maxFds, timeout, maxQueued);
    }

    public TransportLimits withMaxFds(int n) {
        return new TransportLimits(maxMessageSize, drainLimit, n, replyTimeout, maxQueued);
    }

    public TransportLimits withDrainLimit(long limit) {
        return new TransportLimits(maxMessageSize, limit, maxFds, replyTimeout, maxQueued);
    }
}
