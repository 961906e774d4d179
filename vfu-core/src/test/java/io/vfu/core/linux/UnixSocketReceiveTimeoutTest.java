package io.vfu.core.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** {@link UnixSocket#receiveTimeout}: SO_RCVTIMEO turns a receive that waits too long into EAGAIN. */
class UnixSocketReceiveTimeoutTest {
    @Test
    void aReceiveThatWaitsTooLongFailsWithEagainAndZeroWaitsAgain() throws Exception {
        UnixSocket[] s = UnixSocket.pair();
        try (UnixSocket a = s[0]; UnixSocket b = s[1]; Arena arena = Arena.ofConfined(); FdList fds = new FdList()) {
            MemorySegment buf = arena.allocate(8);
            a.receiveTimeout(Duration.ofMillis(50));
            assertThatThrownBy(() -> a.receive(buf, fds))
                    .isInstanceOfSatisfying(LinuxException.class,
                            e -> assertThat(e.errnoValue()).isEqualTo(Errno.EAGAIN.value()));
            b.send(null, arena.allocateFrom("hi"));
            assertThat(a.receive(buf, fds)).isEqualTo(3);
            a.receiveTimeout(Duration.ZERO);
            b.send(null, arena.allocateFrom("x"));
            assertThat(a.receive(buf, fds)).isEqualTo(2);
            assertThatThrownBy(() -> a.receiveTimeout(Duration.ofMillis(-1))).isInstanceOf(IllegalArgumentException.class);
        }
    }
}
