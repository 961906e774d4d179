package io.vfu.core.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Predicate;

/**
 * Runs a {@code main} class from the test class path in a child JVM, for cross-process tests.
 *
 * <p>The child uses the parent's {@code java} executable and class path, with
 * {@code --enable-native-access=ALL-UNNAMED} and small-footprint options. Its stdout and stderr are captured by
 * two pump threads ({@link #output()}, {@link #errorOutput()}, {@link #awaitLine}); its stdin is closed.
 *
 * <p>{@link #close()} ALWAYS ends and reaps the child: it asks it to stop (SIGTERM), waits a grace period,
 * then kills it (SIGKILL) and waits for it, and closes the pipes. Use try-with-resources so this also happens
 * when a test fails. Synchronise with the child through sockets, pipes or {@link #awaitLine}, never sleeps.
 *
 * {@snippet :
 * try (ChildJvm child = ChildJvm.start(MyChild.class, socketPath.toString())) {
 *     // talk to the child ...
 *     assertThat(child.waitFor(Duration.ofSeconds(60))).as(child.describe()).isZero();
 * }
 * }
 */
public final class ChildJvm implements AutoCloseable {
    /** How long {@link #close()} waits after SIGTERM before SIGKILL. */
    public static final Duration GRACE = Duration.ofSeconds(5);

    private static final String NATIVE_ACCESS = "--enable-native-access=ALL-UNNAMED";
    private static final List<String> DEFAULT_OPTIONS = List.of("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx128m",
            "-Xss1m");

    private final String name;
    private final Process process;
    private final StringBuilder out = new StringBuilder();
    private final StringBuilder err = new StringBuilder();
    private final Thread outPump;
    private final Thread errPump;

    private ChildJvm(String name, Process process) {
        this.name = name;
        this.process = process;
        this.outPump = pump(process.getInputStream(), out, name + "-stdout");
        this.errPump = pump(process.getErrorStream(), err, name + "-stderr");
    }

    /** Starts {@code mainClass} with {@code args} and the default JVM options. */
    public static ChildJvm start(Class<?> mainClass, String... args) throws IOException {
        return start(List.of(), mainClass, List.of(args));
    }

    /** Starts {@code mainClass} with extra JVM options (after the defaults) and program arguments. */
    public static ChildJvm start(List<String> jvmOptions, Class<?> mainClass, List<String> args) throws IOException {
        return start(true, jvmOptions, mainClass, args);
    }

    /** Starts {@code mainClass} WITHOUT {@code --enable-native-access}, to test what users see then. */
    public static ChildJvm startWithoutNativeAccess(Class<?> mainClass, String... args) throws IOException {
        return start(false, List.of(), mainClass, List.of(args));
    }

    private static ChildJvm start(boolean nativeAccess, List<String> jvmOptions, Class<?> mainClass,
            List<String> args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(javaExecutable().toString());
        if (nativeAccess) {
            command.add(NATIVE_ACCESS);
        }
        command.addAll(DEFAULT_OPTIONS);
        command.addAll(jvmOptions);
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(mainClass.getName());
        command.addAll(args);
        ProcessBuilder builder = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.PIPE);
        Process process = builder.start();
        try {
            process.getOutputStream().close(); // the child reads no stdin
        } catch (IOException e) {
            process.destroyForcibly();
            throw e;
        }
        return new ChildJvm(mainClass.getSimpleName(), process);
    }

    /** The running JVM's {@code java} executable (falls back to {@code java.home/bin/java}). */
    public static Path javaExecutable() {
        return ProcessHandle.current().info().command().map(Path::of)
                .orElseGet(() -> Path.of(System.getProperty("java.home"), "bin", "java"));
    }

    /** The child process. */
    public Process process() {
        return process;
    }

    /** The child's process id. */
    public long pid() {
        return process.pid();
    }

    /** Whether the child is still running. */
    public boolean isAlive() {
        return process.isAlive();
    }

    /** Everything the child wrote to stdout so far. */
    public String output() {
        synchronized (out) {
            return out.toString();
        }
    }

    /** Everything the child wrote to stderr so far. */
    public String errorOutput() {
        synchronized (err) {
            return err.toString();
        }
    }

    /**
     * Waits until the child prints a stdout line that matches.
     *
     * @return the first matching line
     * @throws TimeoutException the timeout passed, or the child's stdout ended without a match
     */
    public String awaitLine(Predicate<String> match, Duration timeout) throws InterruptedException, TimeoutException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (out) {
            int from = 0;
            while (true) {
                int nl;
                while ((nl = out.indexOf("\n", from)) >= 0) {
                    String line = out.substring(from, nl);
                    from = nl + 1;
                    if (match.test(line)) {
                        return line;
                    }
                }
                long remaining = deadline - System.nanoTime();
                if (remaining <= 0 || !outPump.isAlive()) {
                    throw new TimeoutException("no matching line from child: " + describe());
                }
                TimeUnit.NANOSECONDS.timedWait(out, remaining);
            }
        }
    }

    /**
     * Waits for the child to exit by itself.
     *
     * @return its exit code
     * @throws TimeoutException it is still running after {@code timeout} (it is not killed here; close does)
     */
    public int waitFor(Duration timeout) throws InterruptedException, TimeoutException {
        if (!process.waitFor(timeout.toNanos(), TimeUnit.NANOSECONDS)) {
            throw new TimeoutException("child still running after " + timeout + ": " + describe());
        }
        outPump.join(timeout.toMillis() + 1);
        errPump.join(timeout.toMillis() + 1);
        return process.exitValue();
    }

    /** Pid, state, stdout and stderr, for assertion messages. */
    public String describe() {
        String state = process.isAlive() ? "running" : "exit " + process.exitValue();
        return name + " (pid " + process.pid() + ", " + state + ")\n--- stdout ---\n" + output()
                + "--- stderr ---\n" + errorOutput();
    }

    /** Stops (SIGTERM, then SIGKILL after {@link #GRACE}), reaps the child and closes its pipes. */
    @Override
    public void close() {
        boolean interrupted = false;
        try {
            if (process.isAlive()) {
                process.destroy();
                try {
                    if (!process.waitFor(GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
                        process.destroyForcibly();
                    }
                } catch (InterruptedException e) {
                    interrupted = true;
                    process.destroyForcibly();
                }
            }
            while (true) {
                try {
                    process.waitFor();
                    outPump.join();
                    errPump.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        } finally {
            closeQuietly(process.getInputStream());
            closeQuietly(process.getErrorStream());
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static void closeQuietly(InputStream in) {
        try {
            in.close();
        } catch (IOException ignored) {
            // nothing to do: the child is gone
        }
    }

    private static Thread pump(InputStream in, StringBuilder sink, String threadName) {
        Thread t = Thread.ofPlatform().name(threadName).daemon().start(() -> {
            try (BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                    synchronized (sink) {
                        sink.append(line).append('\n');
                        sink.notifyAll();
                    }
                }
            } catch (IOException e) {
                // the pipe was closed by close(): the child is gone
            } finally {
                synchronized (sink) {
                    sink.notifyAll();
                }
            }
        });
        return t;
    }
}
