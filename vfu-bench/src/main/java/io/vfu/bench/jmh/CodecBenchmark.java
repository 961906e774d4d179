package io.vfu.bench.jmh;

import io.vfu.core.protocol.Command;
import io.vfu.core.protocol.Header;
import io.vfu.core.protocol.Messages;
import io.vfu.core.protocol.MigDataReadReply;
import io.vfu.core.protocol.RegionReadReply;
import io.vfu.core.protocol.RegionReadRequest;
import io.vfu.core.protocol.Request;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/** Encode/decode of the hot-path messages (header, REGION_READ, MIG_DATA_READ reply). */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class CodecBenchmark {
    private Arena arena;
    private MemorySegment header;
    private MemorySegment regionRead;
    private MemorySegment regionReadReply;
    private MemorySegment migReply;
    private MemorySegment out;

    @Setup
    public void setup() {
        arena = Arena.ofConfined();
        header = arena.allocate(Header.SIZE, 8);
        Header.encode(header, 7, Command.REGION_READ.code(), Header.SIZE + RegionReadRequest.SIZE, Header.TYPE_COMMAND, 0);
        regionRead = arena.allocate(RegionReadRequest.SIZE, 8);
        new RegionReadRequest(0x10, 7, 4).encodeFixed(regionRead);
        regionReadReply = arena.allocate(RegionReadReply.FIXED_SIZE + 4, 8);
        new RegionReadReply(0x10, 7, arena.allocate(4)).encodeFixed(regionReadReply);
        migReply = arena.allocate(MigDataReadReply.FIXED_SIZE + 65536, 8);
        new MigDataReadReply(migReply.asSlice(MigDataReadReply.FIXED_SIZE)).encodeFixed(migReply);
        out = arena.allocate(64, 8);
    }

    @TearDown
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public Header headerDecode() {
        return Header.decode(header);
    }

    @Benchmark
    public MemorySegment headerEncode() {
        Header.encode(out, 7, Command.REGION_READ.code(), 44, Header.TYPE_REPLY, 0);
        return out;
    }

    @Benchmark
    public Request regionReadRequestDecode() {
        return Messages.decodeRequest(Command.REGION_READ, regionRead);
    }

    @Benchmark
    public MemorySegment regionReadRequestEncode() {
        new RegionReadRequest(0x10, 7, 4).encodeFixed(out);
        return out;
    }

    @Benchmark
    public RegionReadReply regionReadReplyDecode() {
        return RegionReadReply.decode(regionReadReply);
    }

    @Benchmark
    public MigDataReadReply migDataReadReplyDecode() {
        return MigDataReadReply.decode(migReply);
    }
}
