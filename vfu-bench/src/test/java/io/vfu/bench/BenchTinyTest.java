package io.vfu.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code vfu bench --tiny} runs every benchmark end to end and prints every ratio (no timing assertions). */
class BenchTinyTest {
    private static final String[] BENCHMARKS = {
        "REGION_READ 4 B config median", "REGION_WRITE 8 B BAR0 median",
        "MIG_DATA_READ 64 KiB", "MIG_DATA_READ 1 MiB", "MIG_DATA_READ 4 MiB",
        "MIG_DATA_WRITE 64 KiB", "MIG_DATA_WRITE 1 MiB", "MIG_DATA_WRITE 4 MiB",
        "DMA read  fd mapping 64 KiB", "DMA write fd mapping 64 KiB",
        "DMA_READ  messages 64 KiB", "DMA_WRITE messages 64 KiB", "DMA_LOGGING_REPORT 16 GiB/4 KiB median"};

    @Test
    void tinyRunPrintsEveryRatio() {
        String out = run("--tiny");
        for (String name : BENCHMARKS) {
            assertThat(out).containsPattern("(?m)^" + java.util.regex.Pattern.quote(name)
                    + " +[0-9.,]+ \\S+ +[0-9.,]+ \\S+ +[0-9]+\\.[0-9]{3}  \\S+ +\\S+( [0-9.]+)? +(met|edge|missed|-)$");
        }
        assertThat(out).contains("REGION_READ 4 B", "MIG_DATA_READ 1 MiB", "B/op", "migration engine does not exist")
                .containsPattern("targets: [0-9]+ met, [0-9]+ at the edge .*, [0-9]+ missed");
    }

    @Test
    void tinyRunAsJson() {
        String out = run("--tiny", "--json", "--no-pin");
        assertThat(out).startsWith("{").contains("\"ratio\"", "\"ratio_q3\"", "\"verdict\"", "\"client_bytes_per_op\"",
                "pinning disabled");
        for (String name : BENCHMARKS) {
            assertThat(out).contains("\"name\": \"" + name + "\"");
        }
    }

    private static String run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cl = new CommandLine(new BenchCommand());
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        assertThat(code).as("exit code; stderr: %s", err).isZero();
        return out.toString();
    }
}
