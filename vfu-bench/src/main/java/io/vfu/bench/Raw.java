package io.vfu.bench;

import io.vfu.core.linux.FdList;
import io.vfu.core.linux.UnixSocket;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * The baselines: the same bytes over a UNIX socket with nothing but the FFM layer ({@link UnixSocket}) on
 * either side. A control message (24 bytes: u32 op, u32 a, u32 b, u32 0, u64 n) starts each exercise:
 * <ul>
 * <li>{@link #PING_PONG}: n times, the client sends a bytes and the server answers b bytes;</li>
 * <li>{@link #STREAM_OUT}: the server sends n bytes in writes of a bytes;</li>
 * <li>{@link #STREAM_IN}: the client sends n bytes in writes of a bytes; the server acknowledges with 1 byte.</li>
 * </ul>
 */
final class Raw {
    static final int PING_PONG = 1;
    static final int STREAM_OUT = 2;
    static final int STREAM_IN = 3;
    private static final int CONTROL = 24;

    private Raw() {}

    /** Serves one client connection until it closes (server side, one thread per connection). */
    static void serve(UnixSocket socket, long maxBuffer) {
        try (socket; Arena arena = Arena.ofConfined(); FdList fds = new FdList()) {
            MemorySegment control = arena.allocate(CONTROL, 8);
            MemorySegment buf = arena.allocate(maxBuffer, 64);
            while (true) {
                long got = socket.receive(control, fds);
                if (got == 0) {
                    return;
                }
                if (got < CONTROL) {
                    socket.receiveFully(control.asSlice(got), fds);
                }
                int op = control.get(ValueLayout.JAVA_INT, 0);
                int a = control.get(ValueLayout.JAVA_INT, 4);
                int b = control.get(ValueLayout.JAVA_INT, 8);
                long n = control.get(ValueLayout.JAVA_LONG, 16);
                switch (op) {
                    case PING_PONG -> {
                        MemorySegment req = buf.asSlice(0, a);
                        MemorySegment reply = buf.asSlice(0, b);
                        for (long i = 0; i < n; i++) {
                            socket.receiveFully(req, fds);
                            socket.send(null, reply);
                        }
                    }
                    case STREAM_OUT -> {
                        for (long done = 0; done < n; ) {
                            long len = Math.min(a, n - done);
                            socket.send(null, buf.asSlice(0, len));
                            done += len;
                        }
                    }
                    case STREAM_IN -> {
                        for (long done = 0; done < n; ) {
                            long len = Math.min(a, n - done);
                            socket.receiveFully(buf.asSlice(0, len), fds);
                            done += len;
                        }
                        socket.send(null, buf.asSlice(0, 1));
                    }
                    default -> throw new IOException("unknown raw op " + op);
                }
            }
        } catch (IOException e) {
            // client gone: nothing to report
        }
    }

    /** Client side of the baselines; one thread, no reader thread: the physical limit of the socket layer. */
    static final class Client implements AutoCloseable {
        private final UnixSocket socket;
        private final Arena arena = Arena.ofConfined();
        private final FdList fds = new FdList();
        private final MemorySegment control;
        private final MemorySegment buf;

        Client(Path path, long maxBuffer) throws IOException {
            socket = UnixSocket.connect(path);
            control = arena.allocate(CONTROL, 8);
            buf = arena.allocate(maxBuffer, 64);
        }

        private void start(int op, long a, long b, long n) throws IOException {
            control.fill((byte) 0);
            control.set(ValueLayout.JAVA_INT, 0, op);
            control.set(ValueLayout.JAVA_INT, 4, (int) a);
            control.set(ValueLayout.JAVA_INT, 8, (int) b);
            control.set(ValueLayout.JAVA_LONG, 16, n);
            socket.send(null, control);
        }

        /** Round trips of request/reply sizes; fills {@code nanos} (one entry per round trip). */
        void pingPong(int requestBytes, int replyBytes, long[] nanos) throws IOException {
            start(PING_PONG, requestBytes, replyBytes, nanos.length);
            MemorySegment req = buf.asSlice(0, requestBytes);
            MemorySegment reply = buf.asSlice(0, replyBytes);
            for (int i = 0; i < nanos.length; i++) {
                long t0 = System.nanoTime();
                socket.send(null, req);
                socket.receiveFully(reply, fds);
                nanos[i] = System.nanoTime() - t0;
            }
        }

        /** Receives {@code total} bytes streamed in {@code chunk}-byte writes; returns nanoseconds. */
        long streamOut(long chunk, long total) throws IOException {
            long t0 = System.nanoTime();
            start(STREAM_OUT, chunk, 0, total);
            for (long done = 0; done < total; ) {
                long len = Math.min(chunk, total - done);
                socket.receiveFully(buf.asSlice(0, len), fds);
                done += len;
            }
            return System.nanoTime() - t0;
        }

        /** Sends {@code total} bytes in {@code chunk}-byte writes and waits for the acknowledgement. */
        long streamIn(long chunk, long total) throws IOException {
            long t0 = System.nanoTime();
            start(STREAM_IN, chunk, 0, total);
            for (long done = 0; done < total; ) {
                long len = Math.min(chunk, total - done);
                socket.send(null, buf.asSlice(0, len));
                done += len;
            }
            socket.receiveFully(buf.asSlice(0, 1), fds);
            return System.nanoTime() - t0;
        }

        @Override
        public void close() {
            socket.close();
            fds.close();
            arena.close();
        }
    }
}
