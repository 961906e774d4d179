package io.vfu.bench;

import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code vfu bench [--quick] [--json]}: the end-to-end benchmarks with their baselines and ratios. */
@Command(name = "bench",
        description = {"Runs the end-to-end benchmarks (region access, migration data, DMA, dirty logging) against "
                + "raw UNIX-socket baselines measured in the same run, in a child server process; prints a table "
                + "with ratios.", "Client and server are pinned to CPU 0 when taskset is available."},
        mixinStandardHelpOptions = true)
public final class BenchCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--quick", description = "Smaller sizes: well under two minutes.")
    boolean quick;

    @Option(names = "--json", description = "Print the result as one JSON object.")
    boolean json;

    @Option(names = "--tiny", hidden = true, description = "Tiny sizes (a smoke test; figures meaningless).")
    boolean tiny;

    @Option(names = "--alloc-only", hidden = true, description = "Only the allocation figures.")
    boolean allocOnly;

    @Option(names = "--no-pin", description = "Do not pin client and server to CPU 0.")
    boolean noPin;

    @Override
    public Integer call() throws Exception {
        Bench.Config config = tiny ? Bench.Config.tiny() : quick ? Bench.Config.quick() : Bench.Config.full();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        PrintStream progress = json ? new PrintStream(OutputStream.nullOutputStream()) : new PrintStream(new OutputStream() {
            @Override
            public void write(int b) {
                err.write(b);
            }

            @Override
            public void flush() {
                err.flush();
            }
        }, true);
        config = config.withPin(!noPin);
        Bench.Report report = Bench.run(allocOnly ? config.allocationOnly() : config, progress);
        out.print(json ? ReportFormat.json(report) : ReportFormat.table(report));
        out.flush();
        return 0;
    }
}
