package io.vfu.core.linux;

import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.testing.NoFdLeaks;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(NoFdLeaks.class)
class MemFdTest {
    @Test
    void createSizeTruncate() throws Exception {
        try (MemFd mem = MemFd.create("vfu-test", 8192)) {
            assertThat(mem.size()).isEqualTo(8192);
            mem.truncate(3 * 4096);
            assertThat(mem.size()).isEqualTo(3 * 4096);
            assertThat(Files.readSymbolicLink(Path.of("/proc/self/fd/" + mem.fd())).toString())
                    .startsWith("/memfd:vfu-test");
        }
    }

    @Test
    void twoMappingsShareMemory() throws Exception {
        long page = Fds.pageSize();
        try (MemFd mem = MemFd.create("shared", 2 * page);
                Mapping writer = mem.map(0, 2 * page, true);
                Mapping reader = mem.map(page, page, false)) {
            writer.segment().set(JAVA_LONG, page + 8, 0x1122334455667788L);
            assertThat(reader.segment().get(JAVA_LONG, 8)).isEqualTo(0x1122334455667788L);
            assertThat(reader.segment().isReadOnly()).isTrue();
            assertThat(reader.length()).isEqualTo(page);
            assertThatThrownBy(() -> reader.segment().set(JAVA_LONG, 0, 1L))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("read-only");
        }
    }

    @Test
    void mappingIsInaccessibleAfterClose() throws Exception {
        try (MemFd mem = MemFd.create("closing", 4096)) {
            Mapping mapping = mem.map(0, 4096, true);
            MemorySegment seg = mapping.segment();
            seg.set(JAVA_LONG, 0, 1L);
            mapping.close();
            assertThat(mapping.isClosed()).isTrue();
            mapping.close(); // idempotent
            assertThatThrownBy(() -> seg.get(JAVA_LONG, 0)).isInstanceOf(IllegalStateException.class);
            // the data stays in the file
            try (Mapping again = Mapping.map(mem.fd(), 0, 4096, true, false)) {
                assertThat(again.segment().get(JAVA_LONG, 0)).isEqualTo(1L);
            }
        }
    }

    @Test
    void mappingSurvivesClosingTheFd() throws Exception {
        Mapping mapping;
        try (MemFd mem = MemFd.create("survivor", 4096)) {
            mapping = mem.map(0, 4096, true);
        }
        try (mapping) {
            mapping.segment().set(JAVA_LONG, 16, 99L);
            assertThat(mapping.segment().get(JAVA_LONG, 16)).isEqualTo(99L);
        }
    }

    @Test
    void badRangesAreRejected() throws Exception {
        long page = Fds.pageSize();
        try (MemFd mem = MemFd.create("bad", page)) {
            assertThatThrownBy(() -> mem.map(0, page + 1, true)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> mem.map(page, page, true)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> mem.map(0, 0, true)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> Mapping.map(mem.fd(), 100, 100, true, true))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("page size");
            assertThatThrownBy(() -> Mapping.map(mem.fd(), 0, page, false, false))
                    .isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> MemFd.create("neg", -1)).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void mmapOfABadFdIsEbadf() throws Exception {
        int fd;
        try (EventFd e = EventFd.create()) {
            fd = Fds.dup(e.fd());
        }
        Fds.close(fd);
        assertThatThrownBy(() -> Mapping.map(fd, 0, 4096, true, true))
                .isInstanceOfSatisfying(LinuxException.class, e -> {
                    assertThat(e.errno()).isEqualTo(Errno.EBADF);
                    assertThat(e.call()).isEqualTo("mmap");
                });
    }
}
