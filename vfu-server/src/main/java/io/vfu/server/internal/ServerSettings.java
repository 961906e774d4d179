package io.vfu.server.internal;

import java.time.Duration;

/**
 * Server settings a session needs.
 *
 * @param maxDataXferSize largest data transfer we accept and advertise (REGION_*, MIG_DATA_*, DMA chunks)
 * @param maxMsgFds       most fds we accept in one message (advertised as max_msg_fds)
 * @param twinSocket      offer a twin socket when the client supports it
 * @param replyTimeout    how long to wait for the client's DMA replies
 * @param maxDmaMappings  most DMA mappings at once (advertised as max_dma_maps)
 */
public record ServerSettings(long maxDataXferSize, int maxMsgFds, boolean twinSocket, Duration replyTimeout,
                             int maxDmaMappings) {
    public ServerSettings {
        if (maxDmaMappings < 1) {
            throw new IllegalArgumentException("maxDmaMappings must be positive");
        }
        if (maxDataXferSize < 4096 || maxDataXferSize > (64L << 20)) {
            throw new IllegalArgumentException("maxDataXferSize must be in 4 KiB..64 MiB");
        }
        if (maxMsgFds < 1 || maxMsgFds > 253) {
            throw new IllegalArgumentException("maxMsgFds must be in 1..253");
        }
    }
}
