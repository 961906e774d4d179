package io.vfu.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.core.protocol.IrqIndex;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.server.pci.Capability;
import io.vfu.server.pci.PciIdentity;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's "write your first device" example, kept compiling and working. */
class FirstDeviceExampleTest {
    @TempDir
    Path dir;

    // README example start
    /** A counter device: BAR0 register 0 counts writes; writing raises MSI-X vector 0. */
    static final class Counter implements RegionHandler {
        private long count;
        private DeviceContext ctx;

        PciDevice device() {
            return PciDevice.builder()
                    .identity(new PciIdentity(0x1234, 0x5678, 0x1234, 0x0001, 0xff0000, 1))
                    .bar(0, Bar.mem32(Region.trapped(0x1000, this)))
                    .bar(1, Bar.mem32(Region.trapped(0x4000, RegionHandler.none()))) // MSI-X table + PBA
                    .capability(new Capability.Msix(1, 1, 0, 1, 0x2000))
                    .capability(Capability.PciExpress.endpoint())
                    .onAttach(context -> ctx = context)
                    .build();
        }

        @Override
        public void read(long offset, MemorySegment dst) {
            if (offset != 0 || dst.byteSize() != 8) {              // the library checked the region bounds;
                throw VfioUserException.einval("one u64 at 0"); // register layout is the device's business
            }
            dst.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, count);
        }

        @Override
        public void write(long offset, MemorySegment src) {
            count++;
            ctx.irqs().trigger(IrqIndex.MSIX, 0);
        }
    }
    // README example end

    @Test
    void theExampleServes() throws Exception {
        Counter counter = new Counter();
        try (VfioUserServer server = VfioUserServer.start(counter.device(), dir.resolve("counter.sock"));
             TestClient client = TestClient.connect(server.socketPath(), true)) {
            client.writeU64(0, 0, 1);
            client.writeU64(0, 0, 1);
            assertThat(client.readU64(0, 0)).isEqualTo(2);
        }
    }
}
