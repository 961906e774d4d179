package io.vfu.client;

import io.vfu.core.protocol.Capabilities;
import java.time.Duration;
import java.util.Objects;

/**
 * Settings of a {@link VfioUserClient}: what it advertises in VERSION and the bounds on what the server can make
 * it allocate. Immutable; build with {@link #builder()} (every setter states its default).
 *
 * {@snippet :
 * ClientOptions options = ClientOptions.builder()
 *         .replyTimeout(Duration.ofSeconds(2))
 *         .offerTwinSocket(false)
 *         .build();
 * }
 */
public final class ClientOptions {
    /** Default reply timeout: 5 s, QEMU's {@code x-msg-timeout}. */
    public static final Duration DEFAULT_REPLY_TIMEOUT = Duration.ofSeconds(5);
    /** Default {@code max_data_xfer_size} we advertise: 1 MiB. */
    public static final long DEFAULT_MAX_DATA_XFER_SIZE = Capabilities.DEFAULT_MAX_DATA_XFER_SIZE;
    /** Default {@code max_msg_fds} we advertise: 16 (QEMU's value). */
    public static final int DEFAULT_MAX_MSG_FDS = 16;
    /** Default bound on DEVICE_GET_INFO {@code num_regions}: 100 (QEMU's limit). */
    public static final long DEFAULT_MAX_REGIONS = 100;
    /** Default bound on DEVICE_GET_INFO {@code num_irqs}: 50 (QEMU's limit). */
    public static final long DEFAULT_MAX_IRQ_TYPES = 50;
    /** Default bound on a DEVICE_GET_REGION_INFO reply (struct + capability chain): 64 KiB. */
    public static final long DEFAULT_MAX_REGION_INFO_SIZE = 64 * 1024;
    /** Default bound on the entries of one DEVICE_GET_REGION_IO_FDS reply: 1024. */
    public static final int DEFAULT_MAX_IO_FDS_ENTRIES = 1024;
    /** Default bound on a DMA_LOGGING_REPORT bitmap: 256 MiB (8 TiB at 4 KiB pages). */
    public static final long DEFAULT_MAX_BITMAP_BYTES = 256L << 20;

    private final Duration replyTimeout;
    private final long maxDataXferSize;
    private final int maxMsgFds;
    private final boolean offerTwinSocket;
    private final long maxRegions;
    private final long maxIrqTypes;
    private final long maxRegionInfoSize;
    private final int maxIoFdsEntries;
    private final long maxBitmapBytes;
    private final GuestMemory guestMemory;

    private ClientOptions(Builder b) {
        this.replyTimeout = b.replyTimeout;
        this.maxDataXferSize = b.maxDataXferSize;
        this.maxMsgFds = b.maxMsgFds;
        this.offerTwinSocket = b.offerTwinSocket;
        this.maxRegions = b.maxRegions;
        this.maxIrqTypes = b.maxIrqTypes;
        this.maxRegionInfoSize = b.maxRegionInfoSize;
        this.maxIoFdsEntries = b.maxIoFdsEntries;
        this.maxBitmapBytes = b.maxBitmapBytes;
        this.guestMemory = b.guestMemory;
    }

    /** The defaults. */
    public static ClientOptions defaults() {
        return builder().build();
    }

    /** A builder with every setting at its default. */
    public static Builder builder() {
        return new Builder();
    }

    /** How long each request waits for its reply. */
    public Duration replyTimeout() {
        return replyTimeout;
    }

    /** {@code max_data_xfer_size} we advertise: the largest DMA_READ/DMA_WRITE count we serve. */
    public long maxDataXferSize() {
        return maxDataXferSize;
    }

    /** {@code max_msg_fds} we advertise: the most fds we accept with one message. */
    public int maxMsgFds() {
        return maxMsgFds;
    }

    /** Whether VERSION offers {@code twin_socket}. */
    public boolean offerTwinSocket() {
        return offerTwinSocket;
    }

    /** Largest {@code num_regions} accepted from DEVICE_GET_INFO. */
    public long maxRegions() {
        return maxRegions;
    }

    /** Largest {@code num_irqs} accepted from DEVICE_GET_INFO. */
    public long maxIrqTypes() {
        return maxIrqTypes;
    }

    /** Largest DEVICE_GET_REGION_INFO reply (argsz) we ask for. */
    public long maxRegionInfoSize() {
        return maxRegionInfoSize;
    }

    /** Most DEVICE_GET_REGION_IO_FDS entries we accept. */
    public int maxIoFdsEntries() {
        return maxIoFdsEntries;
    }

    /** Largest DMA_LOGGING_REPORT bitmap we accept. */
    public long maxBitmapBytes() {
        return maxBitmapBytes;
    }

    /** The guest memory to serve DMA from, or {@code null}: the client then creates (and closes) its own. */
    public GuestMemory guestMemory() {
        return guestMemory;
    }

    /** Builds {@link ClientOptions}; not thread-safe. */
    public static final class Builder {
        private Duration replyTimeout = DEFAULT_REPLY_TIMEOUT;
        private long maxDataXferSize = DEFAULT_MAX_DATA_XFER_SIZE;
        private int maxMsgFds = DEFAULT_MAX_MSG_FDS;
        private boolean offerTwinSocket = true;
        private long maxRegions = DEFAULT_MAX_REGIONS;
        private long maxIrqTypes = DEFAULT_MAX_IRQ_TYPES;
        private long maxRegionInfoSize = DEFAULT_MAX_REGION_INFO_SIZE;
        private int maxIoFdsEntries = DEFAULT_MAX_IO_FDS_ENTRIES;
        private long maxBitmapBytes = DEFAULT_MAX_BITMAP_BYTES;
        private GuestMemory guestMemory;

        private Builder() {
        }

        /** Per-request reply timeout (positive); default {@link #DEFAULT_REPLY_TIMEOUT} (5 s). */
        public Builder replyTimeout(Duration timeout) {
            if (timeout.isZero() || timeout.isNegative()) {
                throw new IllegalArgumentException("reply timeout must be positive: " + timeout);
            }
            this.replyTimeout = timeout;
            return this;
        }

        /** Advertised {@code max_data_xfer_size}, 4096..256 MiB; default 1 MiB. */
        public Builder maxDataXferSize(long bytes) {
            if (bytes < 4096 || bytes > (256L << 20)) {
                throw new IllegalArgumentException("max_data_xfer_size outside 4096..256 MiB: " + bytes);
            }
            this.maxDataXferSize = bytes;
            return this;
        }

        /** Advertised {@code max_msg_fds}, 1..253 (SCM_MAX_FD); default 16. */
        public Builder maxMsgFds(int n) {
            if (n < 1 || n > 253) {
                throw new IllegalArgumentException("max_msg_fds outside 1..253: " + n);
            }
            this.maxMsgFds = n;
            return this;
        }

        /** Offer the twin socket in VERSION; default {@code true} (protocol reference §5.3 recommendation). */
        public Builder offerTwinSocket(boolean offer) {
            this.offerTwinSocket = offer;
            return this;
        }

        /** Largest {@code num_regions} accepted; default 100. */
        public Builder maxRegions(long n) {
            this.maxRegions = positive(n, "maxRegions");
            return this;
        }

        /** Largest {@code num_irqs} accepted; default 50. */
        public Builder maxIrqTypes(long n) {
            this.maxIrqTypes = positive(n, "maxIrqTypes");
            return this;
        }

        /** Largest region-info reply, 32..16 MiB; default 64 KiB. */
        public Builder maxRegionInfoSize(long bytes) {
            if (bytes < 32 || bytes > (16L << 20)) {
                throw new IllegalArgumentException("maxRegionInfoSize outside 32..16 MiB: " + bytes);
            }
            this.maxRegionInfoSize = bytes;
            return this;
        }

        /** Most IO_FDS entries accepted, 1..65536; default 1024. */
        public Builder maxIoFdsEntries(int n) {
            if (n < 1 || n > 65536) {
                throw new IllegalArgumentException("maxIoFdsEntries outside 1..65536: " + n);
            }
            this.maxIoFdsEntries = n;
            return this;
        }

        /** Largest dirty bitmap accepted, 8 bytes..1 GiB; default 256 MiB. */
        public Builder maxBitmapBytes(long bytes) {
            if (bytes < 8 || bytes > (1L << 30)) {
                throw new IllegalArgumentException("maxBitmapBytes outside 8..1 GiB: " + bytes);
            }
            this.maxBitmapBytes = bytes;
            return this;
        }

        /** Guest memory served to the device (not closed by the client); default: a new one owned by the client. */
        public Builder guestMemory(GuestMemory memory) {
            this.guestMemory = Objects.requireNonNull(memory, "memory");
            return this;
        }

        /** The options. */
        public ClientOptions build() {
            return new ClientOptions(this);
        }

        private static long positive(long n, String what) {
            if (n < 1 || n > 0xFFFF_FFFFL) {
                throw new IllegalArgumentException(what + " outside 1..2^32-1: " + n);
            }
            return n;
        }
    }
}
