package io.vfu.core.linux;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.HexFormat;

/**
 * Child side of {@link CrossProcessFdPassingTest}, run in its own JVM by {@link io.vfu.core.testing.ChildJvm}.
 *
 * <ol>
 * <li>connects to the parent's socket (args[0]) and sends "FDS3" with a memfd, an eventfd and one end of a
 *     socketpair in ONE SCM_RIGHTS message;</li>
 * <li>waits on the eventfd for the parent's signal (the parent wrote into the memfd through its own mapping);</li>
 * <li>reads {@link #REPORT_SIZE} bytes through its own mapping and sends them back over its end of the pair;</li>
 * <li>signals the eventfd with {@link #CHILD_SIGNAL} and prints what it saw.</li>
 * </ol>
 * Any failure exits with status 1 and a stack trace on stderr.
 */
@SuppressWarnings("try") // resources kept open for their side effects, closed early on purpose
public final class FdPassingChild {
    static final long MEMFD_SIZE = 4096;
    static final int REPORT_SIZE = 64;
    static final long CHILD_SIGNAL = 5;
    static final String HELLO = "FDS3";

    private FdPassingChild() {}

    public static void main(String[] args) {
        try {
            run(Path.of(args[0]));
        } catch (Throwable t) {
            t.printStackTrace();
            System.exit(1);
        }
    }

    private static void run(Path socket) throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket connection = UnixSocket.connect(socket);
                MemFd memory = MemFd.create("vfu-child", MEMFD_SIZE);
                EventFd event = EventFd.create();
                UnixSocket mine = pair[0];
                UnixSocket theirs = pair[1];
                Arena arena = Arena.ofConfined()) {
            MemorySegment hello = arena.allocate(HELLO.length());
            MemorySegment.copy(HELLO.getBytes(), 0, hello, JAVA_BYTE, 0, HELLO.length());
            connection.send(new int[] {memory.fd(), event.fd(), theirs.fd()}, hello);
            theirs.close(); // the parent holds the only other reference now

            long count = event.read(); // blocks until the parent has written the memory
            if (count != 1) {
                throw new IllegalStateException("expected the parent's signal 1, read " + count);
            }
            try (Mapping mapping = memory.map(0, MEMFD_SIZE, false)) {
                MemorySegment seen = mapping.segment().asSlice(0, REPORT_SIZE);
                mine.send(null, seen); // straight from the shared mapping
                System.out.println("child saw " + HexFormat.of().formatHex(seen.toArray(JAVA_BYTE)));
            }
            event.signal(CHILD_SIGNAL);
            System.out.println("child read signal " + count + ", done");
        }
    }
}
