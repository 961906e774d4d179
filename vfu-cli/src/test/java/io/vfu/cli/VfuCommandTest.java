package io.vfu.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vfu.core.testing.ChildJvm;
import io.vfu.devices.DemoDevice;
import io.vfu.server.VfioUserServer;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class VfuCommandTest {
    @TempDir
    Path dir;

    /** One run of the command with captured output. */
    record Run(int exit, String out, String err) {
    }

    static Run vfu(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        var cl = VfuCommand.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int exit = cl.execute(args);
        return new Run(exit, out.toString(), err.toString());
    }

    private VfioUserServer serveDemo() throws Exception {
        return VfioUserServer.start(new DemoDevice().build(), dir.resolve("demo.sock"));
    }

    @Test
    void info_text_matches_golden_file() throws Exception {
        String expected;
        try (InputStream in = getClass().getResourceAsStream("info-demo.txt")) {
            expected = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        try (VfioUserServer server = serveDemo()) {
            Run r = vfu("info", server.socketPath().toString());
            assertThat(r.err()).isEmpty();
            assertThat(r.exit()).isZero();
            assertThat(r.out()).isEqualTo(expected);
        }
    }

    @Test
    void info_json_has_the_key_fields() throws Exception {
        try (VfioUserServer server = serveDemo()) {
            Run r = vfu("info", "--json", server.socketPath().toString());
            assertThat(r.exit()).as(r.err()).isZero();
            JsonNode root = new ObjectMapper().readTree(r.out());
            JsonNode pci = root.get("pci");
            assertThat(pci.get("vendor_id").asInt()).isEqualTo(0x5646);
            assertThat(pci.get("device_id").asInt()).isEqualTo(0x0001);
            assertThat(pci.get("class_code").asInt()).isEqualTo(0xff0000);
            assertThat(pci.get("config_size").asInt()).isEqualTo(4096);
            assertThat(pci.get("bars")).hasSize(3);
            JsonNode bar2 = pci.get("bars").get(1);
            assertThat(bar2.get("index").asInt()).isEqualTo(2);
            assertThat(bar2.get("type").asText()).isEqualTo("mem64");
            assertThat(bar2.get("size").asLong()).isEqualTo(1 << 20);
            assertThat(pci.get("capabilities").findValuesAsText("name"))
                    .containsExactly("Power Management", "MSI-X", "PCI Express");
            JsonNode msix = pci.get("capabilities").get(1);
            assertThat(msix.get("table_size").asInt()).isEqualTo(8);
            assertThat(msix.get("pba_bir").asInt()).isEqualTo(4);
            assertThat(msix.get("pba_offset").asInt()).isEqualTo(0x800);
            assertThat(pci.get("extended_capabilities").get(0).get("serial").asText())
                    .isEqualTo("01-23-45-67-89-ab-cd-ef");
            assertThat(root.get("regions")).hasSize(9);
            assertThat(root.get("regions").get(2).get("mmap").asBoolean()).isTrue();
            assertThat(root.get("regions").get(2).get("sparse_mmap").get(0).get("size").asLong()).isEqualTo(1 << 20);
            assertThat(root.get("irqs").get(2).get("count").asInt()).isEqualTo(8);
            assertThat(root.get("migration").get("features").toString()).isEqualTo("[\"STOP_COPY\",\"PRE_COPY\"]");
            assertThat(root.get("migration").get("state").asText()).isEqualTo("RUNNING");
            assertThat(root.get("migration").get("dma_logging").asBoolean()).isTrue();
            assertThat(root.get("server").get("max_data_xfer_size").asLong()).isEqualTo(1 << 20);
            assertThat(root.get("server").get("twin_socket").asBoolean()).isTrue();
        }
    }

    @Test
    void state_get_and_set() throws Exception {
        try (VfioUserServer server = serveDemo()) {
            String sock = server.socketPath().toString();
            assertThat(vfu("state", sock)).isEqualTo(new Run(0, "RUNNING\n", ""));
            assertThat(vfu("state", sock, "stop_copy"))
                    .isEqualTo(new Run(0, "RUNNING -> STOP -> STOP_COPY\nstate: STOP_COPY\n", ""));
            assertThat(vfu("state", sock, "Pre-Copy")).isEqualTo(new Run(0, "RUNNING -> PRE_COPY\nstate: PRE_COPY\n", ""));
            assertThat(vfu("state", sock, "RUNNING")).isEqualTo(new Run(0, "RUNNING (no change)\nstate: RUNNING\n", ""));
            assertThat(vfu("state", sock, "stop")).isEqualTo(new Run(0, "RUNNING -> STOP\nstate: STOP\n", ""));
        }
    }

    @Test
    void missing_socket_is_exit_1_with_one_line() {
        Path missing = dir.resolve("nothing.sock");
        Run r = vfu("info", missing.toString());
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.out()).isEmpty();
        assertThat(r.err()).isEqualTo("vfu: cannot connect to " + missing + ": no such file\n");

        Run verbose = vfu("state", "--verbose", missing.toString());
        assertThat(verbose.exit()).isEqualTo(1);
        assertThat(verbose.err()).startsWith("vfu: cannot connect to " + missing + ": no such file\n")
                .contains("\tat io.vfu.cli.");
    }

    @Test
    void socket_that_is_not_listening_is_exit_1() throws Exception {
        Path file = Files.createFile(dir.resolve("plain-file"));
        Run r = vfu("info", file.toString());
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).startsWith("vfu: cannot connect to " + file + ": ").endsWith("\n");
        assertThat(r.err().lines()).hasSize(1);
    }

    @Test
    void impossible_state_change_is_exit_1() throws Exception {
        try (VfioUserServer server = serveDemo()) {
            Run r = vfu("state", server.socketPath().toString(), "running_p2p");
            assertThat(r.exit()).isEqualTo(1);
            assertThat(r.err().lines()).hasSize(1);
            assertThat(r.err()).startsWith("vfu: EINVAL: ");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "bogus", "info", "info a b", "state", "state s not-a-state", "state s error",
            "serve", "serve demo", "serve nosuch --socket x", "serve demo --socket x --socket-mode 9",
            "info --no-such-option s"})
    void usage_errors_are_exit_2(String args) {
        String[] argv = args.isEmpty() ? new String[] {"--no-such-option"} : args.split(" ");
        Run r = vfu(argv);
        assertThat(r.exit()).as(r.err()).isEqualTo(2);
        assertThat(r.err()).isNotEmpty();
    }

    @ParameterizedTest
    @ValueSource(strings = {"--help", "info --help", "state --help", "serve --help", "help", "help info", "--version"})
    void help_everywhere(String args) {
        Run r = vfu(args.split(" "));
        assertThat(r.exit()).isZero();
        assertThat(r.out()).isNotEmpty();
    }

    @Test
    void serve_list() {
        Run r = vfu("serve", "--list");
        assertThat(r.exit()).isZero();
        assertThat(r.out()).startsWith("demo ");
    }

    @Test
    void serve_in_a_child_jvm_until_sigterm() throws Exception {
        Path sock = dir.resolve("child.sock");
        try (ChildJvm child = ChildJvm.start(VfuCommand.class, "serve", "demo", "--socket", sock.toString())) {
            child.awaitLine(l -> l.equals("listening on " + sock), Duration.ofSeconds(60));
            Run r = vfu("info", sock.toString());
            assertThat(r.exit()).as(r.err()).isZero();
            assertThat(r.out()).startsWith("5646:0001 ");
            // a second client after the first left
            assertThat(vfu("state", sock.toString()).out()).isEqualTo("RUNNING\n");
            child.process().destroy(); // SIGTERM: the shutdown hook closes the server
            child.waitFor(Duration.ofSeconds(30));
            assertThat(Files.exists(sock)).as(child.describe()).isFalse();
        }
    }

    @Test
    void serve_one_shot_exits_when_the_client_leaves() throws Exception {
        Path sock = dir.resolve("once.sock");
        try (ChildJvm child = ChildJvm.start(List.of(), VfuCommand.class,
                List.of("serve", "demo", "--socket", sock.toString(), "--one-shot", "--socket-mode", "0660"))) {
            child.awaitLine(l -> l.startsWith("listening on "), Duration.ofSeconds(60));
            assertThat(Files.getPosixFilePermissions(sock).toString()).isEqualTo("[OWNER_READ, OWNER_WRITE, GROUP_READ, GROUP_WRITE]");
            assertThat(vfu("state", sock.toString()).exit()).isZero();
            assertThat(child.waitFor(Duration.ofSeconds(30))).as(child.describe()).isZero();
            assertThat(Files.exists(sock)).isFalse();
        }
    }
}
