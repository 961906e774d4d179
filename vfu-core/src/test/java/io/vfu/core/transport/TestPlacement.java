package io.vfu.core.transport;

import java.lang.foreign.MemorySegment;
import java.util.function.Supplier;

/** A placement for tests: its destination, the answer once the data is in, what to do if it never is. */
record TestPlacement(MemorySegment destination, Supplier<Response> onReceived, Runnable onAbandoned)
        implements CommandHandler.Placement {
    @Override
    public Response received() {
        return onReceived.get();
    }

    @Override
    public void abandoned() {
        onAbandoned.run();
    }
}
