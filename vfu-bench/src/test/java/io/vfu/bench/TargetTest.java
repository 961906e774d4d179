package io.vfu.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Verdicts on measured ratios, and how rows and the report show them. */
class TargetTest {
    /**
     * A latency target (≤) is met only when the upper quartile of the blocks is within too, a throughput target
     * (≥) only when the lower one is; a median outside misses either way.
     */
    @ParameterizedTest(name = "{0} {1}: median {2}, quartiles {3}-{4} -> {5}")
    @CsvSource({
        "≤, 1.05, 1.03,  1.02, 1.05, MET",
        "≤, 1.05, 1.046, 1.041, 1.057, EDGE",
        "≤, 1.05, 1.051, 1.04, 1.06, MISSED",
        "≥, 0.95, 0.97,  0.95, 0.98, MET",
        "≥, 0.95, 0.96,  0.94, 0.98, EDGE",
        "≥, 0.95, 0.949, 0.94, 0.99, MISSED"})
    void theVerdictLooksAtTheMedianAndTheQuartileOnTheFarSide(String kind, double bound, double median, double q1,
                                                               double q3, Target.Verdict expected) {
        Target t = kind.equals("≤") ? Target.atMost(bound) : Target.atLeast(bound);
        assertThat(t.verdict(median, q1, q3)).isEqualTo(expected);
        assertThat(t).hasToString(kind + " " + bound);
    }

    @Test
    void aRowWithoutTargetHasNoVerdict() {
        assertThat(Target.NONE.verdict(9, 9, 9)).isEqualTo(Target.Verdict.NONE);
        assertThat(Target.NONE).hasToString("-");
    }

    @Test
    void quantilesInterpolateBetweenSortedBlocks() {
        double[] nine = {1.09, 1.01, 1.05, 1.03, 1.08, 1.02, 1.04, 1.07, 1.06};
        assertThat(Bench.quantile(nine, 0.5)).isEqualTo(1.05);
        assertThat(Bench.quantile(nine, 0.25)).isEqualTo(1.03);
        assertThat(Bench.quantile(nine, 0.75)).isEqualTo(1.07);
        assertThat(Bench.quantile(new double[] {1, 2, 3, 4}, 0.5)).isEqualTo(2.5);
        assertThat(Bench.quantile(new double[] {1, 2, 3, 4}, 0.25)).isEqualTo(1.75);
        assertThat(nine[0]).as("input left unsorted").isEqualTo(1.09);
    }

    @Test
    void theTableAndJsonShowEachRowsSpreadAndVerdict() {
        Bench.Row edge = new Bench.Row("REGION_READ 4 B config median", "µs", 12.2, 11.64, "d", Target.atMost(1.05))
                .withBlockRatios(new double[] {1.04, 1.046, 1.06});
        Bench.Row met = new Bench.Row("MIG_DATA_READ 1 MiB", "MiB/s", 5954, 6195, "d", Target.atLeast(0.95))
                .withBlockRatios(new double[] {0.96, 0.97, 0.98});
        Bench.Row info = new Bench.Row("DMA_LOGGING_REPORT", "µs", 145, 90, "d", Target.NONE);
        Bench.Report r = new Bench.Report("quick", "machine", "pinned", "0", "0", List.of(edge, met, info),
                List.of(), List.of());

        String table = ReportFormat.table(r);
        assertThat(table)
                .containsPattern("(?m)^REGION_READ 4 B config median .* 1\\.046  1\\.043-1\\.053 +≤ 1\\.05 +edge$");
        assertThat(table).containsPattern("(?m)^MIG_DATA_READ 1 MiB .* 0\\.970  0\\.965-0\\.975 +≥ 0\\.95 +met$");
        assertThat(table).containsPattern("(?m)^DMA_LOGGING_REPORT .* 1\\.611  - +- +-$");
        assertThat(table).contains("targets: 1 met, 1 at the edge");
        assertThat(table).contains(", 0 missed");

        String json = ReportFormat.json(r);
        assertThat(json).contains("\"ratio\": 1.0460, \"ratio_q1\": 1.0430, \"ratio_q3\": 1.0530, \"blocks\": 3,"
                + " \"target\": \"≤ 1.05\", \"verdict\": \"edge\"");
        assertThat(json).contains("\"blocks\": 0, \"target\": \"-\", \"verdict\": \"-\"");
    }
}
