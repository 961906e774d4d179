package io.vfu.cli;

import static io.vfu.cli.SampleWalkthroughTest.DEADLINE;
import static io.vfu.cli.SampleWalkthroughTest.assertComplete;
import static io.vfu.cli.SampleWalkthroughTest.awaitSocket;
import static io.vfu.cli.SampleWalkthroughTest.walk;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.cli.SampleWalkthroughTest.Outcome;
import io.vfu.core.testing.ChildJvm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import org.junit.jupiter.api.io.TempDir;

/**
 * The walk-through against libvfio-user's C sample server (commit 7e7a0a6, BAR1 0x3000), as source, destination or
 * both. Runs only when {@code VFU_LVU_SAMPLES} names the directory holding the built {@code server} binary (e.g.
 * {@code VFU_LVU_SAMPLES=/tmp/lvu/build/samples}); no C binary is part of this repository.
 */
@EnabledIfEnvironmentVariable(named = "VFU_LVU_SAMPLES", matches = ".+")
class SampleWalkthroughLvuTest {
    @TempDir
    Path dir;

    private static Path cServer() {
        Path server = Path.of(System.getenv("VFU_LVU_SAMPLES"), "server");
        assertThat(server).as("VFU_LVU_SAMPLES must name the directory of libvfio-user's sample server").isExecutable();
        return server;
    }

    private static List<String> cDestination() {
        return List.of(cServer().toString(), "-v", SampleWalkthrough.SOCKET_PLACEHOLDER);
    }

    /** Runs the walk-through against a C source server; checks it passed and the source exited 0. */
    private Outcome againstCSource(List<String> destination) throws Exception {
        Path sock = dir.resolve("c.sock");
        Path log = dir.resolve("c-source.log");
        Process source = new ProcessBuilder(cServer().toString(), "-v", sock.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            awaitSocket(sock, source, Duration.ofSeconds(30));
            Outcome o = walk(SampleWalkthrough.Options.of(sock, destination).withBar1Size(0x3000)
                    .withDeadlineSeconds(DEADLINE));
            assertThat(o.failure()).as(o.out() + o.destination()).isNull();
            assertComplete(o);
            assertThat(source.waitFor(30, TimeUnit.SECONDS)).as("C source server exits").isTrue();
            assertThat(source.exitValue()).as(Files.readString(log)).isZero();
            return o;
        } finally {
            SampleWalkthroughTest.destroy(source);
        }
    }

    @Test
    void c_source_to_c_destination() throws Exception {
        Outcome o = againstCSource(cDestination());
        assertThat(o.destination()).contains("destination: doing dma io");
    }

    @Test
    void c_source_to_java_destination() throws Exception {
        againstCSource(SampleWalkthrough.defaultDestinationCommand());
    }

    @Test
    void java_source_to_c_destination() throws Exception {
        Path sock = dir.resolve("java.sock");
        try (ChildJvm source = ChildJvm.start(VfuCommand.class, "sample-server", "-v", sock.toString())) {
            awaitSocket(sock, source.process(), Duration.ofSeconds(60));
            Outcome o = walk(SampleWalkthrough.Options.of(sock, cDestination()).withDeadlineSeconds(DEADLINE));
            assertThat(o.failure()).as(o.out() + o.destination() + source.describe()).isNull();
            assertComplete(o);
            assertThat(source.waitFor(Duration.ofSeconds(30))).as(source.describe()).isZero();
        }
    }
}
