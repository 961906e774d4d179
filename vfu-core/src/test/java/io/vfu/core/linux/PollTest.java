package io.vfu.core.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.testing.NoFdLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(NoFdLeaks.class)
class PollTest {
    @Test
    void singleFd() throws Exception {
        try (EventFd event = EventFd.create()) {
            assertThat(Poll.poll(event.fd(), Poll.POLLIN, 0)).isZero();
            assertThat(Poll.poll(event.fd(), Poll.POLLIN, 10)).isZero();
            assertThat(Poll.poll(event.fd(), Poll.POLLOUT, -1)).isEqualTo(Poll.POLLOUT);
            event.signal();
            assertThat(Poll.poll(event.fd(), Poll.POLLIN, -1)).isEqualTo(Poll.POLLIN);
        }
    }

    @Test
    void manyFds() throws Exception {
        try (EventFd a = EventFd.create(); EventFd b = EventFd.create()) {
            int[] fds = {a.fd(), -1, b.fd()};
            short[] events = {Poll.POLLIN, Poll.POLLIN, Poll.POLLIN};
            short[] revents = new short[3];
            assertThat(Poll.poll(fds, events, revents, 0)).isZero();
            b.signal();
            assertThat(Poll.poll(fds, events, revents, 1000)).isEqualTo(1);
            assertThat(revents).containsExactly(0, 0, Poll.POLLIN);
            assertThatThrownBy(() -> Poll.poll(fds, new short[1], revents, 0))
                    .isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void closedFdReportsPollnval() throws Exception {
        int fd;
        try (EventFd event = EventFd.create()) {
            fd = Fds.dup(event.fd());
        }
        Fds.close(fd);
        assertThat(Poll.poll(fd, Poll.POLLIN, 0)).isEqualTo(Poll.POLLNVAL);
    }
}
