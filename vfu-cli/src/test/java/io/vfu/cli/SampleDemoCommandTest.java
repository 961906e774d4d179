package io.vfu.cli;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The README's main job, {@code vfu sample-demo}, end to end (the destination is a separate JVM). */
class SampleDemoCommandTest {
    @Test
    void theMainJobPasses() {
        VfuCommandTest.Run r = VfuCommandTest.vfu("sample-demo");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).containsSubsequence(
                "source: serving libvfio-user's sample device",
                "client: INTx triggered!",
                "client: stop-and-copy",
                "matches the guest's last write",
                "client: INTx triggered!",
                "client: destination server exited with status 0",
                "sample demo: PASS");
        assertThat(r.out()).contains("source: doing dma io");
    }
}
