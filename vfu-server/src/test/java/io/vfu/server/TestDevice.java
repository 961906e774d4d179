package io.vfu.server;

import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.MigrationFeatures;
import io.vfu.core.protocol.MigrationState;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.protocol.Wire;
import io.vfu.server.pci.Capability;
import io.vfu.server.pci.ExtendedCapability;
import io.vfu.server.pci.PciIdentity;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A device for server tests.
 *
 * <ul>
 * <li>BAR0 (4 KiB, trapped): 64 scratch u64 registers at 0x000–0x1ff; 0x200 DMA doorbell: writing an IOVA
 *     makes the device write 16 bytes (0xA5 pattern) there through {@link Dma}; 0x208: writing v triggers MSI-X
 *     vector v; 0x210: writing an IOVA makes the device read 8 bytes there (into a heap segment) and store them
 *     in register 0; 0x218: the same into native memory, stored in register 1.</li>
 * <li>BAR2 (64 KiB, memory, first 32 KiB mmap-able, rest trapped to memory).</li>
 * <li>BAR4 (16 KiB, memory, not mmap-able): MSI-X table at 0 (8 vectors), PBA at 0x2000.</li>
 * <li>PM, MSI (4 vectors), MSI-X, PCIe, vendor capability; DSN extended capability.</li>
 * <li>Migration: the stream is [registers 512 bytes][BAR2 64 KiB]; PRE_COPY sends it in the pre-copy phase,
 *     then STOP_COPY sends it again (full image, simple and correct).</li>
 * </ul>
 */
final class TestDevice implements RegionHandler, MigrationHandler, AutoCloseable {
    static final PciIdentity IDENTITY = new PciIdentity(0x1de5, 0x0042, 0x1de5, 0x0001, 0xff0000, 3);
    static final int REGS = 64;
    static final long BAR2_SIZE = 0x10000;

    final long[] registers = new long[REGS];
    final MigrationFeatures features;
    final List<String> arcs = new ArrayList<>();
    final List<ResetReason> resets = new ArrayList<>();
    final AtomicInteger transitionFailures = new AtomicInteger();
    volatile DeviceContext context;
    private ByteArrayOutputStream incoming;
    private ByteBuffer outgoing;
    boolean failNextTransition;
    boolean breakNextTransition;
    /** A doorbell at BAR0 0x300 the client may signal directly (DEVICE_GET_REGION_IO_FDS). */
    final io.vfu.core.linux.EventFd doorbell;

    TestDevice(MigrationFeatures features) {
        this.features = features;
        try {
            this.doorbell = io.vfu.core.linux.EventFd.create(0, false, true);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        doorbell.close();
    }

    PciDevice build() {
        return PciDevice.builder()
                .identity(IDENTITY)
                .bar(0, Bar.mem32(Region.trapped(0x1000, this)))
                .bar(2, Bar.mem64(Region.sparse(BAR2_SIZE, null, List.of(new MmapArea(0, 0x8000)))).asPrefetchable())
                .bar(4, Bar.mem32(new Region(0x4000, true, true, null, true, List.of())))
                .capability(Capability.PowerManagement.standard())
                .capability(new Capability.Msi(4, true, true))
                .capability(new Capability.Msix(8, 4, 0, 4, 0x2000))
                .capability(Capability.PciExpress.endpoint())
                .capability(new Capability.VendorSpecific(new byte[] {1, 2, 3, 4}))
                .extendedCapability(new ExtendedCapability.DeviceSerialNumber(0x0123_4567_89ab_cdefL))
                .ioEventFd(new IoEventFd(0, 0x300, 4, java.util.OptionalLong.of(1), doorbell))
                .migration(features == null ? null : this)
                .reset(resets::add)
                .onAttach(ctx -> context = ctx)
                .build();
    }

    MemorySegment bar2() {
        return context.regionMemory(2);
    }

    // ---- BAR0

    @Override
    public void read(long offset, MemorySegment dst) {
        if (offset + dst.byteSize() > REGS * 8L || (offset & 7) + dst.byteSize() > 8) {
            throw VfioUserException.einval("BAR0 read at " + offset + " size " + dst.byteSize());
        }
        long v = registers[(int) (offset >>> 3)] >>> (8 * (offset & 7));
        for (int i = 0; i < dst.byteSize(); i++) {
            dst.set(ValueLayout.JAVA_BYTE, i, (byte) (v >>> (8 * i)));
        }
    }

    @Override
    public void write(long offset, MemorySegment src) {
        if (offset % src.byteSize() != 0) {
            throw VfioUserException.einval("BAR0 unaligned write at " + offset + " size " + src.byteSize());
        }
        if (src.byteSize() != 8 && offset < REGS * 8L) {
            registers[(int) (offset >>> 3)] = 0; // partial writes clear: keep the model simple
        }
        long value = src.byteSize() == 8 ? Wire.u64(src, 0) : (src.byteSize() == 4 ? Wire.u32(src, 0) : -1);
        if (offset < REGS * 8L) {
            registers[(int) (offset >>> 3)] = value;
        } else if (offset == 0x200) {
            MemorySegment pattern = MemorySegment.ofArray(new byte[16]).fill((byte) 0xA5);
            context.dma().write(value, pattern);
        } else if (offset == 0x208) {
            context.irqs().trigger(IrqIndex.MSIX, (int) value);
        } else if (offset == 0x210) {
            MemorySegment eight = MemorySegment.ofArray(new byte[8]);
            context.dma().read(value, eight);
            registers[0] = Wire.u64(eight, 0);
        } else if (offset == 0x218) {
            try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                MemorySegment native8 = arena.allocate(8); // a DMA_READ reply lands in it directly
                context.dma().read(value, native8);
                registers[1] = Wire.u64(native8, 0);
            }
        } else {
            throw VfioUserException.einval("BAR0 write at " + offset);
        }
    }

    // ---- migration

    @Override
    public MigrationFeatures features() {
        return features;
    }

    @Override
    public void transition(MigrationState from, MigrationState to) {
        if (breakNextTransition) {
            breakNextTransition = false;
            throw new DeviceErrorException("test: device broken");
        }
        if (failNextTransition) {
            failNextTransition = false;
            transitionFailures.incrementAndGet();
            throw new VfioUserException(io.vfu.core.linux.Errno.EBUSY, "test failure");
        }
        arcs.add(from + "->" + to);
        if ((from == MigrationState.RUNNING && to == MigrationState.PRE_COPY)
                || (from == MigrationState.RUNNING_P2P && to == MigrationState.PRE_COPY_P2P)
                || (from == MigrationState.STOP && to == MigrationState.STOP_COPY)
                || (from.isSaving() && to == MigrationState.STOP_COPY)) {
            outgoing = snapshot();
        } else if (to == MigrationState.RESUMING) {
            incoming = new ByteArrayOutputStream();
        } else if (from == MigrationState.RESUMING && to == MigrationState.STOP) {
            byte[] all = incoming.toByteArray();
            incoming = null;
            int size = (int) (REGS * 8 + BAR2_SIZE);
            if (all.length == 0 || all.length % size != 0) {
                throw new VfioUserException(io.vfu.core.linux.Errno.EINVAL, "bad stream length " + all.length);
            }
            // The stream is one or more full images (pre-copy, then stop-copy): the last one wins.
            byte[] image = java.util.Arrays.copyOfRange(all, all.length - size, all.length);
            ByteBuffer b = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < REGS; i++) {
                registers[i] = b.getLong();
            }
            bar2().copyFrom(MemorySegment.ofArray(image).asSlice(REGS * 8L));
        } else if (!to.isSaving()) {
            outgoing = null;
        }
    }

    private ByteBuffer snapshot() {
        ByteBuffer b = ByteBuffer.allocate((int) (REGS * 8 + BAR2_SIZE)).order(ByteOrder.LITTLE_ENDIAN);
        for (long r : registers) {
            b.putLong(r);
        }
        b.put(bar2().toArray(ValueLayout.JAVA_BYTE));
        return b.flip();
    }

    @Override
    public long readData(MemorySegment dst) {
        if (outgoing == null) {
            return 0;
        }
        int n = (int) Math.min(dst.byteSize(), outgoing.remaining());
        MemorySegment.copy(MemorySegment.ofBuffer(outgoing), 0, dst, 0, n);
        outgoing.position(outgoing.position() + n);
        return n;
    }

    @Override
    public void writeData(MemorySegment src) {
        incoming.writeBytes(src.toArray(ValueLayout.JAVA_BYTE));
    }

    @Override
    public long stopCopySize() {
        return REGS * 8 + BAR2_SIZE;
    }
}
