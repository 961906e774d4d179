package io.vfu.core.transport;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

class SpareBufferTest {
    @Test
    void keepsOneBufferAndHandsOutAnotherWhileItIsTaken() {
        SpareBuffer spare = new SpareBuffer(4096);
        MemorySegment first = spare.take(100);
        assertThat(first.byteSize()).as("at least the minimum").isEqualTo(4096);
        assertThat(first.isNative()).isTrue();
        MemorySegment meanwhile = spare.take(100);
        assertThat(meanwhile).as("taken: another one").isNotSameAs(first);
        spare.giveBack(first);
        assertThat(spare.take(4096)).as("kept and large enough: the same").isSameAs(first);
        spare.giveBack(first);
        MemorySegment larger = spare.take(8192);
        assertThat(larger).isNotSameAs(first);
        assertThat(larger.byteSize()).isEqualTo(8192);
        spare.giveBack(larger);
        assertThat(spare.take(10)).as("the larger one is kept now").isSameAs(larger);
        spare.giveBack(larger);
        spare.clear();
        assertThat(spare.take(10)).as("no longer kept").isNotSameAs(larger);
    }
}
