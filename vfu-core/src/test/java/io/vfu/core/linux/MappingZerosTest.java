package io.vfu.core.linux;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

class MappingZerosTest {
    @Test
    void readsAsZeroIsReadOnlyAndEndsWithClose() throws Exception {
        long length = 64L << 20;
        Mapping zeros = Mapping.zeros(length);
        MemorySegment s = zeros.segment();
        assertThat(s.byteSize()).isEqualTo(length);
        assertThat(s.isReadOnly()).isTrue();
        for (long at = 0; at < length; at += 1 << 20) {
            assertThat(s.get(JAVA_LONG, at)).isZero();
        }
        assertThat(s.get(JAVA_BYTE, length - 1)).isZero();
        assertThatThrownBy(() -> s.set(JAVA_BYTE, 0, (byte) 1)).isInstanceOf(IllegalArgumentException.class);
        zeros.close();
        assertThat(zeros.isClosed()).isTrue();
        assertThatThrownBy(() -> s.get(JAVA_BYTE, 0)).isInstanceOf(IllegalStateException.class);
        zeros.close(); // idempotent
    }

    @Test
    void theKernelSendsItsBytes() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Mapping zeros = Mapping.zeros(8192);
                Arena arena = Arena.ofConfined(); FdList fds = new FdList()) {
            MemorySegment dst = arena.allocate(8192);
            dst.fill((byte) 0x5a);
            a.send(null, zeros.segment());
            b.receiveFully(dst, fds);
            assertThat(dst.toArray(JAVA_BYTE)).isEqualTo(new byte[8192]);
        }
    }

    @Test
    void lengthMustBePositive() {
        assertThatThrownBy(() -> Mapping.zeros(0)).isInstanceOf(IllegalArgumentException.class);
    }
}
