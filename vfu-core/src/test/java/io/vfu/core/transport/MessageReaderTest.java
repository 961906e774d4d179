package io.vfu.core.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.linux.FdList;
import io.vfu.core.linux.Fds;
import io.vfu.core.linux.LinuxException;
import io.vfu.core.linux.MemFd;
import io.vfu.core.linux.UnixSocket;
import io.vfu.core.protocol.Header;
import io.vfu.core.testing.NoFdLeaks;
import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@link MessageReader}: messages framed from a staging buffer, bodies intact, and every fd handed to the
 * message it was sent with, however the kernel splits or joins the bytes.
 */
@ExtendWith(NoFdLeaks.class) // checks after closeAll(); the property closes everything it opens itself
class MessageReaderTest {
    private final Arena arena = Arena.ofShared();
    private final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
        arena.close();
    }

    /** A message: header with msg_id {@code id} and msg_size, then {@code bodySize} bytes derived from the id. */
    private MemorySegment message(int id, int bodySize) {
        MemorySegment m = arena.allocate(Header.SIZE + bodySize, 8);
        m.set(ValueLayout.JAVA_SHORT_UNALIGNED, Header.MSG_ID_OFFSET, (short) id);
        m.set(ValueLayout.JAVA_INT_UNALIGNED, Header.MSG_SIZE_OFFSET, Header.SIZE + bodySize);
        for (int i = 0; i < bodySize; i++) {
            m.set(ValueLayout.JAVA_BYTE, Header.SIZE + i, bodyByte(id, i));
        }
        return m;
    }

    private static byte bodyByte(int id, int i) {
        return (byte) (id * 31 + i);
    }

    /** A memfd whose size names it, so that a received fd tells which one it is. */
    private int taggedFd(long tag) throws IOException {
        MemFd m = MemFd.create("tag", tag);
        toClose.add(m);
        return m.fd();
    }

    private static long tagOf(int fd) throws IOException {
        try (MemFd m = MemFd.adopt(fd)) {
            return m.size();
        }
    }

    private UnixSocket[] pair() throws IOException {
        UnixSocket[] s = UnixSocket.pair();
        toClose.add(s[0]);
        toClose.add(s[1]);
        return s;
    }

    /** Reads one message; returns its id after checking its body; fds (tags) go to {@code tags}. */
    private int readOne(MessageReader reader, List<Long> tags) throws IOException {
        return readOne(reader, tags, null, false);
    }

    /**
     * As {@link #readOne(MessageReader, List)}, offering {@code likely} for a scatter read; the body then goes into
     * {@code likely} if {@code useLikely} and it fits, else into a fresh buffer.
     */
    private int readOne(MessageReader reader, List<Long> tags, MemorySegment likely, boolean useLikely)
            throws IOException {
        return readOne(reader, tags, likely, useLikely, 0);
    }

    /**
     * As {@link #readOne(MessageReader, List, MemorySegment, boolean)} with the body's first {@code prefix} bytes
     * read apart (as a reply's fixed part, into a buffer of their own) and the rest into {@code likely}.
     */
    private int readOne(MessageReader reader, List<Long> tags, MemorySegment likely, boolean useLikely, int prefix)
            throws IOException {
        MemorySegment header = arena.allocate(Header.SIZE);
        try (FdList fds = new FdList()) {
            assertThat(reader.readHeader(header, fds, likely, prefix)).isTrue();
            int id = Short.toUnsignedInt(header.get(ValueLayout.JAVA_SHORT_UNALIGNED, Header.MSG_ID_OFFSET));
            int bodySize = header.get(ValueLayout.JAVA_INT_UNALIGNED, Header.MSG_SIZE_OFFSET) - Header.SIZE;
            int first = Math.min(prefix, bodySize);
            MemorySegment head = arena.allocate(Math.max(first, 1)).asSlice(0, first);
            int restSize = bodySize - first;
            MemorySegment rest = useLikely && likely != null && restSize <= likely.byteSize()
                    ? likely.asSlice(0, restSize)
                    : arena.allocate(Math.max(restSize, 1)).asSlice(0, restSize);
            if (first > 0) { // as Connection reads: nothing for a header-only message
                reader.readBody(head, fds);
            }
            if (restSize > 0) {
                reader.readBody(rest, fds);
            }
            for (int i = 0; i < bodySize; i++) {
                byte got = i < first ? head.get(ValueLayout.JAVA_BYTE, i) : rest.get(ValueLayout.JAVA_BYTE, i - first);
                assertThat(got).as("body byte %d of message %d", i, id).isEqualTo(bodyByte(id, i));
            }
            for (int fd : fds.takeAll()) {
                tags.add(tagOf(fd));
            }
            return id;
        }
    }

    @Test
    void smallMessagesSentTogetherAreFramedApart() throws Exception {
        UnixSocket[] s = pair();
        MemorySegment a = message(1, 8);
        MemorySegment b = message(2, 0);
        MemorySegment c = message(3, 100);
        s[0].send(null, a, b, c); // one send: the reader's first receive gets all three
        try (MessageReader reader = new MessageReader(s[1], arena)) {
            List<Long> tags = new ArrayList<>();
            assertThat(readOne(reader, tags)).isEqualTo(1);
            assertThat(reader.hasStaged()).as("the next messages came with the first").isTrue();
            assertThat(readOne(reader, tags)).isEqualTo(2);
            assertThat(readOne(reader, tags)).isEqualTo(3);
            assertThat(reader.hasStaged()).isFalse();
            assertThat(tags).isEmpty();
            s[0].close();
            assertThat(reader.readHeader(arena.allocate(Header.SIZE), new FdList())).as("clean end").isFalse();
        }
    }

    @Test
    void fdsOfALaterMessageWaitForIt() throws Exception {
        UnixSocket[] s = pair();
        s[0].send(null, message(1, 4));
        s[0].send(new int[] {taggedFd(4096), taggedFd(8192)}, message(2, 16));
        s[0].send(null, message(3, 0));
        s[0].send(new int[] {taggedFd(12288)}, message(4, 10_000)); // body beyond the stage
        s[0].send(null, message(5, 2));
        try (MessageReader reader = new MessageReader(s[1], arena)) {
            List<Long> tags = new ArrayList<>();
            assertThat(readOne(reader, tags)).isEqualTo(1);
            assertThat(tags).as("message 1 sent no fds, though message 2's came in the same receive").isEmpty();
            assertThat(readOne(reader, tags)).isEqualTo(2);
            assertThat(tags).containsExactly(4096L, 8192L);
            tags.clear();
            assertThat(readOne(reader, tags)).isEqualTo(3);
            assertThat(tags).isEmpty();
            assertThat(readOne(reader, tags)).isEqualTo(4);
            assertThat(tags).containsExactly(12288L);
            tags.clear();
            assertThat(readOne(reader, tags)).isEqualTo(5);
            assertThat(tags).isEmpty();
        }
    }

    @Test
    void aHeaderArrivingInPiecesKeepsItsFds() throws Exception {
        UnixSocket[] s = pair();
        MemorySegment m = message(7, 40);
        s[0].send(new int[] {taggedFd(4096)}, m.asSlice(0, 5));
        s[0].send(null, m.asSlice(5, 7));
        s[0].send(null, m.asSlice(12));
        try (MessageReader reader = new MessageReader(s[1], arena)) {
            List<Long> tags = new ArrayList<>();
            assertThat(readOne(reader, tags)).isEqualTo(7);
            assertThat(tags).containsExactly(4096L);
        }
    }

    @Test
    void aReceiveTimeoutInsideAHeaderLosesNothing() throws Exception {
        UnixSocket[] s = pair();
        s[1].receiveTimeout(Duration.ofMillis(50));
        MemorySegment m = message(9, 3);
        s[0].send(new int[] {taggedFd(4096)}, m.asSlice(0, 10));
        try (MessageReader reader = new MessageReader(s[1], arena)) {
            MemorySegment header = arena.allocate(Header.SIZE);
            try (FdList fds = new FdList()) {
                assertThatThrownBy(() -> reader.readHeader(header, fds))
                        .isInstanceOfSatisfying(LinuxException.class,
                                e -> assertThat(e.errnoValue()).isEqualTo(Errno.EAGAIN.value()));
                assertThat(fds.isEmpty()).as("fds wait with the staged bytes").isTrue();
            }
            s[0].send(null, m.asSlice(10));
            List<Long> tags = new ArrayList<>();
            assertThat(readOne(reader, tags)).isEqualTo(9);
            assertThat(tags).containsExactly(4096L);
        }
    }

    @Test
    void aScatterReadPutsTheBodyInPlaceWithOneReceive() throws Exception {
        UnixSocket[] s = pair();
        s[0].send(null, message(1, 10_000));
        MemorySegment likely = arena.allocate(10_000);
        try (MessageReader reader = new MessageReader(s[1], arena)) {
            List<Long> tags = new ArrayList<>();
            assertThat(readOne(reader, tags, likely, true)).isEqualTo(1);
            assertThat(likely.get(ValueLayout.JAVA_BYTE, 9_999)).isEqualTo(bodyByte(1, 9_999));
            assertThat(reader.hasStaged()).isFalse();
        }
    }

    /**
     * A reply whose fixed part and data go to different places (DMA_READ into the device's buffer): one receive
     * puts the fixed part into the stage and the data in place, and reading the fixed part leaves it there.
     */
    @Test
    void aScatterReadWithAPrefixStagesTheFixedPartAndPutsTheDataInPlace() throws Exception {
        UnixSocket[] s = pair();
        s[0].send(null, message(1, 16 + 10_000), message(2, 30));
        MemorySegment data = arena.allocate(10_000);
        try (MessageReader reader = new MessageReader(s[1], arena)) {
            MemorySegment header = arena.allocate(Header.SIZE);
            try (FdList fds = new FdList()) {
                assertThat(reader.readHeader(header, fds, data, 16)).isTrue();
                assertThat(data.get(ValueLayout.JAVA_BYTE, 0)).as("the data's start landed in place")
                        .isEqualTo(bodyByte(1, 16));
                MemorySegment fixed = arena.allocate(16);
                reader.readBody(fixed, fds);
                assertThat(fixed.get(ValueLayout.JAVA_BYTE, 15)).isEqualTo(bodyByte(1, 15));
                // Mark the data's first byte: reading the data must not write it again (no copy from the stage).
                byte marker = (byte) (bodyByte(1, 16) + 1);
                data.set(ValueLayout.JAVA_BYTE, 0, marker);
                reader.readBody(data, fds);
                assertThat(data.get(ValueLayout.JAVA_BYTE, 0)).as("left in place, not copied").isEqualTo(marker);
                assertThat(data.get(ValueLayout.JAVA_BYTE, 9_999)).isEqualTo(bodyByte(1, 16 + 9_999));
            }
            List<Long> tags = new ArrayList<>();
            assertThat(readOne(reader, tags, null, false)).as("the next message, after the data").isEqualTo(2);
            assertThat(reader.hasStaged()).isFalse();
        }
    }

    @Test
    void aScatterReadThatGuessedWrongLosesNothing() throws Exception {
        UnixSocket[] s = pair();
        // A short reply (as an error reply would be), then two more messages; all in the socket before reading.
        s[0].send(null, message(1, 0));
        s[0].send(new int[] {taggedFd(4096)}, message(2, 9_000));
        s[0].send(null, message(3, 6_000), message(4, 100));
        MemorySegment likely = arena.allocate(8_000);
        try (MessageReader reader = new MessageReader(s[1], arena)) {
            List<Long> tags = new ArrayList<>();
            // Message 1 is header-only: what the scatter read put into `likely` belongs to message 2.
            assertThat(readOne(reader, tags, likely, true)).isEqualTo(1);
            assertThat(tags).isEmpty();
            // Message 2 is larger than `likely`: read elsewhere; its fd is its own.
            assertThat(readOne(reader, tags, likely, true)).isEqualTo(2);
            assertThat(tags).containsExactly(4096L);
            tags.clear();
            // Message 3 fits and lands in place; message 4, read with it, waits in the stage.
            assertThat(readOne(reader, tags, likely, true)).isEqualTo(3);
            assertThat(readOne(reader, tags, likely, false)).isEqualTo(4);
            assertThat(tags).isEmpty();
            assertThat(reader.hasStaged()).isFalse();
        }
    }

    @Test
    void receiveNowLooksWithoutWaitingAndItsScatterReadStaysInPlace() throws Exception {
        UnixSocket[] s = pair();
        s[1].receiveTimeout(Duration.ofSeconds(20)); // a framing bug would wait for bytes forever
        MemorySegment likely = arena.allocate(10_000);
        try (MessageReader reader = new MessageReader(s[1], arena)) {
            assertThat(reader.receiveNow(likely)).as("nothing sent yet").isFalse();
            s[0].send(new int[] {taggedFd(8192)}, message(1, 10_000));
            s[0].send(null, message(2, 10_000));
            assertThat(reader.receiveNow(likely)).isTrue();
            assertThat(likely.get(ValueLayout.JAVA_BYTE, 0)).as("the body's start landed in place")
                    .isEqualTo(bodyByte(1, 0));
            List<Long> tags = new ArrayList<>();
            assertThat(readOne(reader, tags, likely, true)).isEqualTo(1);
            assertThat(tags).containsExactly(8192L);
            // Another buffer at the next read: what the look put into the first one is moved back, nothing lost.
            assertThat(reader.receiveNow(likely)).isTrue();
            assertThat(readOne(reader, tags, arena.allocate(10_000), true)).isEqualTo(2);
            assertThat(reader.hasStaged()).isFalse();
            // A header-only message whose scatter read brought the next message's bytes into the buffer: a look
            // then finds them staged, and the next read with the same buffer still frames them as a header.
            s[0].send(null, message(3, 0), message(4, 10_000));
            assertThat(readOne(reader, tags, likely, true)).isEqualTo(3);
            assertThat(reader.receiveNow(likely)).isTrue();
            assertThat(readOne(reader, tags, likely, true)).isEqualTo(4);
            assertThat(reader.hasStaged()).isFalse();
            s[0].close();
            assertThat(reader.receiveNow(likely)).as("the end of the stream counts").isTrue();
            assertThat(reader.readHeader(arena.allocate(Header.SIZE), new FdList(), likely)).isFalse();
        }
    }

    @Test
    void skippedBodiesKeepTheFraming() throws Exception {
        UnixSocket[] s = pair();
        s[0].send(null, message(1, 3000), message(2, 12));
        s[0].send(null, message(3, 20_000));
        s[0].send(null, message(4, 1));
        try (MessageReader reader = new MessageReader(s[1], arena)) {
            MemorySegment header = arena.allocate(Header.SIZE);
            try (FdList fds = new FdList()) {
                assertThat(reader.readHeader(header, fds)).isTrue();
                reader.skip(3000, fds);
            }
            List<Long> tags = new ArrayList<>();
            assertThat(readOne(reader, tags)).isEqualTo(2);
            try (FdList fds = new FdList()) {
                assertThat(reader.readHeader(header, fds)).isTrue();
                reader.skip(20_000, fds);
            }
            assertThat(readOne(reader, tags)).isEqualTo(4);
        }
    }

    @Test
    void theStreamEndingInsideAHeaderIsAnError() throws Exception {
        UnixSocket[] s = pair();
        s[0].send(null, message(1, 0).asSlice(0, 9));
        s[0].close();
        try (MessageReader reader = new MessageReader(s[1], arena)) {
            assertThatThrownBy(() -> reader.readHeader(arena.allocate(Header.SIZE), new FdList()))
                    .isInstanceOf(EOFException.class);
        }
    }

    @Test
    void fdsOfMessagesNeverReadAreClosed() throws Exception {
        UnixSocket[] s = pair();
        int before = Fds.openFdCount();
        s[0].send(null, message(1, 0));
        MemFd m = MemFd.create("unread", 4096);
        s[0].send(new int[] {m.fd()}, message(2, 0));
        m.close();
        try (MessageReader reader = new MessageReader(s[1], arena)) {
            assertThat(readOne(reader, new ArrayList<>())).isEqualTo(1);
            // message 2's fd may have been received along with message 1: the reader holds it until close
        }
        assertThat(Fds.openFdCount()).isEqualTo(before);
    }

    /**
     * Any sequence of messages, each sent with one sendmsg carrying its fds (fd-less ones sometimes joined into
     * one send), written while the reader reads: every message comes out whole, with exactly its own fds.
     */
    @Property(tries = 150)
    void everyMessageGetsItsOwnFds(@ForAll @Size(min = 1, max = 40) List<@IntRange(min = 0, max = 9000) Integer> sizes,
                                   @ForAll @Size(min = 40, max = 40) List<@IntRange(min = 0, max = 3) Integer> fdCounts,
                                   @ForAll @Size(min = 40, max = 40) List<Boolean> joinWithNext,
                                   @ForAll @Size(min = 40, max = 40) List<@IntRange(min = 0, max = 12000) Integer> likelySizes,
                                   @ForAll @Size(min = 40, max = 40) List<Boolean> useLikely,
                                   @ForAll @Size(min = 40, max = 40) List<@IntRange(min = 0, max = 2) Integer> look,
                                   @ForAll @Size(min = 40, max = 40) List<@IntRange(min = 0, max = 40) Integer> prefixes)
            throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        s[1].receiveTimeout(Duration.ofSeconds(10)); // a framing bug would wait for bytes forever
        try (Arena a = Arena.ofShared(); MessageReader reader = new MessageReader(s[1], a)) {
            int n = sizes.size();
            List<List<Long>> expected = new ArrayList<>();
            List<MemFd> memfds = new ArrayList<>();
            long tag = 0;
            for (int i = 0; i < n; i++) {
                List<Long> tags = new ArrayList<>();
                for (int k = 0; k < fdCounts.get(i); k++) {
                    tag += 4096;
                    tags.add(tag);
                    memfds.add(MemFd.create("t", tag));
                }
                expected.add(tags);
            }
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    int fdIndex = 0;
                    List<MemorySegment> batch = new ArrayList<>();
                    for (int i = 0; i < n; i++) {
                        int count = fdCounts.get(i);
                        int[] fds = new int[count];
                        for (int k = 0; k < count; k++) {
                            fds[k] = memfds.get(fdIndex++).fd();
                        }
                        batch.add(message(i, sizes.get(i)));
                        boolean join = count == 0 && i + 1 < n && fdCounts.get(i + 1) == 0 && joinWithNext.get(i);
                        if (!join) {
                            s[0].send(count == 0 ? null : fds, batch.toArray(MemorySegment[]::new));
                            batch.clear();
                        }
                    }
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            try {
                for (int i = 0; i < n; i++) {
                    List<Long> tags = new ArrayList<>();
                    // Sometimes a scatter read into a buffer that may or may not suit this message.
                    int likelySize = likelySizes.get(i);
                    MemorySegment likely = likelySize >= MessageReader.SCATTER_MIN ? a.allocate(likelySize) : null;
                    // Sometimes a look without waiting first (as a reader holding replies does), scattering into
                    // the same buffer as the read or into another one.
                    // Sometimes the body's first bytes are read apart (a reply's fixed part, staged by the scatter).
                    int prefix = prefixes.get(i) > 24 ? prefixes.get(i) - 24 : 0;
                    if (look.get(i) == 1 || (look.get(i) == 2 && likely == null)) {
                        reader.receiveNow(likely, prefix);
                    } else if (look.get(i) == 2) {
                        reader.receiveNow(a.allocate(likelySize), prefix);
                    }
                    assertThat(readOne(reader, tags, likely, useLikely.get(i), prefix)).isEqualTo(i);
                    assertThat(tags).as("fds of message %d", i).isEqualTo(expected.get(i));
                }
                writer.get(10, TimeUnit.SECONDS);
            } finally {
                s[0].close();
                writer.handle((v, e) -> null).get(10, TimeUnit.SECONDS);
                s[1].close();
                memfds.forEach(MemFd::close);
            }
        }
    }
}
