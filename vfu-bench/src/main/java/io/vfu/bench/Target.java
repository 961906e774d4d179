package io.vfu.bench;

import java.util.Locale;

/**
 * A benchmark's target ratio (figure / baseline) and the verdict on a measured one.
 *
 * <p>A ratio is the median of alternating blocks' ratios; on a shared machine those spread by a percent or two,
 * so a median a hair inside the bound says little. The verdict therefore also looks at the quartile of the
 * blocks on the far side of the bound: {@link Verdict#MET} when it is inside too (three blocks in four meet
 * the target), {@link Verdict#EDGE} when only the median is, {@link Verdict#MISSED} when the median is not.
 *
 * @param bound  the ratio to reach; NaN for none
 * @param atMost whether the ratio must stay at or below {@code bound} (latency) rather than at or above (throughput)
 */
public record Target(double bound, boolean atMost) {
    /** No target: the row is reported for information. */
    public static final Target NONE = new Target(Double.NaN, true);

    public static Target atMost(double bound) {
        return new Target(bound, true);
    }

    public static Target atLeast(double bound) {
        return new Target(bound, false);
    }

    public enum Verdict {
        MET("met"), EDGE("edge"), MISSED("missed"), NONE("-");

        private final String label;

        Verdict(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    /**
     * The verdict on a median ratio whose blocks' lower and upper quartiles are {@code q1} and {@code q3} (for a
     * ratio without blocks, pass the ratio for both).
     */
    public Verdict verdict(double median, double q1, double q3) {
        if (Double.isNaN(bound)) {
            return Verdict.NONE;
        }
        if (!meets(median)) {
            return Verdict.MISSED;
        }
        return meets(atMost ? q3 : q1) ? Verdict.MET : Verdict.EDGE;
    }

    private boolean meets(double ratio) {
        return atMost ? ratio <= bound : ratio >= bound;
    }

    @Override
    public String toString() {
        return Double.isNaN(bound) ? "-" : String.format(Locale.ROOT, "%s %.2f", atMost ? "≤" : "≥", bound);
    }
}
