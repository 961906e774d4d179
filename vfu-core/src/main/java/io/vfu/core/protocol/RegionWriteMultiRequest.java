package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.putU64;
import static io.vfu.core.protocol.Wire.u32;
import static io.vfu.core.protocol.Wire.u64;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * REGION_WRITE_MULTI request (command 15, protocol reference §9.2): a batch of small region writes,
 * applied in order. Only sent to a server that advertised {@code "write_multiple": true}.
 *
 * <pre>
 *  0                               8
 * +-------------------------------+
 * |         wr_cnt (u64)          |
 * +-------------------------------+-----------------------------------------------+
 * | entry 0 (24 bytes)  ...  entry wr_cnt−1                                       |
 * +-------------------------------------------------------------------------------+
 * entry:
 *  0                               8               12              16                              24
 * +-------------------------------+---------------+---------------+-------------------------------+
 * |        offset (u64)           |  region (u32) |  count (u32)  | data[8] (first count bytes)   |
 * +-------------------------------+---------------+---------------+-------------------------------+
 * </pre>
 *
 * <p>The record is a flyweight over the entry bytes: no object per entry unless {@link #entry(int)} is
 * called. The decoder requires the payload to be exactly {@code 8 + 24·wr_cnt} bytes (compared before
 * anything is read, so wr_cnt can never size an allocation), every {@code count} in 1..8 and no
 * {@code offset + count} overflow; all EINVAL. wr_cnt 0 (an 8-byte payload) is accepted: nothing to do.
 * The specification sets no maximum entry count (QEMU sends at most 200); the server's message size
 * limit bounds it. Bounds and region checks per entry are the server's, which applies entries in order
 * and stops at the first failure (ambiguity #21).
 *
 * <p>{@link #entries()} is a slice of the decoded input (no copy): valid as long as the input segment.
 * Records compare entries by content.
 *
 * @param entries the entry bytes, a multiple of 24
 */
public record RegionWriteMultiRequest(MemorySegment entries) implements Request {
    /** Size of the part before the entries (wr_cnt). */
    public static final int FIXED_SIZE = 8;
    public static final int ENTRY_SIZE = 24;
    /** Largest {@code count} of one entry. */
    public static final int MAX_ENTRY_DATA = 8;

    public RegionWriteMultiRequest {
        if (entries.byteSize() % ENTRY_SIZE != 0) {
            throw new IllegalArgumentException("entries: " + entries.byteSize() + " bytes, not a multiple of 24");
        }
        String bad = firstBadEntry(entries);
        if (bad != null) {
            throw new IllegalArgumentException(bad);
        }
    }

    /** One write: {@code count} (1..8) bytes of {@code data}, little-endian, so a 4-byte write of 0x12345678 is {@code (…, 4, 0x12345678)}. */
    public record Entry(long offset, long region, int count, long data) {
        public Entry {
            Fields.requireU32(region, "region");
            if (count < 1 || count > MAX_ENTRY_DATA) {
                throw new IllegalArgumentException("count must be 1..8: " + count);
            }
            if (count < MAX_ENTRY_DATA && (data >>> (8 * count)) != 0) {
                throw new IllegalArgumentException("data " + Wire.hex(data) + " wider than " + count + " bytes");
            }
        }
    }

    /** Builds a request from entries (copies them into one new heap segment). */
    public static RegionWriteMultiRequest of(List<Entry> list) {
        MemorySegment seg = MemorySegment.ofArray(new byte[Math.multiplyExact(list.size(), ENTRY_SIZE)]);
        long at = 0;
        for (Entry e : list) {
            putU64(seg, at, e.offset());
            putU32(seg, at + 8, e.region());
            putU32(seg, at + 12, e.count());
            putU64(seg, at + 16, e.data());
            at += ENTRY_SIZE;
        }
        return new RegionWriteMultiRequest(seg);
    }

    /** Builds a request from entries. */
    public static RegionWriteMultiRequest of(Entry... entries) {
        return of(List.of(entries));
    }

    /** {@code wr_cnt}: the number of entries. */
    public int wrCnt() {
        return (int) (entries.byteSize() / ENTRY_SIZE);
    }

    public long offset(int i) {
        return u64(entries, base(i));
    }

    public long region(int i) {
        return u32(entries, base(i) + 8);
    }

    public int count(int i) {
        return (int) u32(entries, base(i) + 12);
    }

    /** The {@code count} data bytes of entry {@code i} (a slice, no copy). */
    public MemorySegment data(int i) {
        return entries.asSlice(base(i) + 16, count(i));
    }

    /** Entry {@code i} as a record; padding bytes beyond {@code count} are dropped. */
    public Entry entry(int i) {
        int count = count(i);
        long raw = u64(entries, base(i) + 16);
        long data = count == MAX_ENTRY_DATA ? raw : raw & ((1L << (8 * count)) - 1);
        return new Entry(offset(i), region(i), count, data);
    }

    /** All entries as records (allocates; for tests and cold paths). */
    public List<Entry> toList() {
        List<Entry> out = new ArrayList<>(wrCnt());
        for (int i = 0; i < wrCnt(); i++) {
            out.add(entry(i));
        }
        return List.copyOf(out);
    }

    private long base(int i) {
        return Objects.checkIndex(i, wrCnt()) * (long) ENTRY_SIZE;
    }

    @Override
    public Command command() {
        return Command.REGION_WRITE_MULTI;
    }

    @Override
    public int fixedSize() {
        return FIXED_SIZE;
    }

    @Override
    public void encodeFixed(MemorySegment dst) {
        putU64(dst, 0, wrCnt());
    }

    /** The entries are the data tail. */
    @Override
    public MemorySegment data() {
        return entries;
    }

    /** @throws VfioUserException EINVAL if malformed (see the class comment) */
    public static RegionWriteMultiRequest decode(MemorySegment payload) {
        Wire.requireAtLeast(payload, FIXED_SIZE, "REGION_WRITE_MULTI");
        return decode(payload.asSlice(0, FIXED_SIZE), payload.asSlice(FIXED_SIZE));
    }

    /**
     * Decodes a request whose wr_cnt and entries were received into separate segments.
     *
     * @throws VfioUserException EINVAL if {@code fixed} is not 8 bytes, the entry bytes are not exactly
     *                           24·wr_cnt, or an entry has count 0 or &gt; 8 or overflows
     */
    public static RegionWriteMultiRequest decode(MemorySegment fixed, MemorySegment entries) {
        Wire.requireExactly(fixed, FIXED_SIZE, "REGION_WRITE_MULTI");
        long wrCnt = u64(fixed, 0);
        long size = entries.byteSize();
        if (size % ENTRY_SIZE != 0 || Long.compareUnsigned(wrCnt, size / ENTRY_SIZE) != 0) {
            throw VfioUserException.einval("REGION_WRITE_MULTI: wr_cnt " + Long.toUnsignedString(wrCnt)
                    + " but " + size + " entry bytes (24 per entry)");
        }
        String bad = firstBadEntry(entries);
        if (bad != null) {
            throw VfioUserException.einval("REGION_WRITE_MULTI: " + bad);
        }
        return new RegionWriteMultiRequest(entries);
    }

    /** The problem with the first invalid entry, or null. {@code entries} is a multiple of 24 bytes. */
    private static String firstBadEntry(MemorySegment entries) {
        for (long at = 0; at < entries.byteSize(); at += ENTRY_SIZE) {
            long offset = u64(entries, at);
            long count = u32(entries, at + 12);
            if (count < 1 || count > MAX_ENTRY_DATA) {
                return "entry " + at / ENTRY_SIZE + ": count " + count + " not in 1..8";
            }
            if (!Fields.fitsU64(offset, count)) {
                return "entry " + at / ENTRY_SIZE + ": offset " + Long.toUnsignedString(offset) + " + count "
                        + count + " overflows u64";
            }
        }
        return null;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RegionWriteMultiRequest r && Fields.sameBytes(r.entries, entries);
    }

    @Override
    public int hashCode() {
        return wrCnt();
    }
}
