package io.vfu.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The launcher's JDK search (bin/jdk.sh): a JDK ≥ 25 is found, and its absence is a clear error. */
class LauncherScriptTest {
    private static final Path REPO = Path.of("").toAbsolutePath().getParent();

    record Result(int exit, String out) {
    }

    private static Result run(String script, Path jvmDirs, String javaHome) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder("bash", "-c", ". bin/jdk.sh; " + script)
                .directory(REPO.toFile())
                .redirectErrorStream(true);
        pb.environment().put("VFU_JVM_DIRS", jvmDirs.toString());
        if (javaHome == null) {
            pb.environment().remove("JAVA_HOME");
        } else {
            pb.environment().put("JAVA_HOME", javaHome);
        }
        Process p = pb.start();
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
            return new Result(p.exitValue(), out);
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void findsTheRunningJdkThroughJavaHome(@TempDir Path empty) throws Exception {
        String home = Path.of(System.getProperty("java.home")).toString();
        Result r = run("vfu_find_jdk && echo \"found $JAVA\"", empty, home);
        assertThat(r.exit()).isZero();
        assertThat(r.out()).contains("found " + home + "/bin/java");
    }

    @Test
    void findsAJdkInTheSearchDirectories(@TempDir Path dir) throws Exception {
        Files.createSymbolicLink(dir.resolve("some-jdk"), Path.of(System.getProperty("java.home")));
        Result r = run("vfu_find_jdk && echo \"found $JAVA\"", dir, null);
        assertThat(r.exit()).isZero();
        assertThat(r.out()).contains("found " + dir.resolve("some-jdk") + "/bin/java");
    }

    @Test
    void noJdk25IsAClearError(@TempDir Path empty) throws Exception {
        Result r = run("vfu_find_jdk", empty, "/nonexistent-jdk");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.out()).contains("no JDK 25 or newer found").contains("/nonexistent-jdk");
    }
}
