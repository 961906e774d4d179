package io.vfu.core.protocol;

import static io.vfu.core.protocol.Wire.putU32;
import static io.vfu.core.protocol.Wire.putU64;
import static io.vfu.core.protocol.Wire.u32;
import static io.vfu.core.protocol.Wire.u64;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The feature-specific data of a DEVICE_FEATURE message (protocol reference §10, §11.4), i.e. the bytes
 * after the 8-byte {@code argsz, flags} header. One record per shape; which one a message carries
 * depends on the feature index and the operation (see {@link DeviceFeatureRequest#decode} and
 * {@link DeviceFeatureReply#decode}).
 *
 * <p>Each payload is a fixed part plus an optional tail sent without copying (only the dirty bitmap of
 * {@link DmaLoggingReport} and the bytes of {@link Raw} use it). Offsets below are relative to the feature
 * data, i.e. payload offset 8.
 */
public sealed interface FeaturePayload {
    /** No data: GET requests of MIGRATION, MIG_DEVICE_STATE, MIG_DATA_SIZE, VFU_PRECOPY_INFO; DMA_LOGGING_STOP; an empty PROBE. */
    Empty EMPTY = new Empty();

    /** Bytes written by {@link #encodeFixed}. */
    int fixedSize();

    /** Writes the fixed part at offset 0 of {@code dst}. */
    void encodeFixed(MemorySegment dst);

    /** The part sent after the fixed part without copying; empty by default. */
    default MemorySegment tail() {
        return Wire.EMPTY;
    }

    /** Total data size: fixed part plus tail. */
    default long byteSize() {
        return fixedSize() + tail().byteSize();
    }

    /** No data. */
    record Empty() implements FeaturePayload {
        @Override
        public int fixedSize() {
            return 0;
        }

        @Override
        public void encodeFixed(MemorySegment dst) {
        }
    }

    /**
     * Bytes the codec does not interpret, kept verbatim so they can be echoed: the data of an unknown
     * feature index (the server decides the errno; libvfio-user answers EINVAL) and the data of a PROBE
     * (which the specification says is empty and nobody reads). Never empty when decoded (zero bytes
     * decode to {@link #EMPTY}). A slice of the input: valid as long as it; compared by content.
     */
    record Raw(MemorySegment bytes) implements FeaturePayload {
        @Override
        public int fixedSize() {
            return 0;
        }

        @Override
        public void encodeFixed(MemorySegment dst) {
        }

        @Override
        public MemorySegment tail() {
            return bytes;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Raw r && Fields.sameBytes(r.bytes, bytes);
        }

        @Override
        public int hashCode() {
            return Long.hashCode(bytes.byteSize());
        }

        static FeaturePayload of(MemorySegment data) {
            return data.byteSize() == 0 ? EMPTY : new Raw(data);
        }
    }

    /**
     * MIGRATION GET reply data (feature 1): {@code flags u64 @0}. STOP_COPY is mandatory for a migratable
     * device; libvfio-user always reports STOP_COPY|PRE_COPY (0x5). Unknown bits are kept.
     */
    record MigrationFlags(long flags) implements FeaturePayload {
        public static final int SIZE = 8;
        /** {@code VFIO_MIGRATION_STOP_COPY}. */
        public static final long STOP_COPY = 0x1;
        /** {@code VFIO_MIGRATION_P2P} (states 5 and 7; unused in vfio-user). */
        public static final long P2P = 0x2;
        /** {@code VFIO_MIGRATION_PRE_COPY}. */
        public static final long PRE_COPY = 0x4;

        public boolean stopCopy() {
            return (flags & STOP_COPY) != 0;
        }

        public boolean p2p() {
            return (flags & P2P) != 0;
        }

        public boolean preCopy() {
            return (flags & PRE_COPY) != 0;
        }

        @Override
        public int fixedSize() {
            return SIZE;
        }

        @Override
        public void encodeFixed(MemorySegment dst) {
            putU64(dst, 0, flags);
        }

        static MigrationFlags decode(MemorySegment data, String what) {
            Wire.requireExactly(data, SIZE, what);
            return new MigrationFlags(u64(data, 0));
        }
    }

    /**
     * MIG_DEVICE_STATE data (feature 2), SET request, its echo, and GET reply.
     *
     * <pre>
     *  0                  4               8
     * +------------------+---------------+
     * | device_state u32 |  data_fd u32  |
     * +------------------+---------------+
     * </pre>
     *
     * <p>{@code data_fd} is meaningless in vfio-user (data moves through MIG_DATA_READ/WRITE): send
     * {@link DeviceFeature#DATA_FD_NONE} (0xFFFFFFFF, the kernel's "no fd"), ignore it on receipt
     * (libvfio-user returns 0 in GET). The record keeps the received value only so that a SET echo is
     * byte-identical to the request (libvfio-user's sample client compares them byte for byte).
     * The state value is not range-checked here: that is the migration FSM's job.
     *
     * @param deviceState a migration state (u32, reference §11.1)
     * @param dataFd      as received; {@link DeviceFeature#DATA_FD_NONE} when built locally
     */
    record MigDeviceState(long deviceState, long dataFd) implements FeaturePayload {
        public static final int SIZE = 8;

        public MigDeviceState {
            Fields.requireU32(deviceState, "device_state");
            Fields.requireU32(dataFd, "data_fd");
        }

        /** A state with data_fd = 0xFFFFFFFF. */
        public MigDeviceState(long deviceState) {
            this(deviceState, DeviceFeature.DATA_FD_NONE);
        }

        @Override
        public int fixedSize() {
            return SIZE;
        }

        @Override
        public void encodeFixed(MemorySegment dst) {
            putU32(dst, 0, deviceState);
            putU32(dst, 4, dataFd);
        }

        static MigDeviceState decode(MemorySegment data, String what) {
            Wire.requireExactly(data, SIZE, what);
            return new MigDeviceState(u32(data, 0), u32(data, 4));
        }
    }

    /**
     * DMA_LOGGING_START data (feature 6), SET request and its echo (reference §11.4).
     *
     * <pre>
     *  0                               8                16               24
     * +-------------------------------+----------------+----------------+
     * |        page_size (u64)        | num_ranges u32 |  reserved u32  |
     * +-------------------------------+----------------+----------------+
     * | range 0: iova (u64)           | length (u64)                    |  × num_ranges
     * +-------------------------------+---------------------------------+
     * </pre>
     *
     * <p>The data must be exactly {@code 16 + 16·num_ranges} bytes (checked before the list is
     * allocated, so num_ranges is bounded by the payload) and no range may overflow u64; both EINVAL.
     * num_ranges 0 means "log every write". <b>reserved</b> is sent as 0 and <em>not</em> checked on
     * receipt: libvfio-user's sample client leaves it uninitialised, so rejecting non-zero values would
     * refuse a real peer. The received value is kept so the echo is byte-exact. page_size is a hint the
     * server may replace in its echo; its validity (libvfio-user: 0 → EINVAL) is the server's check.
     *
     * @param pageSize requested tracking granularity (u64)
     * @param reserved as received; 0 when built locally
     * @param ranges   the ranges to log (empty = all)
     */
    record DmaLoggingControl(long pageSize, long reserved, List<Range> ranges) implements FeaturePayload {
        public static final int HEADER_SIZE = 16;
        public static final int RANGE_SIZE = 16;
        /** Most ranges a record can hold (its fixed part must fit an {@code int}). */
        public static final int MAX_RANGES = (Integer.MAX_VALUE - 64) / RANGE_SIZE;

        /** One logged range, {@code iova + length} must not overflow u64. */
        public record Range(long iova, long length) {
        }

        public DmaLoggingControl {
            Fields.requireU32(reserved, "reserved");
            ranges = List.copyOf(ranges);
            if (ranges.size() > MAX_RANGES) {
                throw new IllegalArgumentException("too many ranges: " + ranges.size());
            }
        }

        public DmaLoggingControl(long pageSize, List<Range> ranges) {
            this(pageSize, 0, ranges);
        }

        /** {@code num_ranges}. */
        public int numRanges() {
            return ranges.size();
        }

        @Override
        public int fixedSize() {
            return HEADER_SIZE + RANGE_SIZE * ranges.size();
        }

        @Override
        public void encodeFixed(MemorySegment dst) {
            putU64(dst, 0, pageSize);
            putU32(dst, 8, ranges.size());
            putU32(dst, 12, reserved);
            long at = HEADER_SIZE;
            for (Range r : ranges) {
                putU64(dst, at, r.iova());
                putU64(dst, at + 8, r.length());
                at += RANGE_SIZE;
            }
        }

        static DmaLoggingControl decode(MemorySegment data, String what) {
            Wire.requireAtLeast(data, HEADER_SIZE, what);
            long numRanges = u32(data, 8);
            long rangeBytes = data.byteSize() - HEADER_SIZE;
            if (rangeBytes != numRanges * RANGE_SIZE) {
                throw VfioUserException.einval(what + ": num_ranges " + numRanges + " but " + rangeBytes
                        + " range bytes (16 per range)");
            }
            if (numRanges > MAX_RANGES) {
                throw VfioUserException.einval(what + ": num_ranges " + numRanges + " too large");
            }
            List<Range> ranges = new ArrayList<>((int) numRanges);
            for (long at = HEADER_SIZE; at < data.byteSize(); at += RANGE_SIZE) {
                long iova = u64(data, at);
                long length = u64(data, at + 8);
                Fields.requireNoOverflow(iova, length, what + ": range " + ranges.size() + " iova");
                ranges.add(new Range(iova, length));
            }
            return new DmaLoggingControl(u64(data, 0), u32(data, 12), ranges);
        }
    }

    /**
     * DMA_LOGGING_REPORT GET request data (feature 8): which range to report, at which granularity.
     *
     * <pre>
     *  0                  8                  16                 24
     * +------------------+------------------+------------------+
     * |    iova (u64)    |   length (u64)   | page_size (u64)  |
     * +------------------+------------------+------------------+
     * </pre>
     *
     * <p>page_size must be a power of two and {@code iova + length} must not overflow (EINVAL). Range
     * semantics (logging active, range inside one DMA region, length ≥ page_size in libvfio-user) are the
     * server's checks. The reply must be {@code 8 + 24 + }{@link #bitmapSize()} bytes.
     */
    record DmaLoggingReportQuery(long iova, long length, long pageSize) implements FeaturePayload {
        public static final int SIZE = 24;

        public DmaLoggingReportQuery {
            checkRange(iova, length, pageSize);
        }

        /** The bitmap size in bytes of the answer (≤ 2⁶¹, never overflows). */
        public long bitmapSize() {
            return DirtyBitmap.byteSize(length, pageSize);
        }

        @Override
        public int fixedSize() {
            return SIZE;
        }

        @Override
        public void encodeFixed(MemorySegment dst) {
            encodeRange(dst, iova, length, pageSize);
        }

        /** For the constructors of the query and of the report, which echoes it. */
        static void checkRange(long iova, long length, long pageSize) {
            if (!DirtyBitmap.isPowerOfTwo(pageSize)) {
                throw new IllegalArgumentException("page_size not a power of two: " + Long.toUnsignedString(pageSize));
            }
            if (!Fields.fitsU64(iova, length)) {
                throw new IllegalArgumentException("iova + length overflows u64");
            }
        }

        /** Writes the 24 bytes above; the report's fixed part is the same. */
        static void encodeRange(MemorySegment dst, long iova, long length, long pageSize) {
            putU64(dst, 0, iova);
            putU64(dst, 8, length);
            putU64(dst, 16, pageSize);
        }

        /**
         * Decodes the first 24 bytes; more bytes (a kernel-style output buffer, or the report's bitmap) are
         * ignored.
         */
        static DmaLoggingReportQuery decode(MemorySegment data, String what) {
            Wire.requireAtLeast(data, SIZE, what);
            long iova = u64(data, 0);
            long length = u64(data, 8);
            long pageSize = u64(data, 16);
            DirtyBitmap.requirePowerOfTwo(pageSize, what);
            Fields.requireNoOverflow(iova, length, what + ": iova");
            return new DmaLoggingReportQuery(iova, length, pageSize);
        }
    }

    /**
     * DMA_LOGGING_REPORT GET reply data (feature 8): the query echoed, then the dirty bitmap
     * ({@link DirtyBitmap}: bit n = page n, u64 little-endian words, LSB first).
     *
     * <pre>
     *  0                  8                  16                 24
     * +------------------+------------------+------------------+--------------...
     * |    iova (u64)    |   length (u64)   | page_size (u64)  | bitmap (8·ceil(ceil(length/page_size)/64) bytes)
     * +------------------+------------------+------------------+--------------...
     * </pre>
     *
     * <p>The decoder rejects (EINVAL) a page_size that is not a power of two, an overflowing range, and a
     * bitmap whose length differs from {@link DirtyBitmap#byteSize}. {@link #bitmap()} is a slice of the
     * input (no copy): valid as long as it; compared by content.
     */
    record DmaLoggingReport(long iova, long length, long pageSize, MemorySegment bitmap) implements FeaturePayload {
        public static final int FIXED_SIZE = DmaLoggingReportQuery.SIZE;

        public DmaLoggingReport {
            DmaLoggingReportQuery.checkRange(iova, length, pageSize);
            if (bitmap.byteSize() != DirtyBitmap.byteSize(length, pageSize)) {
                throw new IllegalArgumentException("bitmap " + bitmap.byteSize() + " bytes, expected "
                        + DirtyBitmap.byteSize(length, pageSize));
            }
        }

        /** The reply to {@code query} carrying {@code bitmap}. */
        public DmaLoggingReport(DmaLoggingReportQuery query, MemorySegment bitmap) {
            this(query.iova(), query.length(), query.pageSize(), bitmap);
        }

        @Override
        public int fixedSize() {
            return FIXED_SIZE;
        }

        @Override
        public void encodeFixed(MemorySegment dst) {
            DmaLoggingReportQuery.encodeRange(dst, iova, length, pageSize);
        }

        @Override
        public MemorySegment tail() {
            return bitmap;
        }

        static DmaLoggingReport decode(MemorySegment data, String what) {
            DmaLoggingReportQuery query = DmaLoggingReportQuery.decode(data, what);
            long expected = query.bitmapSize();
            long actual = data.byteSize() - FIXED_SIZE;
            if (actual != expected) {
                throw VfioUserException.einval(what + ": bitmap " + actual + " bytes, expected " + expected
                        + " for length " + Long.toUnsignedString(query.length()) + " page_size "
                        + Long.toUnsignedString(query.pageSize()));
            }
            return new DmaLoggingReport(query, data.asSlice(FIXED_SIZE));
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof DmaLoggingReport r && r.iova == iova && r.length == length && r.pageSize == pageSize
                    && Fields.sameBytes(r.bitmap, bitmap);
        }

        @Override
        public int hashCode() {
            return DataTail.hash(iova, length, pageSize);
        }
    }

    /**
     * MIG_DATA_SIZE GET reply data (feature 9, project extension, reference §11.8):
     * {@code stop_copy_length u64 @0}, the estimated bytes still to be read in STOP_COPY.
     */
    record MigDataSize(long stopCopyLength) implements FeaturePayload {
        public static final int SIZE = 8;

        @Override
        public int fixedSize() {
            return SIZE;
        }

        @Override
        public void encodeFixed(MemorySegment dst) {
            putU64(dst, 0, stopCopyLength);
        }

        static MigDataSize decode(MemorySegment data, String what) {
            Wire.requireExactly(data, SIZE, what);
            return new MigDataSize(u64(data, 0));
        }
    }

    /**
     * {@link DeviceFeature#VFU_PRECOPY_INFO} GET reply data (project-local feature 0xF001, reference
     * §11.8): the kernel's {@code VFIO_MIG_GET_PRECOPY_INFO} counters, without its argsz/flags header
     * (the feature header plays that role).
     *
     * <pre>
     *  0                      8                     16
     * +----------------------+---------------------+
     * | initial_bytes (u64)  |  dirty_bytes (u64)  |
     * +----------------------+---------------------+
     * </pre>
     *
     * <p>Both 0 in PRE_COPY means "no data right now" (the kernel's ENOMSG case).
     */
    record PrecopyInfo(long initialBytes, long dirtyBytes) implements FeaturePayload {
        public static final int SIZE = 16;

        @Override
        public int fixedSize() {
            return SIZE;
        }

        @Override
        public void encodeFixed(MemorySegment dst) {
            putU64(dst, 0, initialBytes);
            putU64(dst, 8, dirtyBytes);
        }

        static PrecopyInfo decode(MemorySegment data, String what) {
            Wire.requireExactly(data, SIZE, what);
            return new PrecopyInfo(u64(data, 0), u64(data, 8));
        }
    }
}
