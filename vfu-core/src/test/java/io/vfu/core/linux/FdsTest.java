package io.vfu.core.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.testing.NoFdLeaks;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(NoFdLeaks.class)
class FdsTest {
    @Test
    void dupIsCloexecAndCounted() throws Exception {
        try (EventFd event = EventFd.create()) {
            int before = Fds.openFdCount();
            int copy = Fds.dup(event.fd());
            assertThat(copy).isNotEqualTo(event.fd());
            assertThat(Fds.openFdCount()).isEqualTo(before + 1);
            assertThat(Files.readString(Path.of("/proc/self/fdinfo/" + copy)))
                    .as("O_CLOEXEC (02000000) in flags").containsPattern("flags:\\s*0*2[0-7]{6}\\b");
            Fds.close(copy);
            assertThat(Fds.openFdCount()).isEqualTo(before);
        }
    }

    @Test
    void closingABadFdThrowsEbadf() throws Exception {
        try (EventFd event = EventFd.create()) {
            int copy = Fds.dup(event.fd());
            Fds.close(copy);
            assertThatThrownBy(() -> Fds.close(copy))
                    .isInstanceOfSatisfying(LinuxException.class, e -> {
                        assertThat(e.errno()).isEqualTo(Errno.EBADF);
                        assertThat(e.call()).isEqualTo("close");
                    });
            Fds.closeQuietly(copy);
            Fds.closeQuietly(-1);
            assertThatThrownBy(() -> Fds.dup(copy))
                    .isInstanceOfSatisfying(LinuxException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EBADF));
        }
    }

    @Test
    void pageSizeIsAPowerOfTwo() {
        long page = Fds.pageSize();
        assertThat(page).isGreaterThanOrEqualTo(4096);
        assertThat(Long.bitCount(page)).isEqualTo(1);
    }
}
