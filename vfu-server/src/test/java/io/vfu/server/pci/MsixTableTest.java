package io.vfu.server.pci;

import static io.vfu.server.pci.ConfigSpaceTest.assertEinval;
import static io.vfu.server.pci.Specs.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/** MSI-X table and PBA (PCI 3.0 §6.8.2): 8 vectors, table at BAR4 + 0, PBA at BAR4 + 0x2000. */
class MsixTableTest {
    private final Events events = new Events();
    private final ConfigSpace cs = new ConfigSpace(full(), events);
    private final MsixTable t = cs.msixTable();

    private String readTable(long offset, int len) {
        MemorySegment dst = MemorySegment.ofArray(new byte[len]);
        t.read(4, offset, dst);
        return HexFormat.ofDelimiter(" ").formatHex(dst.toArray(ValueLayout.JAVA_BYTE));
    }

    @Test
    void geometry() {
        assertThat(t.vectors()).isEqualTo(8);
        assertThat(t.tableBar()).isEqualTo(4);
        assertThat(t.tableOffset()).isZero();
        assertThat(t.tableSize()).isEqualTo(0x80);
        assertThat(t.pbaBar()).isEqualTo(4);
        assertThat(t.pbaOffset()).isEqualTo(0x2000);
        assertThat(t.pbaSize()).isEqualTo(8);
        assertThat(t.covers(4, 0x7c, 4)).isTrue();
        assertThat(t.covers(4, 0x70, 0x100)).isTrue();
        assertThat(t.covers(4, 0x80, 0x1f80)).isFalse();
        assertThat(t.covers(4, 0x1ff0, 0x11)).isTrue();
        assertThat(t.covers(4, 0x2008, 8)).isFalse();
        assertThat(t.covers(0, 0, 4)).isFalse();
        assertThat(t.covers(4, 0x10, 0)).isFalse();
        assertThat(new ConfigSpace(conventional(), null).msixTable()).isNull();
    }

    @Test
    void powerOnEntriesAreZeroAndMasked() {
        for (int v = 0; v < 8; v++) {
            assertThat(readTable(16L * v, 8)).isEqualTo(norm("00 00 00 00  00 00 00 00"));
            assertThat(readTable(16L * v + 8, 8)).isEqualTo(norm("00 00 00 00  01 00 00 00"));
        }
        for (int v = 0; v < 8; v++) {
            assertThat(t.vectorMasked(v)).isTrue();
        }
    }

    @Test
    void entryWriteReadAndMaskEvents() {
        t.write(4, 0x20, hex("00 20 e0 fe  00 00 00 00"));   // vector 2 address (QWORD)
        t.write(4, 0x28, hex("41 00 00 00"));                // data
        assertThat(events.take()).isEmpty();
        t.write(4, 0x2c, hex("fe ff ff ff"));                // mask bit 0, reserved bits ignored
        assertThat(readTable(0x28, 8)).isEqualTo(norm("41 00 00 00  00 00 00 00"));
        assertThat(events.take()).containsExactly("msixMask 2 false");
        assertThat(t.vectorMasked(2)).isFalse();
        assertThat(t.address(2)).isEqualTo(0xfee0_2000L);
        assertThat(t.data(2)).isEqualTo(0x41);
        t.write(4, 0x28, hex("42 00 00 00  ff ff ff ff"));   // data + vector control as one QWORD
        assertThat(readTable(0x28, 8)).isEqualTo(norm("42 00 00 00  01 00 00 00"));
        assertThat(events.take()).containsExactly("msixMask 2 true");
        t.write(4, 0x24, hex("01 00 00 00"));                // upper address
        assertThat(t.address(2)).isEqualTo(0x1_fee0_2000L);
        assertThat(t.data(2)).isEqualTo(0x42);
        assertThat(t.vectorMasked(3)).isTrue();
        assertThatThrownBy(() -> t.vectorMasked(8)).isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void pbaIsReadOnlyAndReflectsPendingSource() {
        t.pendingSource(v -> v == 1 || v == 7 || v == 9);
        assertThat(readTable(0x2000, 8)).isEqualTo(norm("82 00 00 00  00 00 00 00"));
        assertThat(readTable(0x2000, 4)).isEqualTo(norm("82 00 00 00"));
        assertThat(readTable(0x2004, 4)).isEqualTo(norm("00 00 00 00"));
        t.write(4, 0x2000, hex("ff ff ff ff  ff ff ff ff"));
        assertThat(readTable(0x2000, 8)).isEqualTo(norm("82 00 00 00  00 00 00 00"));
        t.pendingSource(v -> false);
        assertThat(readTable(0x2000, 8)).isEqualTo(norm("00 00 00 00  00 00 00 00"));
        assertThat(events.take()).isEmpty();
    }

    @Test
    void unalignedOddSizedOrOutsideAccessesFail() {
        assertEinval(() -> t.read(4, 0x02, MemorySegment.ofArray(new byte[4])));  // unaligned
        assertEinval(() -> t.read(4, 0x04, MemorySegment.ofArray(new byte[8])));  // QWORD on DWORD boundary
        assertEinval(() -> t.read(4, 0x00, MemorySegment.ofArray(new byte[2])));  // WORD
        assertEinval(() -> t.read(4, 0x00, MemorySegment.ofArray(new byte[16]))); // more than a QWORD
        assertEinval(() -> t.read(4, 0x80, MemorySegment.ofArray(new byte[4])));  // past the table
        assertEinval(() -> t.read(4, 0x2008, MemorySegment.ofArray(new byte[4]))); // past the PBA
        assertEinval(() -> t.read(0, 0x00, MemorySegment.ofArray(new byte[4])));  // other BAR
        assertEinval(() -> t.read(4, -8, MemorySegment.ofArray(new byte[8])));
        assertEinval(() -> t.write(4, 0x0d, MemorySegment.ofArray(new byte[1])));
        assertEinval(() -> t.write(4, 0x7c, MemorySegment.ofArray(new byte[8])));
    }
}
