package io.vfu.core.protocol;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vfu.core.linux.Errno;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;

/**
 * The capabilities of a VERSION message (protocol reference §5.2): the JSON object under
 * {@code "capabilities"}. Each value describes what the <em>sender</em> of the JSON can accept.
 *
 * <p>Every key is optional. An absent key is an empty {@code Optional}/{@code OptionalInt}/
 * {@code OptionalLong} (never {@code null}), so that a received message can be told apart from one that
 * spelled out the default; the {@code ...OrDefault()} methods apply the spec's defaults. u32/u64 values
 * are held in {@code long}s; {@link #pgsizes} is a u64 bit mask (compare unsigned).
 *
 * <p>Parsing ({@link #fromJson}) is strict about the keys it knows (all EINVAL): {@code capabilities}
 * must be an object; integers must be JSON integers (no fractions, exponents or strings) in range:
 * {@code max_msg_fds} 0..1024 (libvfio-user's rule), {@code max_data_xfer_size} 1..2³²−1 (libvfio-user
 * reads it as u32), {@code max_dma_maps} 0..2³²−1, {@code pgsizes} 1..2⁶⁴−1,
 * {@code twin_socket.fd_index} 0..1023, {@code migration.pgsize} 1..2⁶⁴−1,
 * {@code migration.max_bitmap_size} 0..2⁶⁴−1; {@code write_multiple} and {@code twin_socket.supported}
 * must be booleans; {@code twin_socket} and {@code migration} objects. Duplicate keys are rejected.
 * Unknown keys inside {@code twin_socket}/{@code migration} and outside {@code capabilities} are
 * ignored; unknown keys inside {@code capabilities} are ignored by this library but kept in
 * {@link #extensions()}, which is where project extensions (gated capability keys, §11.8) live.
 *
 * <p>Writing ({@link #toJson}) produces compact JSON with only the keys that are set, in the order
 * max_msg_fds, max_data_xfer_size, max_dma_maps, pgsizes, migration, twin_socket, write_multiple,
 * then the extensions: the §5.4 examples come out byte for byte.
 *
 * <p>The constructor checks the same ranges and throws {@link IllegalArgumentException}. The
 * {@link JsonNode}s of {@link #extensions()} are copies; do not modify them.
 *
 * @param maxMsgFds       {@code max_msg_fds}: fds the sender can receive per message (default 1)
 * @param maxDataXferSize {@code max_data_xfer_size}: largest data count the sender handles (default 1 MiB)
 * @param maxDmaMaps      {@code max_dma_maps}: DMA mappings valid at once (default 65535)
 * @param pgsizes         {@code pgsizes}: bit mask of DMA page sizes (default 4096)
 * @param twinSocket      {@code twin_socket} (absent = unsupported)
 * @param writeMultiple   {@code write_multiple}: REGION_WRITE_MULTI accepted (default false)
 * @param migration       legacy {@code migration} (removed in 0.9.2, still sent by libvfio-user and QEMU)
 * @param extensions      other keys of {@code capabilities}, uninterpreted
 */
public record Capabilities(OptionalInt maxMsgFds, OptionalLong maxDataXferSize, OptionalLong maxDmaMaps,
                           OptionalLong pgsizes, Optional<TwinSocket> twinSocket, Optional<Boolean> writeMultiple,
                           Optional<LegacyMigration> migration, Map<String, JsonNode> extensions) {
    public static final int DEFAULT_MAX_MSG_FDS = 1;
    public static final long DEFAULT_MAX_DATA_XFER_SIZE = 1024 * 1024;
    public static final long DEFAULT_MAX_DMA_MAPS = 65535;
    public static final long DEFAULT_PGSIZES = 4096;
    /** libvfio-user's upper bound for {@code max_msg_fds}. */
    public static final int MAX_MSG_FDS_LIMIT = 1024;
    /** Upper bound (exclusive) of {@code twin_socket.fd_index}. */
    public static final int FD_INDEX_LIMIT = 1024;
    private static final long U32_MAX = 0xFFFF_FFFFL;
    private static final BigInteger U64_MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

    /** No key set: every value is its default. */
    public static final Capabilities NONE = new Capabilities(OptionalInt.empty(), OptionalLong.empty(),
            OptionalLong.empty(), OptionalLong.empty(), Optional.empty(), Optional.empty(), Optional.empty(), Map.of());

    static final String KEY_CAPABILITIES = "capabilities";
    static final String KEY_MAX_MSG_FDS = "max_msg_fds";
    static final String KEY_MAX_DATA_XFER_SIZE = "max_data_xfer_size";
    static final String KEY_MAX_DMA_MAPS = "max_dma_maps";
    static final String KEY_PGSIZES = "pgsizes";
    static final String KEY_TWIN_SOCKET = "twin_socket";
    static final String KEY_WRITE_MULTIPLE = "write_multiple";
    static final String KEY_MIGRATION = "migration";
    private static final Set<String> KNOWN = Set.of(KEY_MAX_MSG_FDS, KEY_MAX_DATA_XFER_SIZE, KEY_MAX_DMA_MAPS,
            KEY_PGSIZES, KEY_TWIN_SOCKET, KEY_WRITE_MULTIPLE, KEY_MIGRATION);

    /** Longest JSON text (excluding the NUL) accepted by {@link #fromJson}. */
    public static final int MAX_JSON_LENGTH = 64 * 1024;

    private static final JsonMapper MAPPER = JsonMapper.builder(JsonFactory.builder()
                    .streamReadConstraints(StreamReadConstraints.builder()
                            .maxNestingDepth(32)
                            .maxNumberLength(100)
                            .maxStringLength(MAX_JSON_LENGTH)
                            .build())
                    .build())
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    /**
     * {@code twin_socket} (§5.3): {@code {"supported": bool, "fd_index": int}}.
     *
     * @param supported whether the sender supports (client) or set up (server) the twin socket
     * @param fdIndex   reply only: index of the twin socket in the reply's SCM_RIGHTS array (0..1023)
     */
    public record TwinSocket(boolean supported, OptionalInt fdIndex) {
        public TwinSocket {
            if (fdIndex.isPresent() && (fdIndex.getAsInt() < 0 || fdIndex.getAsInt() >= FD_INDEX_LIMIT)) {
                throw new IllegalArgumentException("twin_socket.fd_index " + fdIndex.getAsInt());
            }
        }

        /** The client's offer: {@code {"supported":true}}. */
        public static TwinSocket offer() {
            return new TwinSocket(true, OptionalInt.empty());
        }

        /** The server's answer after creating the pair, with the fd at {@code fdIndex}. */
        public static TwinSocket accepted(int fdIndex) {
            return new TwinSocket(true, OptionalInt.of(fdIndex));
        }
    }

    /**
     * The legacy migration-v1 capability {@code {"pgsize": u64, "max_bitmap_size": u64}} (§13): removed
     * from the spec; a client should not send it (ambiguity #6), a server ignores it.
     */
    public record LegacyMigration(OptionalLong pgsize, OptionalLong maxBitmapSize) {
        public LegacyMigration {
            if (pgsize.isPresent() && pgsize.getAsLong() == 0) {
                throw new IllegalArgumentException("migration.pgsize 0");
            }
        }
    }

    public Capabilities {
        if (maxMsgFds.isPresent() && (maxMsgFds.getAsInt() < 0 || maxMsgFds.getAsInt() > MAX_MSG_FDS_LIMIT)) {
            throw new IllegalArgumentException("max_msg_fds " + maxMsgFds.getAsInt() + " outside 0.." + MAX_MSG_FDS_LIMIT);
        }
        if (maxDataXferSize.isPresent() && (maxDataXferSize.getAsLong() < 1 || maxDataXferSize.getAsLong() > U32_MAX)) {
            throw new IllegalArgumentException("max_data_xfer_size " + maxDataXferSize.getAsLong());
        }
        if (maxDmaMaps.isPresent() && (maxDmaMaps.getAsLong() < 0 || maxDmaMaps.getAsLong() > U32_MAX)) {
            throw new IllegalArgumentException("max_dma_maps " + maxDmaMaps.getAsLong());
        }
        if (pgsizes.isPresent() && pgsizes.getAsLong() == 0) {
            throw new IllegalArgumentException("pgsizes 0");
        }
        LinkedHashMap<String, JsonNode> copy = new LinkedHashMap<>();
        extensions.forEach((k, v) -> {
            if (KNOWN.contains(k)) {
                throw new IllegalArgumentException("extension key " + k + " is a standard capability");
            }
            copy.put(k, v.deepCopy());
        });
        extensions = Collections.unmodifiableMap(copy);
    }

    public Capabilities withMaxMsgFds(int value) {
        return new Capabilities(OptionalInt.of(value), maxDataXferSize, maxDmaMaps, pgsizes, twinSocket, writeMultiple, migration, extensions);
    }

    public Capabilities withMaxDataXferSize(long value) {
        return new Capabilities(maxMsgFds, OptionalLong.of(value), maxDmaMaps, pgsizes, twinSocket, writeMultiple, migration, extensions);
    }

    public Capabilities withMaxDmaMaps(long value) {
        return new Capabilities(maxMsgFds, maxDataXferSize, OptionalLong.of(value), pgsizes, twinSocket, writeMultiple, migration, extensions);
    }

    public Capabilities withPgsizes(long value) {
        return new Capabilities(maxMsgFds, maxDataXferSize, maxDmaMaps, OptionalLong.of(value), twinSocket, writeMultiple, migration, extensions);
    }

    public Capabilities withTwinSocket(TwinSocket value) {
        return new Capabilities(maxMsgFds, maxDataXferSize, maxDmaMaps, pgsizes, Optional.of(value), writeMultiple, migration, extensions);
    }

    public Capabilities withWriteMultiple(boolean value) {
        return new Capabilities(maxMsgFds, maxDataXferSize, maxDmaMaps, pgsizes, twinSocket, Optional.of(value), migration, extensions);
    }

    public Capabilities withMigration(LegacyMigration value) {
        return new Capabilities(maxMsgFds, maxDataXferSize, maxDmaMaps, pgsizes, twinSocket, writeMultiple, Optional.of(value), extensions);
    }

    /** Adds or replaces a project extension key (not one of the standard keys). */
    public Capabilities withExtension(String key, JsonNode value) {
        LinkedHashMap<String, JsonNode> m = new LinkedHashMap<>(extensions);
        m.put(key, value);
        return new Capabilities(maxMsgFds, maxDataXferSize, maxDmaMaps, pgsizes, twinSocket, writeMultiple, migration, m);
    }

    public int maxMsgFdsOrDefault() {
        return maxMsgFds.orElse(DEFAULT_MAX_MSG_FDS);
    }

    public long maxDataXferSizeOrDefault() {
        return maxDataXferSize.orElse(DEFAULT_MAX_DATA_XFER_SIZE);
    }

    public long maxDmaMapsOrDefault() {
        return maxDmaMaps.orElse(DEFAULT_MAX_DMA_MAPS);
    }

    public long pgsizesOrDefault() {
        return pgsizes.orElse(DEFAULT_PGSIZES);
    }

    public boolean writeMultipleOrDefault() {
        return writeMultiple.orElse(false);
    }

    /** {@code twin_socket.supported}, false when absent. */
    public boolean twinSocketSupported() {
        return twinSocket.map(TwinSocket::supported).orElse(false);
    }

    /** The JSON text {@code {"capabilities":{...}}} (compact, no NUL). */
    public String toJson() {
        JsonNodeFactory f = JsonNodeFactory.instance;
        ObjectNode caps = f.objectNode();
        maxMsgFds.ifPresent(v -> caps.put(KEY_MAX_MSG_FDS, v));
        maxDataXferSize.ifPresent(v -> caps.put(KEY_MAX_DATA_XFER_SIZE, v));
        maxDmaMaps.ifPresent(v -> caps.put(KEY_MAX_DMA_MAPS, v));
        pgsizes.ifPresent(v -> caps.put(KEY_PGSIZES, unsigned(v)));
        migration.ifPresent(m -> {
            ObjectNode o = caps.putObject(KEY_MIGRATION);
            m.pgsize().ifPresent(v -> o.put("pgsize", unsigned(v)));
            m.maxBitmapSize().ifPresent(v -> o.put("max_bitmap_size", unsigned(v)));
        });
        twinSocket.ifPresent(t -> {
            ObjectNode o = caps.putObject(KEY_TWIN_SOCKET);
            o.put("supported", t.supported());
            t.fdIndex().ifPresent(v -> o.put("fd_index", v));
        });
        writeMultiple.ifPresent(v -> caps.put(KEY_WRITE_MULTIPLE, v));
        extensions.forEach((k, v) -> caps.set(k, v.deepCopy()));
        ObjectNode root = f.objectNode();
        root.set(KEY_CAPABILITIES, caps);
        try {
            return MAPPER.writeValueAsString(root);
        } catch (IOException e) {
            throw new IllegalStateException("JSON tree serialisation failed", e);
        }
    }

    /** {@link #toJson()} as UTF-8 bytes. */
    public byte[] toJsonBytes() {
        return toJson().getBytes(StandardCharsets.UTF_8);
    }

    private static BigInteger unsigned(long v) {
        return new BigInteger(Long.toUnsignedString(v));
    }

    /**
     * Parses a VERSION JSON text (without the NUL). {@code capabilities} absent → {@link #NONE}.
     *
     * @throws VfioUserException E2BIG if longer than {@link #MAX_JSON_LENGTH} characters; EINVAL if it
     *                           is not one JSON object or a known key is malformed (see the class comment)
     */
    public static Capabilities fromJson(String json) {
        if (json.length() > MAX_JSON_LENGTH) {
            throw new VfioUserException(Errno.E2BIG, "VERSION: JSON text of " + json.length() + " characters > " + MAX_JSON_LENGTH);
        }
        JsonNode root;
        try {
            root = MAPPER.readTree(json);
        } catch (IOException | RuntimeException e) {
            throw new VfioUserException(Errno.EINVAL, "VERSION: invalid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new VfioUserException(Errno.EINVAL, "VERSION: JSON text is not an object");
        }
        JsonNode caps = root.get(KEY_CAPABILITIES);
        if (caps == null) {
            return NONE;
        }
        if (!caps.isObject()) {
            throw new VfioUserException(Errno.EINVAL, "VERSION: \"capabilities\" is not an object");
        }
        OptionalInt maxMsgFds = OptionalInt.empty();
        OptionalLong maxDataXferSize = OptionalLong.empty();
        OptionalLong maxDmaMaps = OptionalLong.empty();
        OptionalLong pgsizes = OptionalLong.empty();
        Optional<TwinSocket> twinSocket = Optional.empty();
        Optional<Boolean> writeMultiple = Optional.empty();
        Optional<LegacyMigration> migration = Optional.empty();
        LinkedHashMap<String, JsonNode> extensions = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : caps.properties()) {
            String key = e.getKey();
            JsonNode v = e.getValue();
            switch (key) {
                case KEY_MAX_MSG_FDS -> maxMsgFds = OptionalInt.of((int) integer(v, key, 0, BigInteger.valueOf(MAX_MSG_FDS_LIMIT)));
                case KEY_MAX_DATA_XFER_SIZE -> maxDataXferSize = OptionalLong.of(integer(v, key, 1, BigInteger.valueOf(U32_MAX)));
                case KEY_MAX_DMA_MAPS -> maxDmaMaps = OptionalLong.of(integer(v, key, 0, BigInteger.valueOf(U32_MAX)));
                case KEY_PGSIZES -> pgsizes = OptionalLong.of(integer(v, key, 1, U64_MAX));
                case KEY_WRITE_MULTIPLE -> writeMultiple = Optional.of(bool(v, key));
                case KEY_TWIN_SOCKET -> {
                    object(v, key);
                    JsonNode supported = v.get("supported");
                    JsonNode fdIndex = v.get("fd_index");
                    twinSocket = Optional.of(new TwinSocket(
                            supported != null && bool(supported, "twin_socket.supported"),
                            fdIndex == null ? OptionalInt.empty()
                                    : OptionalInt.of((int) integer(fdIndex, "twin_socket.fd_index", 0, BigInteger.valueOf(FD_INDEX_LIMIT - 1)))));
                }
                case KEY_MIGRATION -> {
                    object(v, key);
                    JsonNode pgsize = v.get("pgsize");
                    JsonNode maxBitmap = v.get("max_bitmap_size");
                    migration = Optional.of(new LegacyMigration(
                            pgsize == null ? OptionalLong.empty() : OptionalLong.of(integer(pgsize, "migration.pgsize", 1, U64_MAX)),
                            maxBitmap == null ? OptionalLong.empty()
                                    : OptionalLong.of(integer(maxBitmap, "migration.max_bitmap_size", 0, U64_MAX))));
                }
                default -> extensions.put(key, v);
            }
        }
        return new Capabilities(maxMsgFds, maxDataXferSize, maxDmaMaps, pgsizes, twinSocket, writeMultiple, migration, extensions);
    }

    /** A JSON integer in [min, max] (max up to 2⁶⁴−1), returned as the low 64 bits. */
    private static long integer(JsonNode v, String key, long min, BigInteger max) {
        if (!v.isIntegralNumber()) {
            throw new VfioUserException(Errno.EINVAL, "VERSION: capability " + key + " is not an integer: " + v);
        }
        BigInteger value = v.bigIntegerValue();
        if (value.compareTo(BigInteger.valueOf(min)) < 0 || value.compareTo(max) > 0) {
            throw new VfioUserException(Errno.EINVAL, "VERSION: capability " + key + " " + value + " outside " + min + ".." + max);
        }
        return value.longValue();
    }

    private static boolean bool(JsonNode v, String key) {
        if (!v.isBoolean()) {
            throw new VfioUserException(Errno.EINVAL, "VERSION: capability " + key + " is not a boolean: " + v);
        }
        return v.booleanValue();
    }

    private static void object(JsonNode v, String key) {
        if (!v.isObject()) {
            throw new VfioUserException(Errno.EINVAL, "VERSION: capability " + key + " is not an object: " + v);
        }
    }
}
