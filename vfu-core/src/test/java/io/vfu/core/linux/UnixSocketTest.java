package io.vfu.core.linux;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.testing.NoFdLeaks;
import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

@SuppressWarnings("try") // resources kept open for their side effects, closed early on purpose
@ExtendWith(NoFdLeaks.class)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class UnixSocketTest {
    @TempDir
    Path dir;

    static MemorySegment pattern(Arena arena, int size, int seed) {
        MemorySegment s = arena.allocate(size);
        for (int i = 0; i < size; i++) {
            s.set(JAVA_BYTE, i, (byte) (i * 31 + seed));
        }
        return s;
    }

    static MemorySegment text(Arena arena, String s) {
        byte[] b = s.getBytes();
        MemorySegment seg = arena.allocate(b.length);
        seg.copyFrom(MemorySegment.ofArray(b));
        return seg;
    }

    static String string(MemorySegment s) {
        return new String(s.toArray(JAVA_BYTE));
    }

    @Test
    void listenConnectAcceptAndExchangeBytes() throws Exception {
        Path path = dir.resolve("s.sock");
        try (UnixSocket server = UnixSocket.listen(path);
                UnixSocket client = UnixSocket.connect(path);
                UnixSocket accepted = server.accept();
                Arena arena = Arena.ofConfined();
                FdList fds = new FdList()) {
            assertThat(server.path()).isEqualTo(path);
            assertThat(client.path()).isNull();
            client.send(null, text(arena, "hello "), text(arena, ""), text(arena, "world"));
            MemorySegment dst = arena.allocate(11);
            accepted.receiveFully(dst, fds);
            assertThat(string(dst)).isEqualTo("hello world");
            assertThat(fds.size()).isZero();
            assertThat(fds.truncated()).isFalse();

            accepted.send(new int[0], text(arena, "back"));
            MemorySegment back = arena.allocate(4);
            client.receiveFully(back, fds);
            assertThat(string(back)).isEqualTo("back");
        }
        assertThat(path).doesNotExist();
    }

    @Test
    void socketFileIsMode0600ByDefaultAndExactModeOtherwise() throws Exception {
        Path path = dir.resolve("p.sock");
        try (UnixSocket server = UnixSocket.listen(path)) {
            assertThat(Files.readAttributes(path, java.nio.file.attribute.BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).isOther()).isTrue();
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(path, LinkOption.NOFOLLOW_LINKS)))
                    .isEqualTo("rw-------");
        }
        Path open = dir.resolve("o.sock");
        try (UnixSocket server = UnixSocket.listen(open, 0666, 4)) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(open, LinkOption.NOFOLLOW_LINKS)))
                    .isEqualTo("rw-rw-rw-");
        }
    }

    @Test
    void existingPathFailsWithEaddrinuseAndIsNotDeleted() throws Exception {
        Path path = dir.resolve("stale.sock");
        try (UnixSocket first = UnixSocket.listen(path)) {
            assertThatThrownBy(() -> UnixSocket.listen(path))
                    .isInstanceOfSatisfying(LinuxException.class, e -> {
                        assertThat(e.errno()).isEqualTo(Errno.EADDRINUSE);
                        assertThat(e.call()).isEqualTo("bind");
                        assertThat(e.getMessage()).contains(path.toString());
                    });
            assertThat(path).exists();
        }
        Path file = Files.writeString(dir.resolve("plain"), "x");
        assertThatThrownBy(() -> UnixSocket.listen(file))
                .isInstanceOfSatisfying(LinuxException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EADDRINUSE));
        assertThat(file).hasContent("x");
    }

    @Test
    void closeKeepsAFileThatReplacedTheSocket() throws Exception {
        Path path = dir.resolve("r.sock");
        UnixSocket server = UnixSocket.listen(path);
        Files.delete(path);
        Files.writeString(path, "someone else's");
        server.close();
        assertThat(path).hasContent("someone else's");
    }

    @Test
    void connectToMissingPathFailsWithEnoent() {
        Path path = dir.resolve("missing.sock");
        assertThatThrownBy(() -> UnixSocket.connect(path))
                .isInstanceOfSatisfying(LinuxException.class, e -> {
                    assertThat(e.errno()).isEqualTo(Errno.ENOENT);
                    assertThat(e.getMessage()).startsWith("connect: ENOENT").contains(path.toString());
                });
    }

    @Test
    void connectToStaleSocketFailsWithEconnrefused() throws Exception {
        Path path = dir.resolve("dead.sock");
        UnixSocket server = UnixSocket.listen(path);
        Path kept = dir.resolve("kept.sock");
        Files.createLink(kept, path); // a second name survives the unlink on close
        server.close();
        assertThatThrownBy(() -> UnixSocket.connect(kept))
                .isInstanceOfSatisfying(LinuxException.class, e -> {
                    assertThat(e.errno()).isEqualTo(Errno.ECONNREFUSED);
                    assertThat(e.getMessage()).startsWith("connect: ECONNREFUSED");
                });
    }

    @Test
    void pathTooLongIsRejected() {
        Path path = dir.resolve("x".repeat(120));
        assertThatThrownBy(() -> UnixSocket.listen(path))
                .isInstanceOfSatisfying(LinuxException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ENAMETOOLONG));
    }

    @Test
    void partialReads() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofConfined();
                FdList fds = new FdList()) {
            int size = 100 * 1024;
            MemorySegment src = pattern(arena, size, 7);
            CompletableFuture<Void> sender = inAnotherThread(() -> a.send(null, src));
            MemorySegment dst = arena.allocate(size);
            long[] cuts = {0, 1000, 60_000, size};
            for (int i = 0; i < 3; i++) {
                b.receiveFully(dst.asSlice(cuts[i], cuts[i + 1] - cuts[i]), fds);
            }
            sender.get(30, TimeUnit.SECONDS);
            assertThat(dst.mismatch(src)).isEqualTo(-1);
            // one receive returns at most what was asked for
            a.send(null, src.asSlice(0, 10));
            assertThat(b.receive(dst.asSlice(0, 4), fds)).isEqualTo(4);
            assertThat(b.receive(dst.asSlice(0, 100), fds)).isEqualTo(6);
        }
    }

    @Test
    void sendLargerThanSocketBufferFromAnotherThread() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofShared();
                FdList fds = new FdList()) {
            int size = Math.max(4 * 1024 * 1024, 4 * (a.sendBufferSize() + b.receiveBufferSize()));
            MemorySegment part1 = pattern(arena, size / 2, 1);
            MemorySegment part2 = pattern(arena, size - size / 2, 2);
            try (EventFd e1 = EventFd.create()) {
                int[] passed = {e1.fd()};
                CompletableFuture<Void> sender = inAnotherThread(() -> a.send(passed, new MemorySegment[] {part1, part2}));
                MemorySegment dst = arena.allocate(size);
                b.receiveFully(dst, fds);
                sender.get(30, TimeUnit.SECONDS);
                assertThat(dst.asSlice(0, size / 2).mismatch(part1)).isEqualTo(-1);
                assertThat(dst.asSlice(size / 2).mismatch(part2)).isEqualTo(-1);
                assertThat(fds.size()).as("fds travel once, with the first chunk").isEqualTo(1);
            }
        }
    }

    /** The two-part send (no array) split by a full socket buffer inside the first part, the second, or at their border. */
    @ParameterizedTest
    @ValueSource(ints = {0, 16, 50, 99, 100})
    void twoPartSendLargerThanSocketBufferFromAnotherThread(int firstPercent) throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofShared();
                FdList fds = new FdList(); EventFd e1 = EventFd.create()) {
            int size = Math.max(4 * 1024 * 1024, 4 * (a.sendBufferSize() + b.receiveBufferSize()));
            int firstSize = firstPercent == 16 ? 16 : (int) ((long) size * firstPercent / 100);
            MemorySegment first = pattern(arena, firstSize, 1);
            MemorySegment second = pattern(arena, size - firstSize, 2);
            int[] passed = {e1.fd()};
            CompletableFuture<Void> sender = inAnotherThread(() -> a.send(passed, first, second));
            MemorySegment dst = arena.allocate(size);
            b.receiveFully(dst, fds);
            sender.get(30, TimeUnit.SECONDS);
            assertThat(dst.asSlice(0, firstSize).mismatch(first)).isEqualTo(-1);
            assertThat(dst.asSlice(firstSize).mismatch(second)).isEqualTo(-1);
            assertThat(fds.size()).as("fds travel once, with the first chunk").isEqualTo(1);
        }
    }

    /**
     * The four-part send (a held reply with its data, then the next message and its data): larger than the socket
     * buffers, so partial writes end inside parts and at their borders; an empty part is skipped.
     */
    @ParameterizedTest
    @ValueSource(ints = {0, 24})
    void fourPartSendLargerThanSocketBufferFromAnotherThread(int thirdSize) throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofShared();
                FdList fds = new FdList(); EventFd e1 = EventFd.create()) {
            int size = Math.max(4 * 1024 * 1024, 4 * (a.sendBufferSize() + b.receiveBufferSize()));
            MemorySegment[] parts = {pattern(arena, 16, 1), pattern(arena, size / 3, 2), pattern(arena, thirdSize, 3),
                pattern(arena, size - 16 - size / 3 - thirdSize, 4)};
            int[] passed = {e1.fd()};
            CompletableFuture<Void> sender = inAnotherThread(() -> a.send(passed, parts[0], parts[1], parts[2], parts[3]));
            MemorySegment dst = arena.allocate(size);
            b.receiveFully(dst, fds);
            sender.get(30, TimeUnit.SECONDS);
            long at = 0;
            for (MemorySegment part : parts) {
                assertThat(dst.asSlice(at, part.byteSize()).mismatch(part)).isEqualTo(-1);
                at += part.byteSize();
            }
            assertThat(fds.size()).as("fds travel once, with the first chunk").isEqualTo(1);
        }
    }

    @Test
    void twoPartSendChecksItsParts() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofConfined();
                FdList fds = new FdList(); EventFd event = EventFd.create()) {
            MemorySegment heap = MemorySegment.ofArray(new byte[4]);
            MemorySegment x = text(arena, "x");
            assertThatThrownBy(() -> a.send(null, x, heap)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("heap");
            assertThatThrownBy(() -> a.send(null, heap, x)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> a.send(new int[] {event.fd()}, MemorySegment.NULL, MemorySegment.NULL))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("at least one byte");
            assertThatThrownBy(() -> a.send(new int[] {-1}, x, x)).isInstanceOf(IllegalArgumentException.class);
            a.send(null, MemorySegment.NULL, MemorySegment.NULL); // nothing to send: no-op
            a.send(null, MemorySegment.NULL, text(arena, "ab"));
            a.send(new int[] {event.fd()}, text(arena, "cd"), MemorySegment.NULL);
            MemorySegment dst = arena.allocate(4);
            b.receiveFully(dst, fds);
            assertThat(string(dst)).isEqualTo("abcd");
            assertThat(fds.size()).isEqualTo(1);
        }
    }

    @Test
    void passesFdsWithData() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofConfined();
                EventFd event = EventFd.create(); FdList fds = new FdList()) {
            a.send(new int[] {event.fd(), event.fd()}, text(arena, "x"));
            MemorySegment dst = arena.allocate(1);
            assertThat(b.receive(dst, fds)).isEqualTo(1);
            assertThat(fds.size()).isEqualTo(2);
            assertThat(fds.get(0)).isNotEqualTo(event.fd()).isNotEqualTo(fds.get(1));
            try (EventFd copy = EventFd.adopt(fds.take(0))) {
                copy.signal(3);
                assertThat(event.read()).isEqualTo(3);
            }
        }
    }

    @Test
    void tooManyFdsAreTruncatedWithoutLeaking() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofConfined();
                EventFd event = EventFd.create(); FdList fds = new FdList()) {
            b.maxFds(2);
            assertThat(b.maxFds()).isEqualTo(2);
            int[] five = {event.fd(), event.fd(), event.fd(), event.fd(), event.fd()};
            a.send(five, text(arena, "abc"));
            int open = Fds.openFdCount();
            MemorySegment dst = arena.allocate(3);
            b.receiveFully(dst, fds);
            assertThat(fds.truncated()).isTrue();
            assertThat(fds.size()).isEqualTo(2);
            assertThat(Fds.openFdCount()).isEqualTo(open + 2);
            fds.close();
            assertThat(fds.size()).isZero();
            assertThat(fds.truncated()).isFalse();
            assertThat(Fds.openFdCount()).isEqualTo(open);

            b.maxFds(0);
            a.send(new int[] {event.fd()}, text(arena, "d"));
            b.receiveFully(arena.allocate(1), fds);
            assertThat(fds.truncated()).isTrue();
            assertThat(fds.size()).isZero();
        }
    }

    @Test
    void maxFdsIsBounded() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]) {
            assertThat(a.maxFds()).isEqualTo(16);
            a.maxFds(253);
            assertThatThrownBy(() -> a.maxFds(254)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> a.maxFds(-1)).isInstanceOf(IllegalArgumentException.class);
            try (Arena arena = Arena.ofConfined()) {
                assertThatThrownBy(() -> a.send(new int[254], text(arena, "x")))
                        .isInstanceOf(IllegalArgumentException.class);
                assertThatThrownBy(() -> a.send(new int[] {0}))
                        .isInstanceOf(IllegalArgumentException.class);
            }
        }
    }

    @Test
    void eofMidReadIsEofException() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket b = pair[1]; Arena arena = Arena.ofConfined(); FdList fds = new FdList()) {
            try (UnixSocket a = pair[0]) {
                a.send(null, pattern(arena, 10, 0));
            }
            assertThatThrownBy(() -> b.receiveFully(arena.allocate(16), fds))
                    .isInstanceOf(EOFException.class)
                    .hasMessageContaining("10 of 16 bytes");
            assertThat(b.receive(arena.allocate(1), fds)).isZero();
        }
    }

    @Test
    void skipDiscardsBytesAndKeepsFds() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofShared();
                EventFd event = EventFd.create(); FdList fds = new FdList()) {
            int size = 300_000;
            MemorySegment src = pattern(arena, size + 3, 9);
            CompletableFuture<Void> sender = inAnotherThread(() -> a.send(new int[] {event.fd()}, src));
            b.skip(size, fds);
            MemorySegment tail = arena.allocate(3);
            b.receiveFully(tail, fds);
            sender.get(30, TimeUnit.SECONDS);
            assertThat(tail.mismatch(src.asSlice(size))).isEqualTo(-1);
            assertThat(fds.size()).isEqualTo(1);
            a.close();
            assertThatThrownBy(() -> b.skip(1, fds)).isInstanceOf(EOFException.class);
        }
    }

    @Test
    void heapAndReadOnlySegmentsAreRejected() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; FdList fds = new FdList();
                Arena arena = Arena.ofConfined()) {
            MemorySegment heap = MemorySegment.ofArray(new byte[4]);
            assertThatThrownBy(() -> a.send(null, heap)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("heap");
            assertThatThrownBy(() -> b.receive(heap, fds)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> b.receive(arena.allocate(4).asReadOnly(), fds))
                    .isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> b.receiveNow(heap, 0, null, fds)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> b.receiveNow(arena.allocate(4), 0, heap, fds))
                    .isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> b.receiveNow(arena.allocate(4), 4, null, fds))
                    .isInstanceOf(IndexOutOfBoundsException.class);
        }
    }

    @Test
    void sendToClosedPeerIsEpipe() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; Arena arena = Arena.ofConfined()) {
            pair[1].close();
            assertThatThrownBy(() -> a.send(null, pattern(arena, 10, 0)))
                    .isInstanceOfSatisfying(LinuxException.class, e -> {
                        assertThat(e.call()).isEqualTo("sendmsg");
                        assertThat(e.errno()).isIn(Errno.EPIPE, Errno.ECONNRESET);
                    });
        }
    }

    @Test
    void peerCredentialsAreOurs() throws Exception {
        Path path = dir.resolve("c.sock");
        int uid = (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        int gid = (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:gid");
        try (UnixSocket server = UnixSocket.listen(path);
                UnixSocket client = UnixSocket.connect(path);
                UnixSocket accepted = server.accept()) {
            PeerCredentials creds = accepted.peerCredentials();
            assertThat(creds).isEqualTo(new PeerCredentials((int) ProcessHandle.current().pid(), uid, gid));
            assertThat(client.peerCredentials().pid()).isEqualTo(ProcessHandle.current().pid());
        }
    }

    @Test
    void awaitReadable() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofConfined()) {
            assertThat(b.awaitReadable(0)).isFalse();
            assertThat(b.awaitReadable(20)).isFalse();
            a.send(null, pattern(arena, 1, 0));
            assertThat(b.awaitReadable(0)).as("without waiting, data there").isTrue();
            assertThat(b.awaitReadable(-1)).isTrue();
            b.receive(arena.allocate(1), new FdList());
            assertThat(b.awaitReadable(0)).as("without waiting, data taken").isFalse();
            a.shutdown(false, true);
            assertThat(b.awaitReadable(0)).as("without waiting, hang-up").isTrue();
            assertThat(b.awaitReadable(10_000)).as("hang-up counts as readable").isTrue();
        }
    }

    @Test
    void receiveNowDoesNotWaitAndScattersWithFds() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofConfined();
                EventFd event = EventFd.create(); FdList fds = new FdList()) {
            MemorySegment first = arena.allocate(4);
            MemorySegment second = arena.allocate(16);
            assertThat(b.receiveNow(first, 0, second, fds)).as("nothing there").isEqualTo(-1);
            assertThat(fds.size()).isZero();
            a.send(new int[] {event.fd()}, pattern(arena, 10, 3));
            assertThat(b.receiveNow(first, 1, second, fds)).isEqualTo(10);
            assertThat(first.asSlice(1).toArray(JAVA_BYTE))
                    .isEqualTo(pattern(arena, 10, 3).asSlice(0, 3).toArray(JAVA_BYTE));
            assertThat(second.asSlice(0, 7).toArray(JAVA_BYTE))
                    .isEqualTo(pattern(arena, 10, 3).asSlice(3, 7).toArray(JAVA_BYTE));
            assertThat(fds.size()).as("the fd came with the bytes").isEqualTo(1);
            assertThat(b.receiveNow(first, 0, null, fds)).as("all taken").isEqualTo(-1);
            a.send(null, pattern(arena, 2, 5));
            assertThat(b.receiveNow(first, 0, null, fds)).as("without a second part").isEqualTo(2);
            a.shutdown(false, true);
            assertThat(b.receiveNow(first, 0, null, fds)).as("end of stream").isZero();
        }
    }

    @Test
    void closeWakesBlockedReceiverAndAcceptor() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; Arena arena = Arena.ofShared(); FdList fds = new FdList()) {
            UnixSocket b = pair[1];
            AtomicReference<Object> result = new AtomicReference<>();
            Thread reader = Thread.ofPlatform().start(() -> {
                try {
                    result.set(b.receive(arena.allocate(8), fds));
                } catch (IOException e) {
                    result.set(e);
                }
            });
            // the reader is blocked or about to block: either way close must release it
            while (reader.getState() != Thread.State.RUNNABLE && reader.isAlive()) {
                Thread.onSpinWait();
            }
            b.close();
            reader.join(TimeUnit.SECONDS.toMillis(30));
            assertThat(reader.isAlive()).isFalse();
            assertThat(result.get()).satisfiesAnyOf(
                    r -> assertThat(r).isEqualTo(0L),
                    r -> assertThat(r).isInstanceOfSatisfying(LinuxException.class,
                            e -> assertThat(e.errno()).isEqualTo(Errno.EBADF)));
            b.close(); // idempotent
            assertThatThrownBy(() -> b.receive(arena.allocate(1), fds))
                    .isInstanceOfSatisfying(LinuxException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EBADF));
        }

        Path path = dir.resolve("a.sock");
        UnixSocket server = UnixSocket.listen(path);
        AtomicReference<Object> accepted = new AtomicReference<>();
        Thread acceptor = Thread.ofPlatform().start(() -> {
            try {
                accepted.set(server.accept());
            } catch (IOException e) {
                accepted.set(e);
            }
        });
        server.close();
        acceptor.join(TimeUnit.SECONDS.toMillis(30));
        assertThat(acceptor.isAlive()).isFalse();
        assertThat(accepted.get()).isInstanceOfSatisfying(LinuxException.class,
                e -> assertThat(e.errno()).isEqualTo(Errno.EBADF));
        assertThat(path).doesNotExist();
    }

    @Test
    void adoptTakesOwnership() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; Arena arena = Arena.ofConfined(); FdList fds = new FdList()) {
            try (UnixSocket b = UnixSocket.adopt(Fds.dup(pair[1].fd()))) {
                pair[1].close();
                a.send(null, text(arena, "ok"));
                MemorySegment dst = arena.allocate(2);
                b.receiveFully(dst, fds);
                assertThat(string(dst)).isEqualTo("ok");
            }
        }
    }

    @Test
    void manyPartsBeyondIovMax() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofShared();
                FdList fds = new FdList()) {
            int n = 3000;
            MemorySegment src = pattern(arena, n, 5);
            MemorySegment[] parts = new MemorySegment[n];
            for (int i = 0; i < n; i++) {
                parts[i] = src.asSlice(i, 1);
            }
            CompletableFuture<Void> sender = inAnotherThread(() -> a.send(null, parts));
            MemorySegment dst = arena.allocate(n);
            b.receiveFully(dst, fds);
            sender.get(30, TimeUnit.SECONDS);
            assertThat(dst.mismatch(src)).isEqualTo(-1);
        }
    }

    private interface Send {
        void run() throws IOException;
    }

    /** Runs a (blocking) send on a platform thread of its own. */
    private static CompletableFuture<Void> inAnotherThread(Send send) {
        return CompletableFuture.runAsync(() -> {
            try {
                send.run();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }, runnable -> Thread.ofPlatform().start(runnable));
    }
}
