package io.vfu.core.linux;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.vfu.core.testing.ChildJvm;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Acceptance test: a child JVM passes a memfd, an eventfd and a socketpair end to this JVM in one SCM_RIGHTS
 * message; memory written through the parent's mapping is read through the child's; eventfd signals cross both
 * ways; the parent leaks no descriptor.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class CrossProcessFdPassingTest {
    private static final long WAIT_MILLIS = 60_000;

    @TempDir
    Path dir;

    @Test
    void childPassesMemfdEventfdAndSocketOverScmRights() throws Exception {
        int fdsBefore = Fds.openFdCount();
        Path path = dir.resolve("fd-passing.sock");
        try (UnixSocket listener = UnixSocket.listen(path);
                ChildJvm child = ChildJvm.start(FdPassingChild.class, path.toString());
                Arena arena = Arena.ofConfined();
                FdList fds = new FdList()) {
            while (!listener.awaitReadable(200)) { // a child that dies before connecting must not hang us
                if (!child.isAlive()) {
                    fail("child exited before connecting: " + child.describe());
                }
            }
            try (UnixSocket connection = listener.accept()) {
                assertThat(connection.peerCredentials().pid()).isEqualTo(child.pid());

                MemorySegment hello = arena.allocate(FdPassingChild.HELLO.length());
                connection.receiveFully(hello, fds);
                assertThat(new String(hello.toArray(JAVA_BYTE))).isEqualTo(FdPassingChild.HELLO);
                assertThat(fds.size()).as("fds in one message").isEqualTo(3);
                assertThat(fds.truncated()).isFalse();

                try (MemFd memory = MemFd.adopt(fds.take(0));
                        EventFd event = EventFd.adopt(fds.take(1));
                        UnixSocket report = UnixSocket.adopt(fds.take(2))) {
                    assertThat(memory.size()).isEqualTo(FdPassingChild.MEMFD_SIZE);
                    byte[] written = new byte[FdPassingChild.REPORT_SIZE];
                    for (int i = 0; i < written.length; i++) {
                        written[i] = (byte) (0xA5 ^ i * 7);
                    }
                    try (Mapping mapping = memory.map(0, FdPassingChild.MEMFD_SIZE, true)) {
                        MemorySegment.copy(written, 0, mapping.segment(), JAVA_BYTE, 0, written.length);
                    }
                    event.signal(1); // child: the memory is ready

                    MemorySegment seen = arena.allocate(FdPassingChild.REPORT_SIZE);
                    report.receiveFully(seen, fds);
                    assertThat(seen.toArray(JAVA_BYTE)).as("bytes the child read through its mapping")
                            .isEqualTo(written);

                    assertThat(event.await(WAIT_MILLIS)).as(child.describe()).isTrue();
                    assertThat(event.read()).isEqualTo(FdPassingChild.CHILD_SIGNAL);

                    assertThat(child.waitFor(Duration.ofMillis(WAIT_MILLIS))).as(child.describe()).isZero();
                    assertThat(child.output()).contains("child saw " + HexFormat.of().formatHex(written))
                            .contains("child read signal 1, done");
                    assertThat(report.receive(arena.allocate(1), fds)).as("child's end closed").isZero();
                    assertThat(fds.size()).isEqualTo(3); // all taken
                }
            }
        }
        assertThat(path).doesNotExist();
        assertThat(Fds.openFdCount()).as("parent fds after the exchange").isEqualTo(fdsBefore);
    }
}
