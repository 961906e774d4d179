package io.vfu.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.testing.ChildJvm;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link SampleWalkthrough} ({@code vfu sample-client}) end to end: the walk-through against the Java sample server
 * ({@code vfu sample-server}), source and destination each in its own JVM, plus option handling and failure paths.
 * Runs against libvfio-user's C sample server are in {@link SampleWalkthroughLvuTest} (only with
 * {@code VFU_LVU_SAMPLES} set).
 */
class SampleWalkthroughTest {
    /** Deadline for the destination's interrupt: leaves a fresh JVM several seconds to start. */
    static final int DEADLINE = 6;

    @TempDir
    Path dir;

    /** A walk-through run's outcome. */
    record Outcome(String out, String destination, Throwable failure) {
    }

    static Outcome walk(SampleWalkthrough.Options options) {
        StringWriter out = new StringWriter();
        StringWriter dest = new StringWriter();
        Throwable failure = null;
        try {
            new SampleWalkthrough(options, new PrintWriter(out, true), new PrintWriter(dest, true)).run();
        } catch (Throwable t) {
            failure = t;
        }
        return new Outcome(out.toString(), dest.toString(), failure);
    }

    /**
     * Waits (bounded) for a socket file to appear, failing early if {@code process} exits. Woken by a
     * file-system watch on the directory (inotify), not by polling; the process check runs at least every
     * 200 ms so that a dead server fails the test at once.
     */
    static void awaitSocket(Path socket, Process process, Duration timeout) throws Exception {
        long end = System.nanoTime() + timeout.toNanos();
        try (java.nio.file.WatchService watch = socket.getFileSystem().newWatchService()) {
            socket.getParent().register(watch, java.nio.file.StandardWatchEventKinds.ENTRY_CREATE);
            while (!Files.exists(socket)) {
                assertThat(process.isAlive()).as("server process exited before creating " + socket).isTrue();
                long left = end - System.nanoTime();
                assertThat(left).as("no socket " + socket + " after " + timeout).isPositive();
                java.nio.file.WatchKey key = watch.poll(Math.min(left, 200_000_000L), java.util.concurrent.TimeUnit.NANOSECONDS);
                if (key != null) {
                    key.pollEvents();
                    key.reset();
                }
            }
        }
    }

    /** The lines every successful walk-through prints, in order. */
    static void assertComplete(Outcome o) {
        assertThat(o.out()).containsSubsequence(
                "client: REGION_READ of region 0xdeadbeef failed with EINVAL, as expected",
                "client: devinfo: flags 0x3, num_regions 9, num_irqs 5",
                "client: config space: vendor dead device beef subsystem cafe:babe",
                "client: INTx triggered!",
                "client: DMA pattern ABCD found in slot 0 (iova 0x0",
                "client: dirty bitmap 0x1000-0x1fff: server 0x1",
                "client: pre-copy: 12 reads, 12288 bytes",
                "client: stop-and-copy: 14 reads, 12296 bytes",
                "matches the guest's last write",
                "client: INTx triggered!",
                "client: DMA pattern ABCD found in slot 0 (iova 0x8000",
                "client: destination server exited with status 0",
                "client: done: every check passed");
    }

    // ------------------------------------------------------------------------------------------------
    // Java sample server, in separate JVMs

    @Test
    void java_source_to_java_destination_in_separate_jvms() throws Exception {
        Path sock = dir.resolve("sample.sock");
        try (ChildJvm source = ChildJvm.start(VfuCommand.class, "sample-server", "-v", sock.toString())) {
            awaitSocket(sock, source.process(), Duration.ofSeconds(60));
            Outcome o = walk(SampleWalkthrough.Options.of(sock, SampleWalkthrough.defaultDestinationCommand())
                    .withDeadlineSeconds(DEADLINE));
            assertThat(o.failure()).as(o.out() + o.destination() + source.describe()).isNull();
            assertComplete(o);
            // the sample server is one-shot: it leaves once the client closed the source connection
            assertThat(source.waitFor(Duration.ofSeconds(30))).as(source.describe()).isZero();
        }
        assertThat(Files.exists(sock)).isFalse();
        assertThat(Files.exists(dir.resolve("sample.sock_migrated"))).isFalse();
    }

    @Test
    void destination_that_exits_at_once_fails_with_one_line_and_the_source_is_left_alone() throws Exception {
        Path sock = dir.resolve("early.sock");
        try (ChildJvm source = ChildJvm.start(VfuCommand.class, "sample-server", sock.toString())) {
            awaitSocket(sock, source.process(), Duration.ofSeconds(60));
            Path script = executable("exit3.sh", "#!/bin/sh\necho \"refusing $*\"\nexit 3\n");
            Outcome o = walk(SampleWalkthrough.Options.of(sock, List.of(script.toString(), "{}")));
            assertThat(o.failure()).isInstanceOf(SampleWalkthrough.Failure.class)
                    .hasMessage("the destination server exited with status 3 before accepting a connection; its last "
                            + "output: refusing " + sock + "_migrated");
            assertThat(o.out()).contains("client: device state: stop");
            assertThat(source.waitFor(Duration.ofSeconds(30))).as(source.describe()).isZero();
        }
    }

    @Test
    void destination_that_never_listens_is_killed_after_the_start_timeout() throws Exception {
        Path sock = dir.resolve("hang.sock");
        Path pidFile = dir.resolve("hang.pid");
        try (ChildJvm source = ChildJvm.start(VfuCommand.class, "sample-server", sock.toString())) {
            awaitSocket(sock, source.process(), Duration.ofSeconds(60));
            Path script = executable("hang.sh", "#!/bin/sh\necho $$ > " + pidFile + "\nexec sleep 600\n");
            SampleWalkthrough.Options defaults = SampleWalkthrough.Options.of(sock, List.of(script.toString()));
            Outcome o = walk(new SampleWalkthrough.Options(sock, defaults.destinationCommand(), 0, 3,
                    Duration.ofSeconds(5), Duration.ofSeconds(2), Duration.ofSeconds(5)));
            assertThat(o.failure()).isInstanceOf(SampleWalkthrough.Failure.class)
                    .hasMessageStartingWith("the destination server did not listen on " + sock + "_migrated within 2 s");
            long pid = Long.parseLong(Files.readString(pidFile).trim());
            assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)).as("destination reaped").isFalse();
            assertThat(source.waitFor(Duration.ofSeconds(30))).as(source.describe()).isZero();
        }
    }

    private Path executable(String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, text);
        assertThat(p.toFile().setExecutable(true)).isTrue();
        return p;
    }

    // ------------------------------------------------------------------------------------------------
    // No server needed

    @Test
    void missing_source_socket_is_exit_1_with_one_line() {
        Path missing = dir.resolve("none.sock");
        VfuCommandTest.Run r = VfuCommandTest.vfu("sample-client", missing.toString());
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).isEqualTo("vfu: cannot connect to " + missing + ": no such file\n");
    }

    @Test
    void usage_errors_are_exit_2() {
        for (String args : List.of("sample-client", "sample-client s --bar1-size 1000", "sample-client s --bar1-size x",
                "sample-client s --bar1-size 0", "sample-client s --deadline 1", "sample-client s --timeout 0")) {
            VfuCommandTest.Run r = VfuCommandTest.vfu(args.split(" "));
            assertThat(r.exit()).as(args + ": " + r.err()).isEqualTo(2);
        }
        assertThat(VfuCommandTest.vfu("sample-client", "--help").out()).contains("--destination-command", "--bar1-size");
    }

    @Test
    void command_parsing_and_options() {
        assertThat(SampleWalkthrough.parseCommand("  /x/server  -v {} ")).containsExactly("/x/server", "-v", "{}");
        assertThatThrownBy(() -> SampleWalkthrough.parseCommand(" ")).isInstanceOf(IllegalArgumentException.class);
        List<String> d = SampleWalkthrough.defaultDestinationCommand();
        assertThat(d).endsWith(VfuCommand.class.getName(), "sample-server", "--bar1-size", "{bar1}", "-v", "{}");
        assertThat(Path.of(d.get(0))).isExecutable();
        SampleWalkthrough.Options o = SampleWalkthrough.Options.of(Path.of("/run/a/dev.sock"), d);
        assertThat(o.destinationSocket()).isEqualTo(Path.of("/run/a/dev.sock_migrated"));
        assertThat(o.bar1Size()).isZero();
        assertThat(o.deadlineSeconds()).isEqualTo(3);
        assertThatThrownBy(() -> o.withDeadlineSeconds(1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> o.withBar1Size(1000)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> SampleWalkthrough.Options.of(o.socket(), List.of()))
                .isInstanceOf(IllegalArgumentException.class);
    }

    /** Kills a process tree quietly (test clean-up of processes this test started). */
    static void destroy(Process p) throws InterruptedException {
        if (p.isAlive()) {
            p.destroy();
            if (!p.waitFor(5, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
        p.waitFor();
    }
}
