package io.vfu.core.protocol;

import io.vfu.core.linux.Errno;

/**
 * vfio-user command numbers (protocol reference §4). Replies carry the number of their command.
 *
 * <p>Number 14 ({@code DIRTY_PAGES}) was removed in 0.9.2 and stays reserved: {@link #of(int)} rejects it
 * with {@link Errno#EINVAL}, as libvfio-user does.
 */
public enum Command {
    VERSION(1, Direction.CLIENT_TO_SERVER),
    DMA_MAP(2, Direction.CLIENT_TO_SERVER),
    DMA_UNMAP(3, Direction.CLIENT_TO_SERVER),
    DEVICE_GET_INFO(4, Direction.CLIENT_TO_SERVER),
    DEVICE_GET_REGION_INFO(5, Direction.CLIENT_TO_SERVER),
    DEVICE_GET_REGION_IO_FDS(6, Direction.CLIENT_TO_SERVER),
    DEVICE_GET_IRQ_INFO(7, Direction.CLIENT_TO_SERVER),
    DEVICE_SET_IRQS(8, Direction.CLIENT_TO_SERVER),
    REGION_READ(9, Direction.CLIENT_TO_SERVER),
    REGION_WRITE(10, Direction.CLIENT_TO_SERVER),
    DMA_READ(11, Direction.SERVER_TO_CLIENT),
    DMA_WRITE(12, Direction.SERVER_TO_CLIENT),
    DEVICE_RESET(13, Direction.CLIENT_TO_SERVER),
    REGION_WRITE_MULTI(15, Direction.CLIENT_TO_SERVER),
    DEVICE_FEATURE(16, Direction.CLIENT_TO_SERVER),
    MIG_DATA_READ(17, Direction.CLIENT_TO_SERVER),
    MIG_DATA_WRITE(18, Direction.CLIENT_TO_SERVER);

    /** Who sends the command (the reply travels the other way). */
    public enum Direction { CLIENT_TO_SERVER, SERVER_TO_CLIENT }

    /** The removed migration-v1 command number (§13). */
    public static final int REMOVED_DIRTY_PAGES = 14;

    private static final Command[] BY_CODE = new Command[19];

    static {
        for (Command c : values()) {
            BY_CODE[c.code] = c;
        }
    }

    private final int code;
    private final Direction direction;

    Command(int code, Direction direction) {
        this.code = code;
        this.direction = direction;
    }

    /** The wire number (header bytes 2–3). */
    public int code() {
        return code;
    }

    public Direction direction() {
        return direction;
    }

    /** The command for a wire number, or {@code null} if there is none (including the removed 14). */
    public static Command lookup(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }

    /**
     * The command for a wire number.
     *
     * @throws VfioUserException EINVAL for 14 (removed in 0.9.2) and for unknown numbers
     */
    public static Command of(int code) {
        Command c = lookup(code);
        if (c != null) {
            return c;
        }
        if (code == REMOVED_DIRTY_PAGES) {
            throw VfioUserException.einval("command 14 (DIRTY_PAGES) was removed in vfio-user 0.9.2");
        }
        throw VfioUserException.einval("unknown command " + code);
    }
}
