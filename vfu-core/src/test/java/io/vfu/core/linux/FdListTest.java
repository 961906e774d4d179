package io.vfu.core.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.testing.NoFdLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(NoFdLeaks.class)
class FdListTest {
    /** Three fresh descriptors (dups of an eventfd) added to {@code list}. */
    private static void addThree(FdList list, EventFd event) throws LinuxException {
        for (int i = 0; i < 3; i++) {
            list.add(Fds.dup(event.fd()));
        }
    }

    @Test
    void closeClosesUntakenFdsAndTheListIsReusable() throws Exception {
        try (EventFd event = EventFd.create()) {
            int before = Fds.openFdCount();
            FdList list = new FdList();
            addThree(list, event);
            assertThat(list.size()).isEqualTo(3);
            assertThat(Fds.openFdCount()).isEqualTo(before + 3);
            int kept = list.take(1);
            assertThat(list.isTaken(1)).isTrue();
            assertThat(list.get(1)).isEqualTo(kept);
            list.close();
            assertThat(list.size()).isZero();
            assertThat(Fds.openFdCount()).isEqualTo(before + 1);
            Fds.close(kept);

            addThree(list, event);
            list.truncated(true);
            assertThat(list.truncated()).isTrue();
            list.close();
            assertThat(list.truncated()).isFalse();
            assertThat(Fds.openFdCount()).isEqualTo(before);
        }
    }

    @Test
    void takeAllHandsOnTheRemainingFds() throws Exception {
        try (EventFd event = EventFd.create(); FdList list = new FdList()) {
            addThree(list, event);
            int first = list.take(0);
            int[] rest = list.takeAll();
            assertThat(rest).hasSize(2).containsExactly(list.get(1), list.get(2));
            assertThat(list.takeAll()).isEmpty();
            list.clear();
            assertThat(list.isEmpty()).isTrue();
            Fds.close(first);
            for (int fd : rest) {
                Fds.close(fd);
            }
        }
    }

    @Test
    void misuseIsRejected() throws Exception {
        try (EventFd event = EventFd.create(); FdList list = new FdList()) {
            list.add(Fds.dup(event.fd()));
            int fd = list.take(0);
            assertThatThrownBy(() -> list.take(0)).isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(() -> list.get(1)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> list.add(-1)).isInstanceOf(IllegalArgumentException.class);
            Fds.close(fd);
        }
    }

    @Test
    void growsBeyondItsInitialCapacity() throws Exception {
        try (EventFd event = EventFd.create(); FdList list = new FdList()) {
            for (int i = 0; i < 40; i++) {
                list.add(Fds.dup(event.fd()));
            }
            assertThat(list.size()).isEqualTo(40);
            assertThat(list.toString()).startsWith("FdList[");
        }
    }
}
