package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.U16;
import static io.vfu.core.protocol.Wire.U32;

import java.lang.foreign.MemorySegment;

/**
 * The 16-byte header that starts every vfio-user message (protocol reference §3.1).
 *
 * <pre>
 *  0               2               4                               8
 * +---------------+---------------+-------------------------------+
 * |    msg_id     |      cmd      |            msg_size           |
 * +---------------+---------------+-------------------------------+
 * |             flags             |             error             |
 * +-------------------------------+-------------------------------+
 *  8                              12                              16
 * flags: bits 0-3 type (0 command, 1 reply), bit 4 No_reply, bit 5 Error, bits 6-31 reserved.
 * </pre>
 *
 * <p>{@code msg_size} counts header and payload and is kept unsigned in a {@code long}. {@code cmd} is kept
 * as the raw wire number so that an unknown command can still be answered with its own number.
 * Reserved flag bits are kept, not rejected: both libvfio-user and QEMU ignore them (§3.1), and a
 * stricter receiver would refuse peers that are valid in practice.
 *
 * @param msgId   the sender's message id (u16)
 * @param cmd     the command number (u16)
 * @param msgSize total message size including this header (u32)
 * @param flags   type and flag bits
 * @param error   errno of an error reply, 0 otherwise (u32)
 */
public record Header(int msgId, int cmd, long msgSize, int flags, int error) {
    public static final int SIZE = 16;

    public static final int MSG_ID_OFFSET = 0;
    public static final int CMD_OFFSET = 2;
    public static final int MSG_SIZE_OFFSET = 4;
    public static final int FLAGS_OFFSET = 8;
    public static final int ERROR_OFFSET = 12;

    public static final int TYPE_MASK = 0x0000000F;
    public static final int TYPE_COMMAND = 0;
    public static final int TYPE_REPLY = 1;
    public static final int FLAG_NO_REPLY = 0x00000010;
    public static final int FLAG_ERROR = 0x00000020;

    public Header {
        if ((msgId & ~0xFFFF) != 0 || (cmd & ~0xFFFF) != 0) {
            throw new IllegalArgumentException("msg_id and cmd are 16-bit: " + msgId + ", " + cmd);
        }
        if (msgSize < SIZE || msgSize > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException("msg_size out of range: " + msgSize);
        }
    }

    /** A command header for a payload of {@code payloadSize} bytes. */
    public static Header command(int msgId, Command cmd, long payloadSize, boolean noReply) {
        return new Header(msgId, cmd.code(), SIZE + payloadSize, TYPE_COMMAND | (noReply ? FLAG_NO_REPLY : 0), 0);
    }

    /** A success reply header for a payload of {@code payloadSize} bytes. */
    public static Header reply(int msgId, int cmd, long payloadSize) {
        return new Header(msgId, cmd, SIZE + payloadSize, TYPE_REPLY, 0);
    }

    /** A header-only error reply (the spec's error replies carry no payload, §3.2). */
    public static Header errorReply(int msgId, int cmd, int errno) {
        return new Header(msgId, cmd, SIZE, TYPE_REPLY | FLAG_ERROR, errno);
    }

    public int type() {
        return flags & TYPE_MASK;
    }

    public boolean isCommand() {
        return type() == TYPE_COMMAND;
    }

    public boolean isReply() {
        return type() == TYPE_REPLY;
    }

    public boolean noReply() {
        return (flags & FLAG_NO_REPLY) != 0;
    }

    public boolean isError() {
        return (flags & FLAG_ERROR) != 0;
    }

    /** The payload size, {@code msg_size - 16}. */
    public long payloadSize() {
        return msgSize - SIZE;
    }

    /** The command, or {@code null} for an unknown number. */
    public Command command() {
        return Command.lookup(cmd);
    }

    /** Writes the 16 bytes at {@code offset} of {@code dst}. */
    public void encode(MemorySegment dst, long offset) {
        dst.set(U16, offset + MSG_ID_OFFSET, (short) msgId);
        dst.set(U16, offset + CMD_OFFSET, (short) cmd);
        dst.set(U32, offset + MSG_SIZE_OFFSET, (int) msgSize);
        dst.set(U32, offset + FLAGS_OFFSET, flags);
        dst.set(U32, offset + ERROR_OFFSET, error);
    }

    /** Writes the header without creating a record (hot paths). */
    public static void encode(MemorySegment dst, int msgId, int cmd, long msgSize, int flags, int error) {
        dst.set(U16, MSG_ID_OFFSET, (short) msgId);
        dst.set(U16, CMD_OFFSET, (short) cmd);
        dst.set(U32, MSG_SIZE_OFFSET, (int) msgSize);
        dst.set(U32, FLAGS_OFFSET, flags);
        dst.set(U32, ERROR_OFFSET, error);
    }

    /**
     * Decodes and validates the first 16 bytes of {@code src}.
     *
     * @throws VfioUserException EINVAL if fewer than 16 bytes are given, the type is neither command nor
     *                           reply, or msg_size is below 16
     */
    public static Header decode(MemorySegment src) {
        if (src.byteSize() < SIZE) {
            throw VfioUserException.einval("header: " + src.byteSize() + " bytes, need " + SIZE);
        }
        int msgId = Short.toUnsignedInt(src.get(U16, MSG_ID_OFFSET));
        int cmd = Short.toUnsignedInt(src.get(U16, CMD_OFFSET));
        long msgSize = Integer.toUnsignedLong(src.get(U32, MSG_SIZE_OFFSET));
        int flags = src.get(U32, FLAGS_OFFSET);
        int error = src.get(U32, ERROR_OFFSET);
        int type = flags & TYPE_MASK;
        if (type != TYPE_COMMAND && type != TYPE_REPLY) {
            throw VfioUserException.einval("header: msg_id " + msgId + " cmd " + cmd + ": invalid type " + type);
        }
        if (msgSize < SIZE) {
            throw VfioUserException.einval("header: msg_id " + msgId + " cmd " + cmd + ": msg_size " + msgSize + " < 16");
        }
        return new Header(msgId, cmd, msgSize, flags, error);
    }

    @Override
    public String toString() {
        Command c = command();
        return (isReply() ? "reply " : "command ") + (c != null ? c.name() : "#" + cmd) + " id=" + msgId
                + " size=" + msgSize + (noReply() ? " no_reply" : "") + (isError() ? " error=" + error : "");
    }
}
