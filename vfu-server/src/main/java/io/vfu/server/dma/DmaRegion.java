package io.vfu.server.dma;

import io.vfu.core.linux.Mapping;
import io.vfu.core.protocol.DmaMapRequest;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** One DMA_MAP'ed range (immutable; its mapping is closed by the controller once the range left the table). */
final class DmaRegion {
    final long iova;
    final long size;
    /** {@code iova + size}: never wraps (the last byte of the address space cannot be mapped). */
    final long end;
    final int flags;
    final long offset;
    final boolean hasFd;
    /** Identity of the fd's file, or null (no fd, or not determinable). */
    final FileId file;
    /** The shared mapping (fd-backed and accessible regions only), else null. */
    final Mapping mapping;
    /** Exactly the {@code size} mapped bytes at {@code iova} (inside {@link #mapping}), else null. */
    final MemorySegment view;

    DmaRegion(DmaMapRequest request, boolean hasFd, FileId file, Mapping mapping, long delta) {
        this.iova = request.address();
        this.size = request.size();
        this.end = iova + size;
        this.flags = request.flags();
        this.offset = request.offset();
        this.hasFd = hasFd;
        this.file = file;
        this.mapping = mapping;
        this.view = mapping == null ? null : mapping.segment().asSlice(delta, size);
    }

    boolean readable() {
        return (flags & DmaMapRequest.FLAG_READ) != 0;
    }

    boolean writable() {
        return (flags & DmaMapRequest.FLAG_WRITE) != 0;
    }

    /** Accessed directly through {@link #view} rather than by DMA_READ/DMA_WRITE messages. */
    boolean direct() {
        return view != null;
    }

    boolean contains(long address) {
        return Long.compareUnsigned(address, iova) >= 0 && Long.compareUnsigned(address, end) < 0;
    }

    /**
     * Whether {@code request} (with or without an fd of identity {@code otherFile}) maps exactly this range
     * again: same address, size, offset, flags, fd presence, and the same file when both identities are known.
     */
    boolean sameAs(DmaMapRequest request, boolean otherHasFd, FileId otherFile) {
        return request.address() == iova && request.size() == size && request.offset() == offset
                && request.flags() == flags && otherHasFd == hasFd
                && (file == null || otherFile == null || file.equals(otherFile));
    }

    @Override
    public String toString() {
        return "[0x" + Long.toHexString(iova) + ", 0x" + Long.toHexString(end) + ")"
                + (readable() ? " R" : " -") + (writable() ? "W" : "-") + (hasFd ? " fd" : " msg");
    }

    /** A file's identity (fstat {@code st_dev}, {@code st_ino}). */
    record FileId(long dev, long ino) {
        /** The identity of open descriptor {@code fd} (stat of {@code /proc/self/fd/N}), or null if unknown. */
        static FileId of(int fd) {
            try {
                Map<String, Object> a = Files.readAttributes(Path.of("/proc/self/fd/" + fd), "unix:dev,ino");
                return new FileId(((Number) a.get("dev")).longValue(), ((Number) a.get("ino")).longValue());
            } catch (IOException | RuntimeException e) {
                return null;
            }
        }
    }
}
