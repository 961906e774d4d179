package io.vfu.core.linux;

import java.util.Arrays;

/**
 * File descriptors received with {@code SCM_RIGHTS}, owned until handed on.
 *
 * <p>{@link UnixSocket#receive} appends every fd that arrives. Each fd is either {@linkplain #take(int) taken}
 * (ownership passes to the caller) or closed by {@link #close()}. {@link #truncated()} reports that the kernel
 * dropped fds because more arrived than the receive accepted ({@code MSG_CTRUNC}); the dropped ones were closed by
 * the kernel, so nothing leaks, but the message is incomplete.
 *
 * <p>After {@code close()} (or {@link #clear()}) the list is empty and may be reused for the next message.
 * Not thread-safe: one list belongs to one receiving thread.
 */
public final class FdList implements AutoCloseable {
    private static final FdList NONE = new FdList(true);

    private int[] fds;
    private boolean[] taken;
    private int size;
    private boolean truncated;
    private final boolean frozen;

    /** An empty list. */
    public FdList() {
        this(false);
    }

    private FdList(boolean frozen) {
        this.frozen = frozen;
        this.fds = new int[frozen ? 0 : 4];
        this.taken = new boolean[frozen ? 0 : 4];
    }

    /**
     * The shared list of no fds: always empty, {@link #close()} and {@link #clear()} do nothing, {@link #add}
     * throws. Lets a receiver hand on "no descriptors" without allocating a list per message; safe to share
     * between threads.
     */
    public static FdList none() {
        return NONE;
    }

    /** Number of fds received (taken ones included). */
    public int size() {
        return size;
    }

    /** Whether the list holds no fds. */
    public boolean isEmpty() {
        return size == 0;
    }

    /** The fd at {@code i}, without transferring ownership. */
    public int get(int i) {
        checkIndex(i);
        return fds[i];
    }

    /** Whether the fd at {@code i} was handed on. */
    public boolean isTaken(int i) {
        checkIndex(i);
        return taken[i];
    }

    /**
     * Hands on the fd at {@code i}: the caller now owns it and this list will not close it.
     *
     * @throws IllegalStateException if it was already taken
     */
    public int take(int i) {
        checkIndex(i);
        if (taken[i]) {
            throw new IllegalStateException("fd at index " + i + " (" + fds[i] + ") was already taken");
        }
        taken[i] = true;
        return fds[i];
    }

    /** Hands on every fd not yet taken, in arrival order. */
    public int[] takeAll() {
        int[] out = new int[size];
        int n = 0;
        for (int i = 0; i < size; i++) {
            if (!taken[i]) {
                taken[i] = true;
                out[n++] = fds[i];
            }
        }
        return n == size ? out : Arrays.copyOf(out, n);
    }

    /** Whether fds were lost because the control buffer was too small ({@code MSG_CTRUNC}). */
    public boolean truncated() {
        return truncated;
    }

    void truncated(boolean value) {
        if (frozen) {
            throw new UnsupportedOperationException("FdList.none() stays empty");
        }
        truncated = value;
    }

    /** Appends an fd this list now owns. */
    public void add(int fd) {
        if (frozen) {
            throw new UnsupportedOperationException("FdList.none() stays empty");
        }
        if (fd < 0) {
            throw new IllegalArgumentException("negative fd " + fd);
        }
        if (size == fds.length) {
            fds = Arrays.copyOf(fds, size * 2);
            taken = Arrays.copyOf(taken, size * 2);
        }
        fds[size] = fd;
        taken[size] = false;
        size++;
    }

    /**
     * Moves every fd not yet taken to the end of {@code target} (which owns them from now on), carries over
     * {@link #truncated()}, and empties this list.
     */
    public void moveTo(FdList target) {
        if (frozen) {
            return;
        }
        for (int i = 0; i < size; i++) {
            if (!taken[i]) {
                taken[i] = true;
                target.add(fds[i]);
            }
        }
        if (truncated) {
            target.truncated(true);
        }
        clear();
    }

    /**
     * Forgets every fd WITHOUT closing it and resets {@link #truncated()}. Only correct once all fds were
     * taken (e.g. after {@link #takeAll()}); otherwise the untaken ones leak.
     */
    public void clear() {
        if (frozen) {
            return;
        }
        size = 0;
        truncated = false;
    }

    /** Closes every fd not taken, then empties the list (which stays usable). Close errors are ignored. */
    @Override
    public void close() {
        if (frozen) {
            return;
        }
        for (int i = 0; i < size; i++) {
            if (!taken[i]) {
                taken[i] = true;
                Fds.closeQuietly(fds[i]);
            }
        }
        clear();
    }

    private void checkIndex(int i) {
        if (i < 0 || i >= size) {
            throw new IndexOutOfBoundsException("index " + i + " of " + size + " fds");
        }
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("FdList[");
        for (int i = 0; i < size; i++) {
            sb.append(i == 0 ? "" : ", ").append(fds[i]).append(taken[i] ? " (taken)" : "");
        }
        return sb.append(truncated ? "; truncated]" : "]").toString();
    }
}
