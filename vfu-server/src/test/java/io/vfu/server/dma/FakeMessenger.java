package io.vfu.server.dma;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.ArrayList;
import java.util.Collections;

/** A client's memory [base, base + size) reached by "messages" that are recorded. */
final class FakeMessenger implements DmaMessenger {
    record Call(boolean write, long iova, long count) {
    }

    final long base;
    final MemorySegment memory;
    final List<Call> calls = Collections.synchronizedList(new ArrayList<>());
    volatile long maxTransferSize;
    volatile boolean fail;

    /** Without memory: only records (reads return what the buffer held). */
    FakeMessenger(long maxTransferSize) {
        this.base = 0;
        this.memory = null;
        this.maxTransferSize = maxTransferSize;
    }

    FakeMessenger(long base, int size, long maxTransferSize) {
        this.base = base;
        this.memory = MemorySegment.ofArray(new byte[size]);
        this.maxTransferSize = maxTransferSize;
    }

    @Override
    public void dmaRead(long iova, MemorySegment dst) throws IOException {
        calls.add(new Call(false, iova, dst.byteSize()));
        check(dst.byteSize());
        if (memory != null) {
            MemorySegment.copy(memory, iova - base, dst, 0, dst.byteSize());
        }
    }

    @Override
    public void dmaWrite(long iova, MemorySegment src) throws IOException {
        calls.add(new Call(true, iova, src.byteSize()));
        check(src.byteSize());
        if (memory != null) {
            MemorySegment.copy(src, 0, memory, iova - base, src.byteSize());
        }
    }

    private void check(long count) throws IOException {
        if (fail) {
            throw new IOException("connection reset");
        }
        if (count > maxTransferSize) {
            throw new AssertionError("count " + count + " > max " + maxTransferSize);
        }
    }

    @Override
    public long maxTransferSize() {
        return maxTransferSize;
    }
}
