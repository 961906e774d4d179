package io.vfu.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.Capabilities;
import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.DeviceFeature;
import io.vfu.core.protocol.DeviceFeatureReply;
import io.vfu.core.protocol.DeviceFeatureRequest;
import io.vfu.core.protocol.DmaReadReply;
import io.vfu.core.protocol.DmaReadRequest;
import io.vfu.core.protocol.DmaWriteReply;
import io.vfu.core.protocol.DmaWriteRequest;
import io.vfu.core.protocol.FeaturePayload;
import io.vfu.core.protocol.Messages;
import io.vfu.core.protocol.MigDataReadReply;
import io.vfu.core.protocol.MigDataReadRequest;
import io.vfu.core.protocol.MigDataWriteRequest;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.ProtocolVersion;
import io.vfu.core.protocol.RegionReadReply;
import io.vfu.core.protocol.RegionReadRequest;
import io.vfu.core.protocol.RegionWriteRequest;
import io.vfu.core.protocol.Reply;
import io.vfu.core.protocol.Request;
import io.vfu.core.protocol.VersionReply;
import io.vfu.core.protocol.VersionRequest;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.transport.Connection;
import io.vfu.core.transport.ReceivedReply;
import io.vfu.core.transport.Response;
import io.vfu.core.transport.TransportLimits;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A bare test client over {@link Connection}: typed enough to drive the server, raw enough to send what a
 * real client would not. Serves DMA_READ/DMA_WRITE from {@link #guest} (fd-less "guest memory" by IOVA base),
 * on the twin socket when the server gives one.
 */
final class TestClient implements AutoCloseable {
    final Connection connection;
    Connection twin;
    final Map<Long, MemorySegment> guest = new TreeMap<>();
    final Map<Long, Boolean> dmaWrites = new ConcurrentHashMap<>();
    VersionReply version;

    private TestClient(Connection connection) {
        this.connection = connection;
    }

    static TestClient connect(Path socket, boolean twinSocket) throws IOException {
        UnixSocket s = UnixSocket.connect(socket);
        TestClient c = new TestClient(new Connection(s, TransportLimits.DEFAULT.withReplyTimeout(Duration.ofSeconds(10)), "test-client"));
        c.connection.start(c::serve);
        Capabilities caps = Capabilities.NONE.withMaxMsgFds(16).withMaxDataXferSize(1 << 20);
        if (twinSocket) {
            caps = caps.withTwinSocket(Capabilities.TwinSocket.offer());
        }
        try (ReceivedReply r = c.connection.call(new VersionRequest(ProtocolVersion.MAJOR, ProtocolVersion.CLIENT_MINOR, caps))) {
            c.version = VersionReply.decode(r.payload());
            if (c.version.capabilitiesOrNone().twinSocketSupported()) {
                int index = c.version.capabilitiesOrNone().twinSocket().orElseThrow().fdIndex().orElseThrow();
                c.twin = new Connection(UnixSocket.adopt(r.fds().take(index)), TransportLimits.DEFAULT, "test-twin");
                c.twin.start(c::serve);
            }
        } catch (IOException | RuntimeException e) {
            c.close();
            throw e;
        }
        return c;
    }

    /** How DMA_READ replies stray from the request, for tests of the server's checks (null: they do not). */
    enum DmaReadLie { WRONG_ADDRESS, SHORT_DATA }

    volatile DmaReadLie dmaReadLie;

    /** Serves the server's DMA_READ/DMA_WRITE from {@link #guest}. */
    private Response serve(io.vfu.core.transport.IncomingCommand in) {
        Request req = Messages.decodeRequest(in.header().cmd(), in.payload());
        return switch (req) {
            case DmaReadRequest r -> {
                MemorySegment src = locate(r.address(), r.count());
                MemorySegment copy = Arena.ofAuto().allocate(Math.max(1, r.count())).asSlice(0, r.count());
                copy.copyFrom(src);
                yield switch (dmaReadLie) {
                    case WRONG_ADDRESS -> Response.of(new DmaReadReply(r.address() + 8, copy));
                    case SHORT_DATA -> Response.of(new DmaReadReply(r.address(), copy.asSlice(0, r.count() / 2)));
                    case null -> Response.of(new DmaReadReply(r.address(), copy));
                };
            }
            case DmaWriteRequest w -> {
                locate(w.address(), w.count()).copyFrom(w.data());
                dmaWrites.put(w.address(), true);
                yield Response.of(new DmaWriteReply(w.address(), w.count()));
            }
            default -> throw VfioUserException.einval("test client serves only DMA");
        };
    }

    private MemorySegment locate(long iova, long count) {
        synchronized (guest) {
            for (Map.Entry<Long, MemorySegment> e : guest.entrySet()) {
                long base = e.getKey();
                if (iova >= base && iova + count <= base + e.getValue().byteSize()) {
                    return e.getValue().asSlice(iova - base, count);
                }
            }
        }
        throw new VfioUserException(Errno.EFAULT, "test guest has nothing at " + iova);
    }

    /** Sends a request and decodes the success reply. */
    @SuppressWarnings("unchecked")
    <R extends Reply> R call(Request request, int... fds) throws IOException {
        try (ReceivedReply r = connection.call(request, fds)) {
            return (R) Messages.decodeReply(request.command(), r.payload());
        }
    }

    ReceivedReply callRaw(Request request, int... fds) throws IOException {
        return connection.call(request, fds);
    }

    void expectErrno(Errno errno, Request request, int... fds) {
        assertThatThrownBy(() -> call(request, fds))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(errno));
    }

    long readU64(int region, long offset) throws IOException {
        RegionReadReply r = call(new RegionReadRequest(offset, region, 8));
        return r.data().get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
    }

    int readU32(int region, long offset) throws IOException {
        RegionReadReply r = call(new RegionReadRequest(offset, region, 4));
        return r.data().get(ValueLayout.JAVA_INT_UNALIGNED, 0);
    }

    void writeU64(int region, long offset, long value) throws IOException {
        MemorySegment data = Arena.ofAuto().allocate(8);
        data.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, value);
        call(new RegionWriteRequest(offset, region, data));
    }

    void writeU32(int region, long offset, int value) throws IOException {
        MemorySegment data = Arena.ofAuto().allocate(4);
        data.set(ValueLayout.JAVA_INT_UNALIGNED, 0, value);
        call(new RegionWriteRequest(offset, region, data));
    }

    MigrationState state() throws IOException {
        DeviceFeatureReply r = call(DeviceFeatureRequest.get(DeviceFeature.MIG_DEVICE_STATE));
        return MigrationState.fromWire(((FeaturePayload.MigDeviceState) r.featureData()).deviceState());
    }

    void setState(MigrationState s) throws IOException {
        call(DeviceFeatureRequest.set(DeviceFeature.MIG_DEVICE_STATE, new FeaturePayload.MigDeviceState(s.wireValue())));
    }

    /** MIG_DATA_READ until a reply with size 0. */
    byte[] readMigrationData(int chunk) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        while (true) {
            MigDataReadReply r = call(new MigDataReadRequest(chunk));
            if (r.size() == 0) {
                return out.toByteArray();
            }
            out.writeBytes(r.data().toArray(ValueLayout.JAVA_BYTE));
        }
    }

    void writeMigrationData(byte[] data, int chunk) throws IOException {
        for (int off = 0; off < data.length; off += chunk) {
            int n = Math.min(chunk, data.length - off);
            MemorySegment seg = Arena.ofAuto().allocate(n);
            seg.copyFrom(MemorySegment.ofArray(data).asSlice(off, n));
            call(new MigDataWriteRequest(seg));
        }
    }

    boolean commandWorks() {
        try {
            call(new io.vfu.core.protocol.DeviceInfoRequest());
            return true;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    @Override
    public void close() {
        if (twin != null) {
            twin.close();
        }
        connection.close();
    }

    static Command cmd(Request r) {
        return r.command();
    }
}
