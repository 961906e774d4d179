package io.vfu.bench;

import java.util.Locale;

/** The table and JSON forms of a {@link Bench.Report}. */
public final class ReportFormat {
    private ReportFormat() {}

    /** A plain-text table: figure, baseline, ratio and target per benchmark, then allocation and notes. */
    public static String table(Bench.Report r) {
        StringBuilder sb = new StringBuilder();
        sb.append("vfu bench (").append(r.config()).append("): ").append(r.machine()).append('\n');
        sb.append(r.pinning()).append("; load average ").append(r.loadBefore()).append(" before, ")
                .append(r.loadAfter()).append(" after\n\n");
        String fmt = "%-36s %14s %14s %6s  %-13s %-7s %s";
        sb.append(String.format(Locale.ROOT, fmt, "benchmark", "vfio-user", "baseline", "ratio", "blocks q1-q3",
                "target", "verdict")).append('\n');
        int[] verdicts = new int[Target.Verdict.values().length];
        for (Bench.Row row : r.rows()) {
            Target.Verdict v = row.verdict();
            verdicts[v.ordinal()]++;
            String spread = row.blocks() == 0 ? "-"
                    : String.format(Locale.ROOT, "%.3f-%.3f", row.ratioQ1(), row.ratioQ3());
            sb.append(String.format(Locale.ROOT, fmt, row.name(), value(row.figure(), row.unit()),
                    value(row.baseline(), row.unit()), String.format(Locale.ROOT, "%.3f", row.ratio()), spread,
                    row.target(), v.label()).stripTrailing()).append('\n');
        }
        sb.append(String.format(Locale.ROOT, "targets: %d met, %d at the edge (median within, a quartile of the"
                        + " blocks beyond), %d missed%n", verdicts[Target.Verdict.MET.ordinal()],
                verdicts[Target.Verdict.EDGE.ordinal()], verdicts[Target.Verdict.MISSED.ordinal()]));
        sb.append("\ndetails:\n");
        for (Bench.Row row : r.rows()) {
            sb.append("  ").append(row.name()).append(": ").append(row.detail()).append('\n');
        }
        sb.append("\nheap allocation per operation, steady state (all threads of each process):\n");
        for (Bench.Alloc a : r.alloc()) {
            sb.append(String.format(Locale.ROOT, "  %-20s client %8.1f B/op   server %8.1f B/op   (%d ops)%n", a.path(),
                    a.clientBytesPerOp(), a.serverBytesPerOp(), a.ops()));
        }
        for (String note : r.notes()) {
            sb.append("note: ").append(note).append('\n');
        }
        return sb.toString();
    }

    private static String value(double v, String unit) {
        return String.format(Locale.ROOT, v >= 100 ? "%,.0f %s" : "%.2f %s", v, unit);
    }

    /** One JSON object. */
    public static String json(Bench.Report r) {
        StringBuilder sb = new StringBuilder("{\n");
        sb.append("  \"config\": ").append(str(r.config())).append(",\n");
        sb.append("  \"machine\": ").append(str(r.machine())).append(",\n");
        sb.append("  \"pinning\": ").append(str(r.pinning())).append(",\n");
        sb.append("  \"load_before\": ").append(str(r.loadBefore())).append(",\n");
        sb.append("  \"load_after\": ").append(str(r.loadAfter())).append(",\n");
        sb.append("  \"results\": [\n");
        for (int i = 0; i < r.rows().size(); i++) {
            Bench.Row row = r.rows().get(i);
            sb.append("    {\"name\": ").append(str(row.name())).append(", \"unit\": ").append(str(row.unit()))
                    .append(", \"value\": ").append(num(row.figure())).append(", \"baseline\": ")
                    .append(num(row.baseline())).append(", \"ratio\": ").append(num(row.ratio()))
                    .append(", \"ratio_q1\": ").append(num(row.ratioQ1())).append(", \"ratio_q3\": ")
                    .append(num(row.ratioQ3())).append(", \"blocks\": ").append(row.blocks())
                    .append(", \"target\": ").append(str(row.target().toString()))
                    .append(", \"verdict\": ").append(str(row.verdict().label())).append(", \"detail\": ")
                    .append(str(row.detail())).append('}').append(i + 1 < r.rows().size() ? ",\n" : "\n");
        }
        sb.append("  ],\n  \"allocation\": [\n");
        for (int i = 0; i < r.alloc().size(); i++) {
            Bench.Alloc a = r.alloc().get(i);
            sb.append("    {\"path\": ").append(str(a.path())).append(", \"ops\": ").append(a.ops())
                    .append(", \"client_bytes_per_op\": ").append(num(a.clientBytesPerOp()))
                    .append(", \"server_bytes_per_op\": ").append(num(a.serverBytesPerOp())).append('}')
                    .append(i + 1 < r.alloc().size() ? ",\n" : "\n");
        }
        sb.append("  ],\n  \"notes\": [");
        for (int i = 0; i < r.notes().size(); i++) {
            sb.append(i == 0 ? "" : ", ").append(str(r.notes().get(i)));
        }
        return sb.append("]\n}\n").toString();
    }

    private static String num(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.4f", v) : "null";
    }

    private static String str(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.append('"').toString();
    }
}
