package io.vfu.bench.jmh;

import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.MigrationPathPlanner;
import io.vfu.core.protocol.MigrationState;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/** The migration path planner (kernel vfio_mig_get_next_state style), per feature set. */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class PathPlannerBenchmark {
    @Param({"STOP_COPY", "STOP_COPY_P2P_PRE_COPY"})
    public String features;

    private MigrationFeatures f;

    @org.openjdk.jmh.annotations.Setup
    public void setup() {
        f = "STOP_COPY".equals(features) ? MigrationFeatures.STOP_COPY : MigrationFeatures.STOP_COPY_P2P_PRE_COPY;
    }

    @Benchmark
    public List<MigrationState> runningToStopCopy() {
        return MigrationPathPlanner.path(f, MigrationState.RUNNING, MigrationState.STOP_COPY);
    }

    @Benchmark
    public List<MigrationState> stopCopyToRunning() {
        return MigrationPathPlanner.path(f, MigrationState.STOP_COPY, MigrationState.RUNNING);
    }

    @Benchmark
    public MigrationState nextStateResumingToRunning() {
        return MigrationPathPlanner.nextState(f, MigrationState.RESUMING, MigrationState.RUNNING);
    }
}
