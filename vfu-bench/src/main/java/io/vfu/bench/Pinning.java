package io.vfu.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * Pins this JVM (every thread, and threads it creates later) to one CPU with {@code taskset}, and restores
 * the previous affinity on close. Syscall-bound round trips differ by a factor of ~4 between same-CPU and
 * cross-CPU wake-ups, so figures are only comparable when client and server share one CPU.
 */
final class Pinning implements AutoCloseable {
    private final int cpu;
    private final String previousMask;
    private final String failure;

    private Pinning(int cpu, String previousMask, String failure) {
        this.cpu = cpu;
        this.previousMask = previousMask;
        this.failure = failure;
    }

    static Pinning none() {
        return new Pinning(-1, null, "pinning disabled");
    }

    static Pinning pinSelf(int cpu) {
        long pid = ProcessHandle.current().pid();
        try {
            String out = run("taskset", "-p", Long.toString(pid));
            String mask = out.substring(out.lastIndexOf(':') + 1).trim();
            run("taskset", "-a", "-p", "-c", Integer.toString(cpu), Long.toString(pid));
            return new Pinning(cpu, mask, null);
        } catch (IOException e) {
            return new Pinning(-1, null, "not pinned (" + e.getMessage() + ")");
        }
    }

    boolean active() {
        return failure == null;
    }

    String describe() {
        return active() ? "client and server pinned to CPU " + cpu + " (taskset)" : failure;
    }

    @Override
    public void close() {
        if (active()) {
            try {
                run("taskset", "-a", "-p", previousMask, Long.toString(ProcessHandle.current().pid()));
            } catch (IOException e) {
                // best effort: the process keeps running on one CPU
            }
        }
    }

    private static String run(String... command) throws IOException {
        Process p;
        try {
            p = new ProcessBuilder(command).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new IOException("taskset not available");
        }
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IOException("taskset failed: " + out.trim());
            }
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted");
        } finally {
            p.destroyForcibly();
        }
    }
}
