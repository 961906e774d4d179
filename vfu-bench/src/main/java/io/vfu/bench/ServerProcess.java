package io.vfu.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The {@link BenchServer} child JVM (same java, same class path), optionally under {@code taskset}. Always
 * reaped: {@link #close} ends it, a shutdown hook covers an abrupt exit of this JVM, and the child itself
 * exits when its standard input closes.
 */
final class ServerProcess implements AutoCloseable {
    private final Process process;
    private final Path dir;
    private final Path log;
    private final Thread hook;

    private ServerProcess(Process process, Path dir, Path log) {
        this.process = process;
        this.dir = dir;
        this.log = log;
        this.hook = new Thread(process::destroyForcibly, "vfu-bench-reaper");
        Runtime.getRuntime().addShutdownHook(hook);
    }

    static ServerProcess start(long maxTransfer, boolean pinned) throws IOException {
        Path dir = Files.createTempDirectory("vfu-bench");
        Path log = dir.resolve("server.log");
        List<String> cmd = new ArrayList<>();
        if (pinned) {
            cmd.addAll(List.of("taskset", "-c", "0"));
        }
        String java = ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(List.of(java, "--enable-native-access=ALL-UNNAMED"));
        String extra = System.getenv("VFU_BENCH_SERVER_JAVA_OPTS"); // e.g. -Xlog:gc or a JFR recording
        if (extra != null && !extra.isBlank()) {
            cmd.addAll(List.of(extra.trim().split("\\s+")));
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"),
                BenchServer.class.getName(), dir.toString(), Long.toString(maxTransfer)));
        Process p = new ProcessBuilder(cmd).redirectError(log.toFile()).start();
        ServerProcess server = new ServerProcess(p, dir, log);
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            String line = out.readLine();
            if (!BenchServer.READY.equals(line)) {
                throw new IOException("benchmark server did not start: " + server.logText());
            }
            return server;
        } catch (IOException | RuntimeException e) {
            server.close();
            throw e;
        }
    }

    Path deviceSocket() {
        return dir.resolve(BenchServer.DEVICE_SOCKET);
    }

    Path rawSocket() {
        return dir.resolve(BenchServer.RAW_SOCKET);
    }

    private String logText() {
        try {
            return Files.readString(log).strip();
        } catch (IOException e) {
            return "(no log)";
        }
    }

    @Override
    public void close() {
        try {
            process.getOutputStream().close(); // the child exits on EOF
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        } catch (IOException e) {
            process.destroyForcibly();
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // shutting down already: the hook runs
            }
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            } catch (IOException e) {
                // temp files: best effort
            }
        }
    }
}
