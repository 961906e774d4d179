package io.vfu.core.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.testing.NoFdLeaks;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(NoFdLeaks.class)
class EventFdTest {
    @Test
    void signalsAddUpAndReadResets() throws Exception {
        try (EventFd e = EventFd.create(0, false, true)) {
            assertThat(e.read()).as("non-blocking, nothing signalled").isZero();
            e.signal();
            e.signal(41);
            assertThat(e.await(0)).isTrue();
            assertThat(e.read()).isEqualTo(42);
            assertThat(e.read()).isZero();
            assertThat(e.await(5)).isFalse();
        }
    }

    @Test
    void semaphoreModeCountsDown() throws Exception {
        try (EventFd e = EventFd.create(2, true, true)) {
            assertThat(e.read()).isEqualTo(1);
            assertThat(e.read()).isEqualTo(1);
            assertThat(e.read()).isZero();
        }
    }

    @Test
    void blockingReadWaitsForAnotherThread() throws Exception {
        try (EventFd e = EventFd.create()) {
            CompletableFuture<Long> reader = new CompletableFuture<>();
            Thread.ofPlatform().start(() -> {
                try {
                    reader.complete(e.read());
                } catch (Throwable t) {
                    reader.completeExceptionally(t);
                }
            });
            e.signal(7);
            assertThat(reader.get(30, TimeUnit.SECONDS)).isEqualTo(7);
        }
    }

    @Test
    void overflowOfNonBlockingCounterIsEagain() throws Exception {
        try (EventFd e = EventFd.create(0, false, true)) {
            e.signal(0xFFFF_FFFF_FFFF_FFFEL);
            assertThatThrownBy(() -> e.signal(1))
                    .isInstanceOfSatisfying(LinuxException.class, x -> assertThat(x.errno()).isEqualTo(Errno.EAGAIN));
            assertThat(e.read()).isEqualTo(0xFFFF_FFFF_FFFF_FFFEL);
            assertThatThrownBy(() -> e.signal(-1)).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void adoptAndCloseIdempotently() throws Exception {
        try (EventFd e = EventFd.create()) {
            EventFd other = EventFd.adopt(Fds.dup(e.fd()));
            other.signal(5);
            assertThat(e.read()).isEqualTo(5);
            other.close();
            other.close();
            assertThatThrownBy(other::signal)
                    .isInstanceOfSatisfying(LinuxException.class, x -> assertThat(x.errno()).isEqualTo(Errno.EBADF));
        }
        assertThatThrownBy(() -> EventFd.create(-1, false, false)).isInstanceOf(IllegalArgumentException.class);
    }
}
