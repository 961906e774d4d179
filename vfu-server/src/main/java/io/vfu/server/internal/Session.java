package io.vfu.server.internal;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.FdList;
import io.vfu.core.linux.LinuxException;
import io.vfu.core.linux.Mapping;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.Capabilities;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.DeviceFeatureReply;
import io.vfu.core.protocol.DeviceFeatureRequest;
import io.vfu.core.protocol.DeviceInfoReply;
import io.vfu.core.protocol.DeviceInfoRequest;
import io.vfu.core.protocol.DeviceResetReply;
import io.vfu.core.protocol.DeviceResetRequest;
import io.vfu.core.protocol.DmaMapReply;
import io.vfu.core.protocol.DmaMapRequest;
import io.vfu.core.protocol.DmaUnmapReply;
import io.vfu.core.protocol.DmaUnmapRequest;
import io.vfu.core.protocol.Header;
import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.IrqInfoRequest;
import io.vfu.core.protocol.Messages;
import io.vfu.core.protocol.MigDataReadRequest;
import io.vfu.core.protocol.MigDataWriteReply;
import io.vfu.core.protocol.MigDataWriteRequest;
import io.vfu.core.protocol.ProtocolVersion;
import io.vfu.core.protocol.RegionAccess;
import io.vfu.core.protocol.RegionIndex;
import io.vfu.core.protocol.RegionInfoRequest;
import io.vfu.core.protocol.RegionIoFdsRequest;
import io.vfu.core.protocol.RegionReadRequest;
import io.vfu.core.protocol.RegionWriteMultiReply;
import io.vfu.core.protocol.RegionWriteMultiRequest;
import io.vfu.core.protocol.RegionWriteReply;
import io.vfu.core.protocol.RegionWriteRequest;
import io.vfu.core.protocol.Request;
import io.vfu.core.protocol.SetIrqsReply;
import io.vfu.core.protocol.SetIrqsRequest;
import io.vfu.core.protocol.VersionReply;
import io.vfu.core.protocol.VersionRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.transport.CommandHandler;
import io.vfu.core.transport.Connection;
import io.vfu.core.transport.IncomingCommand;
import io.vfu.core.transport.Response;
import io.vfu.core.transport.TransportLimits;
import io.vfu.server.ResetReason;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection to a device: negotiates VERSION, then decodes, gates and routes every command
 * (DESIGN.md receive pipeline: the {@link Connection} bounds and frames, this class decodes and answers,
 * {@link DeviceRuntime} does the work). Runs on the connection's reader thread; device callbacks are never
 * concurrent.
 */
public final class Session implements CommandHandler, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Session.class);

    private final DeviceRuntime runtime;
    /** runtime.migration(), kept here: the hot paths gate every command on it. */
    private final MigrationController migration;
    // Command codes as constants: comparing with Command.X.code() loads the enum object per message.
    private static final int REGION_READ = Command.REGION_READ.code();
    private static final int REGION_WRITE = Command.REGION_WRITE.code();
    private static final int MIG_DATA_READ = Command.MIG_DATA_READ.code();
    private static final int REGION_READ_BIT = 1 << REGION_READ;
    private static final int REGION_WRITE_BIT = 1 << REGION_WRITE;
    private static final int MIG_DATA_READ_BIT = 1 << MIG_DATA_READ;
    private final ServerSettings settings;
    private final Connection connection;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment dataBuffer;
    private final FeatureHandler features;
    private Connection twin;
    private boolean negotiated;
    private Capabilities clientCaps = Capabilities.NONE;
    /**
     * Pipelined MIG_DATA_WRITEs: the connection sends the (header-only) replies of the commands it has at hand
     * together, one wake-up of the client per batch instead of one per chunk.
     */
    private static final Response MIG_DATA_WRITE_DONE = Response.coalescible(new MigDataWriteReply());
    // Hot-path replies, reused (one command at a time on this session's thread; sent before the next).
    private final RegionAccessReplyView regionReadReply = new RegionAccessReplyView(Command.REGION_READ);
    private final Response regionReadResponse = Response.of(regionReadReply);
    private final RegionAccessReplyView regionWriteReply = new RegionAccessReplyView(Command.REGION_WRITE);
    private final Response regionWriteResponse = Response.of(regionWriteReply);
    /** The data slice of the last REGION_WRITE payload (the connection reuses its buffer while sizes repeat). */
    private MemorySegment lastWritePayload;
    private MemorySegment lastWriteData;
    private MemorySegment lastSlice;
    /**
     * MIG_DATA_READ reply buffers (allocated when first needed): a reply is coalescible
     * ({@link Response#coalescible}), i.e. the connection may hold it back while the next command is handled;
     * while it is held, the next read goes to the other buffer. Region reads use dataBuffer.
     */
    private final MigReadSlot[] migSlots = new MigReadSlot[2];
    private int migSlot;
    /** max_data_xfer_size bytes of read-only zeros (no memory): the padding of an end-of-stream MIG_DATA_READ. */
    private Mapping zeros;
    private MemorySegment lastZeroSlice;

    public Session(DeviceRuntime runtime, UnixSocket socket, ServerSettings settings) {
        this.runtime = runtime;
        this.migration = runtime.migration();
        this.settings = settings;
        TransportLimits limits = TransportLimits.DEFAULT
                .withMaxMessageSize(settings.maxDataXferSize() + 4096)
                .withReplyTimeout(settings.replyTimeout())
                .withMaxFds(settings.maxMsgFds());
        this.connection = new Connection(socket, limits, "server");
        this.dataBuffer = arena.allocate(settings.maxDataXferSize(), 8);
        this.lastSlice = dataBuffer.asSlice(0, 0);
        this.features = new FeatureHandler(runtime);
    }

    /** Serves the client on the calling thread until it disconnects, then releases what it held. */
    public void run() {
        try {
            connection.serve(this);
        } finally {
            close();
        }
    }

    public Connection connection() {
        return connection;
    }

    /**
     * REGION_READ, REGION_WRITE and MIG_DATA_READ after negotiation, without fds, are served from the raw fields
     * (no records per message); everything else goes through {@link #handle(IncomingCommand)}.
     */
    @Override
    public Response handle(int msgId, int cmd, long msgSize, int flags, MemorySegment payload, FdList fds)
            throws IOException {
        if (negotiated && fds.isEmpty()) {
            if (cmd == REGION_READ) {
                migration.gate(Command.REGION_READ, REGION_READ_BIT);
                RegionReadRequest.check(payload);
                return regionRead(RegionAccess.offsetOf(payload), RegionAccess.regionOf(payload),
                        RegionAccess.countOf(payload));
            }
            if (cmd == REGION_WRITE) {
                migration.gate(Command.REGION_WRITE, REGION_WRITE_BIT);
                RegionWriteRequest.check(payload);
                return regionWrite(payload);
            }
            if (cmd == MIG_DATA_READ) {
                migration.gate(Command.MIG_DATA_READ, MIG_DATA_READ_BIT);
                return migDataRead(MigDataReadRequest.checkedSize(payload));
            }
        }
        return CommandHandler.super.handle(msgId, cmd, msgSize, flags, payload, fds);
    }

    @Override
    public Response handle(IncomingCommand in) throws IOException {
        Header header = in.header();
        Command command = Command.of(header.cmd());
        if (command.direction() != Command.Direction.CLIENT_TO_SERVER) {
            throw new VfioUserException(Errno.EINVAL, command + " is a server-to-client command");
        }
        if (!negotiated && command != Command.VERSION) {
            // libvfio-user: VERSION must come first; answer EINVAL and drop the client (§5.1).
            connection.endAfterReply();
            throw new VfioUserException(Errno.EINVAL, command + " before VERSION negotiation");
        }
        if (negotiated && command == Command.VERSION) {
            throw new VfioUserException(Errno.EINVAL, "VERSION sent twice");
        }
        FdList fds = in.fds();
        checkFdCount(command, fds);
        runtime.migration().gate(command);
        Request request = Messages.decodeRequest(command, in.payload());
        return switch (request) {
            case VersionRequest v -> version(v);
            case DmaMapRequest m -> {
                runtime.dmaController().map(m, fds.size() == 1 ? fds.take(0) : -1);
                yield Response.of(new DmaMapReply());
            }
            case DmaUnmapRequest u -> {
                runtime.dmaController().unmap(u);
                yield Response.of(DmaUnmapReply.echo(u));
            }
            case DeviceInfoRequest d -> Response.of(new DeviceInfoReply(
                    DeviceInfoReply.FLAG_RESET | DeviceInfoReply.FLAG_PCI, RegionIndex.PCI_NUM_REGIONS, IrqIndex.PCI_NUM_IRQS));
            case RegionInfoRequest r -> RegionInfoBuilder.regionInfo(runtime, r);
            case RegionIoFdsRequest r -> RegionInfoBuilder.ioFds(runtime, r);
            case IrqInfoRequest i -> Response.of(runtime.irqController().info(Math.toIntExact(Math.min(i.index(), 1 << 20))));
            case SetIrqsRequest s -> {
                runtime.irqController().setIrqs(s, fds);
                yield Response.of(new SetIrqsReply());
            }
            case RegionReadRequest r -> regionRead(r.offset(), r.region(), r.count());
            case RegionWriteRequest w -> {
                runtime.write(regionIndex(w.region()), w.offset(), w.data());
                yield Response.of(new RegionWriteReply(w.offset(), w.region(), w.count()));
            }
            case RegionWriteMultiRequest m -> writeMulti(m);
            case DeviceResetRequest r -> {
                runtime.reset(ResetReason.CLIENT_REQUEST);
                yield Response.of(new DeviceResetReply());
            }
            case DeviceFeatureRequest f -> features.handle(f);
            case MigDataReadRequest r -> migDataRead(r.size());
            case MigDataWriteRequest w -> {
                checkMigDataSize(w.size(), "MIG_DATA_WRITE");
                runtime.migration().writeData(w.data());
                yield MIG_DATA_WRITE_DONE;
            }
            default -> throw new VfioUserException(Errno.EINVAL, command + ": not served by a device");
        };
    }

    /** Only DMA_MAP (one) and SET_IRQS (its eventfds) carry fds; anything else with fds is refused (§4). */
    private static void checkFdCount(Command command, FdList fds) {
        int n = fds.size();
        boolean ok = switch (command) {
            case DMA_MAP -> n <= 1;
            case DEVICE_SET_IRQS -> true; // checked against count by the IRQ controller
            default -> n == 0;
        };
        if (!ok) {
            throw new VfioUserException(Errno.EINVAL, command + ": " + n + " unexpected file descriptors");
        }
    }

    private Response version(VersionRequest v) throws IOException {
        try {
            ProtocolVersion.requireMajor(v.major());
        } catch (VfioUserException e) {
            connection.endAfterReply();
            throw e;
        }
        clientCaps = v.capabilitiesOrNone();
        Capabilities own = Capabilities.NONE
                .withMaxMsgFds(settings.maxMsgFds())
                .withMaxDataXferSize(settings.maxDataXferSize())
                .withMaxDmaMaps(settings.maxDmaMappings())
                .withWriteMultiple(true);
        if (runtime.migration().supported()) {
            // Removed from the spec in 0.9.2 but still sent by libvfio-user for migratable devices, and parsed
            // by its sample client and by QEMU (protocol reference §5.2): harmless, and expected.
            own = own.withMigration(new Capabilities.LegacyMigration(
                    java.util.OptionalLong.of(io.vfu.core.linux.Fds.pageSize()), java.util.OptionalLong.empty()));
        }
        long dmaChunk = Math.min(clientCaps.maxDataXferSizeOrDefault(), settings.maxDataXferSize());
        Connection dmaConnection = connection;
        int[] fds = new int[0];
        UnixSocket peerEnd = null;
        if (settings.twinSocket() && clientCaps.twinSocketSupported() && clientCaps.maxMsgFdsOrDefault() >= 1) {
            UnixSocket[] pair = UnixSocket.pair();
            twin = new Connection(pair[0], connection.limits(), "server-twin");
            // The client sends nothing unprompted on the twin socket (only replies to our DMA messages): the
            // device thread waiting for a reply reads it itself, without a hand-off to a reader thread.
            twin.startCallerReads(cmd -> {
                throw new VfioUserException(Errno.EINVAL, "no commands are served on the twin socket");
            });
            peerEnd = pair[1];
            fds = new int[] {peerEnd.fd()};
            own = own.withTwinSocket(Capabilities.TwinSocket.accepted(0));
            dmaConnection = twin;
        }
        runtime.dmaController().messenger(new ConnectionDmaMessenger(dmaConnection, dmaChunk));
        negotiated = true;
        log.debug("negotiated with client caps {}", clientCaps);
        Response response = Response.of(VersionReply.answer(v, ProtocolVersion.SERVER_MINOR, own), fds);
        UnixSocket toClose = peerEnd;
        return toClose == null ? response : response.andThen(toClose::close);
    }

    private Response regionRead(long offset, long region, long count) {
        if (count > dataBuffer.byteSize()) {
            throw new VfioUserException(Errno.EINVAL, "REGION_READ: count " + count + " exceeds "
                    + dataBuffer.byteSize());
        }
        MemorySegment data = dataSlice(count);
        runtime.read(regionIndex(region), offset, data);
        regionReadReply.read(offset, region, data);
        return regionReadResponse;
    }

    /** REGION_WRITE of a payload checked by {@link RegionWriteRequest#check}: no record per write. */
    private Response regionWrite(MemorySegment payload) {
        long offset = RegionAccess.offsetOf(payload);
        long region = RegionAccess.regionOf(payload);
        long count = RegionAccess.countOf(payload);
        if (payload != lastWritePayload) {
            lastWritePayload = payload;
            lastWriteData = payload.asSlice(RegionWriteRequest.FIXED_SIZE);
        }
        runtime.write(regionIndex(region), offset, lastWriteData);
        regionWriteReply.write(offset, region, count);
        return regionWriteResponse;
    }

    /**
     * Entries are applied in order and the first failure stops the batch (ambiguity #21); the failure is
     * answered with its errno, writes before it stay applied. QEMU posts these with No_reply.
     */
    private Response writeMulti(RegionWriteMultiRequest m) {
        int n = m.wrCnt();
        for (int i = 0; i < n; i++) {
            runtime.write(regionIndex(m.region(i)), m.offset(i), m.data(i));
        }
        return Response.of(new RegionWriteMultiReply(n));
    }

    private Response migDataRead(long size) {
        checkMigDataSize(size, "MIG_DATA_READ");
        if (connection.hasHeldReply()) {
            migSlot ^= 1; // the held reply is the previous MIG_DATA_READ's: keep its data intact
        }
        MigReadSlot slot = migSlots[migSlot];
        if (slot == null) {
            slot = migSlots[migSlot] = new MigReadSlot(arena.allocate(settings.maxDataXferSize(), 8));
        }
        MemorySegment padded = slot.slice(size);
        long n = runtime.migration().readData(padded);
        if (n == 0 && size > 0) {
            // The end of the stream: the reply still carries the requested length (ambiguity #26), all of it
            // padding, sent from the zero mapping: no memset of up to max_data_xfer_size per stream end.
            padded = zeroSlice(size);
        } else if (n < size) {
            padded.asSlice(n).fill((byte) 0);
        }
        slot.reply.set(n, padded);
        return slot.response;
    }

    /** {@code size} zero bytes of {@link #zeros}, mapped on first use; the last slice is reused. */
    private MemorySegment zeroSlice(long size) {
        if (zeros == null) {
            try {
                zeros = Mapping.zeros(settings.maxDataXferSize());
            } catch (LinuxException e) {
                throw new VfioUserException(Errno.ENOMEM, "MIG_DATA_READ: no zero mapping: " + e.getMessage());
            }
        }
        if (lastZeroSlice == null || lastZeroSlice.byteSize() != size) {
            lastZeroSlice = zeros.segment().asSlice(0, size);
        }
        return lastZeroSlice;
    }

    /** One MIG_DATA_READ reply buffer with its reusable reply objects. */
    private static final class MigReadSlot {
        final MemorySegment buffer;
        final MigDataReadPaddedReply reply = new MigDataReadPaddedReply();
        final Response response = Response.coalescible(reply);
        MemorySegment last;

        MigReadSlot(MemorySegment buffer) {
            this.buffer = buffer;
            this.last = buffer.asSlice(0, 0);
        }

        MemorySegment slice(long size) {
            if (last.byteSize() != size) {
                last = buffer.asSlice(0, size);
            }
            return last;
        }
    }

    /** The first {@code size} bytes of the data buffer; the last slice is reused (repeated sizes are the rule). */
    private MemorySegment dataSlice(long size) {
        if (lastSlice.byteSize() != size) {
            lastSlice = dataBuffer.asSlice(0, size);
        }
        return lastSlice;
    }

    /** MIG_DATA sizes are bounded by the client's max_data_xfer_size (libvfio-user) and by our buffer. */
    private void checkMigDataSize(long size, String what) {
        long limit = Math.min(clientCaps.maxDataXferSizeOrDefault(), settings.maxDataXferSize());
        if (size > limit) {
            throw new VfioUserException(Errno.EINVAL, what + ": size " + size + " exceeds max_data_xfer_size " + limit);
        }
    }

    private static int regionIndex(long region) {
        return region > RegionIndex.VGA ? -1 : (int) region;
    }

    @Override
    public void closed(Throwable cause) {
        if (cause != null) {
            log.info("client connection ended: {}", cause.getMessage());
        }
    }

    /** Releases the client's resources; device state stays. */
    @Override
    public void close() {
        if (twin != null) {
            twin.close();
        }
        connection.close();
        runtime.clientGone();
        arena.close();
        if (zeros != null) {
            zeros.close(); // the connection is closed: no send reads from it any more
        }
    }
}
