package io.vfu.core.protocol;

import static io.vfu.core.protocol.Bytes.encode;
import static io.vfu.core.protocol.Bytes.hex;
import static io.vfu.core.protocol.Bytes.norm;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/** DEVICE_GET_IRQ_INFO, DEVICE_SET_IRQS and DEVICE_RESET golden bytes (protocol reference §8.5, §8.6, §9.3). */
class IrqAndResetTest {
    static final String IRQ_INFO_REQUEST = "10 00 00 00  00 00 00 00  02 00 00 00  00 00 00 00"; // MSI-X
    // argsz 16, flags EVENTFD|MASKABLE, index 2, count 2048
    static final String IRQ_INFO_REPLY = "10 00 00 00  03 00 00 00  02 00 00 00  00 08 00 00";
    // the libvfio-user sample client: argsz 20, DATA_EVENTFD|ACTION_TRIGGER, INTx, start 0, count 1
    static final String SET_IRQS_EVENTFD = "14 00 00 00  24 00 00 00  00 00 00 00  00 00 00 00  01 00 00 00";
    // argsz 23, DATA_BOOL|ACTION_MASK, MSI-X, start 4, count 3, data {1, 0, 1}
    static final String SET_IRQS_BOOL = "17 00 00 00  0a 00 00 00  02 00 00 00  04 00 00 00  03 00 00 00  01 00 01";
    // disable all of MSI: DATA_NONE|ACTION_TRIGGER, start 0, count 0
    static final String SET_IRQS_DISABLE = "14 00 00 00  21 00 00 00  01 00 00 00  00 00 00 00  00 00 00 00";

    static void fails(Errno errno, Function<MemorySegment, ?> decoder, String bytes) {
        assertThatThrownBy(() -> decoder.apply(hex(bytes)))
                .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(errno));
    }

    @Test
    void irqInfoBytes() {
        assertThat(encode(new IrqInfoRequest(IrqIndex.MSIX))).isEqualTo(norm(IRQ_INFO_REQUEST));
        assertThat(IrqInfoRequest.decode(hex(IRQ_INFO_REQUEST))).isEqualTo(new IrqInfoRequest(16, 2));
        IrqInfoReply reply = new IrqInfoReply(IrqInfoReply.FLAG_EVENTFD | IrqInfoReply.FLAG_MASKABLE, IrqIndex.MSIX, 2048);
        assertThat(encode(reply)).isEqualTo(norm(IRQ_INFO_REPLY));
        assertThat(IrqInfoReply.decode(hex(IRQ_INFO_REPLY))).isEqualTo(reply);
    }

    @Test
    void irqIndexRangeIsTheServersBusiness() {
        // index 7 is beyond a PCI device's 5 IRQ types, but only the server knows num_irqs
        assertThat(IrqInfoRequest.decode(hex("10 00 00 00  00 00 00 00  07 00 00 00  00 00 00 00")).index()).isEqualTo(7);
        // other request fields are not checked (ambiguity #31)
        assertThat(IrqInfoRequest.decode(hex("20 00 00 00  ff 00 00 00  04 00 00 00  09 00 00 00")))
                .isEqualTo(new IrqInfoRequest(32, 4));
    }

    @Test
    void malformedIrqInfo() {
        fails(Errno.EINVAL, IrqInfoRequest::decode, "10 00 00 00  00 00 00 00  02 00 00 00");
        fails(Errno.EINVAL, IrqInfoRequest::decode, "0f 00 00 00  00 00 00 00  02 00 00 00  00 00 00 00");
        fails(Errno.EINVAL, IrqInfoReply::decode, IRQ_INFO_REPLY + " 00");
        fails(Errno.EINVAL, IrqInfoReply::decode, "08 00 00 00  03 00 00 00  02 00 00 00  00 08 00 00");
    }

    @Test
    void setIrqsEventfdBytes() {
        SetIrqsRequest req = new SetIrqsRequest(SetIrqsRequest.DATA_EVENTFD | SetIrqsRequest.ACTION_TRIGGER, IrqIndex.INTX, 0, 1);
        assertThat(encode(req)).isEqualTo(norm(SET_IRQS_EVENTFD));
        SetIrqsRequest decoded = SetIrqsRequest.decode(hex(SET_IRQS_EVENTFD));
        assertThat(decoded).isEqualTo(req);
        assertThat(decoded.dataType()).isEqualTo(SetIrqsRequest.DATA_EVENTFD);
        assertThat(decoded.action()).isEqualTo(SetIrqsRequest.ACTION_TRIGGER);
        assertThat(encode(new SetIrqsReply())).isEmpty();
        assertThat(SetIrqsReply.decode(hex(""))).isEqualTo(new SetIrqsReply());
    }

    @Test
    void setIrqsBoolBytes() {
        SetIrqsRequest req = SetIrqsRequest.bools(SetIrqsRequest.ACTION_MASK, IrqIndex.MSIX, 4, true, false, true);
        assertThat(encode(req)).isEqualTo(norm(SET_IRQS_BOOL));
        SetIrqsRequest decoded = SetIrqsRequest.decode(hex(SET_IRQS_BOOL));
        assertThat(decoded).isEqualTo(req).hasSameHashCodeAs(req);
        assertThat(decoded.data().byteSize()).isEqualTo(3);
        assertThat(decoded.selected(0)).isTrue();
        assertThat(decoded.selected(1)).isFalse();
        assertThat(decoded.selected(2)).isTrue();
        // split read: fixed part and data tail
        MemorySegment all = hex(SET_IRQS_BOOL);
        assertThat(SetIrqsRequest.decode(all.asSlice(0, 20), all.asSlice(20))).isEqualTo(req);
        // only the value 1 means true (libvfio-user)
        assertThat(SetIrqsRequest.decode(hex(SET_IRQS_BOOL.replace("01 00 01", "02 00 01"))).selected(0)).isFalse();
    }

    @Test
    void setIrqsDisableAll() {
        SetIrqsRequest req = new SetIrqsRequest(SetIrqsRequest.DATA_NONE | SetIrqsRequest.ACTION_TRIGGER, IrqIndex.MSI, 0, 0);
        assertThat(encode(req)).isEqualTo(norm(SET_IRQS_DISABLE));
        assertThat(SetIrqsRequest.decode(hex(SET_IRQS_DISABLE))).isEqualTo(req);
    }

    @Test
    void malformedSetIrqs() {
        fails(Errno.EINVAL, SetIrqsRequest::decode, "14 00 00 00  24 00 00 00  00 00 00 00  00 00 00 00  01 00 00"); // 19 bytes
        fails(Errno.EINVAL, SetIrqsRequest::decode, "13" + SET_IRQS_EVENTFD.substring(2)); // argsz 19
        fails(Errno.EINVAL, SetIrqsRequest::decode, SET_IRQS_EVENTFD.replace("24 00", "64 00")); // reserved bit 6
        fails(Errno.EINVAL, SetIrqsRequest::decode, SET_IRQS_EVENTFD.replace("24 00 00 00", "24 00 00 01")); // bit 24
        fails(Errno.EINVAL, SetIrqsRequest::decode, SET_IRQS_EVENTFD.replace("24 00", "26 00")); // two DATA bits
        fails(Errno.EINVAL, SetIrqsRequest::decode, SET_IRQS_EVENTFD.replace("24 00", "34 00")); // two ACTION bits
        fails(Errno.EINVAL, SetIrqsRequest::decode, SET_IRQS_EVENTFD.replace("24 00", "04 00")); // no ACTION
        fails(Errno.EINVAL, SetIrqsRequest::decode, SET_IRQS_EVENTFD.replace("24 00", "20 00")); // no DATA
        fails(Errno.EINVAL, SetIrqsRequest::decode, SET_IRQS_BOOL.substring(0, SET_IRQS_BOOL.length() - 3)); // 2 of 3 bools
        fails(Errno.EINVAL, SetIrqsRequest::decode, SET_IRQS_BOOL + " 01"); // 4 of 3 bools
        fails(Errno.EINVAL, SetIrqsRequest::decode, SET_IRQS_EVENTFD + " 01"); // data without DATA_BOOL
        fails(Errno.EINVAL, SetIrqsRequest::decode,
                "14 00 00 00  21 00 00 00  02 00 00 00  ff ff ff ff  02 00 00 00"); // start + count overflows u32
        fails(Errno.EINVAL, SetIrqsRequest::decode,
                "14 00 00 00  21 00 00 00  02 00 00 00  01 00 00 00  00 00 00 00"); // count 0, start 1
        fails(Errno.EINVAL, SetIrqsRequest::decode,
                "14 00 00 00  24 00 00 00  02 00 00 00  00 00 00 00  00 00 00 00"); // count 0 with EVENTFD
        fails(Errno.EINVAL, SetIrqsReply::decode, "00");
    }

    @Test
    void setIrqsLargestRangeIsAccepted() {
        SetIrqsRequest r = SetIrqsRequest.decode(hex("14 00 00 00  11 00 00 00  02 00 00 00  fe ff ff ff  01 00 00 00"));
        assertThat(r.start() + r.count()).isEqualTo(0xFFFF_FFFFL);
    }

    @Test
    void deviceResetIsEmpty() {
        assertThat(encode(new DeviceResetRequest())).isEmpty();
        assertThat(encode(new DeviceResetReply())).isEmpty();
        assertThat(DeviceResetRequest.decode(hex(""))).isEqualTo(new DeviceResetRequest());
        assertThat(DeviceResetReply.decode(hex(""))).isEqualTo(new DeviceResetReply());
        fails(Errno.EINVAL, DeviceResetReply::decode, "00");
    }

    @Test
    void indexNames() {
        assertThat(IrqIndex.name(IrqIndex.MSIX)).isEqualTo("MSIX");
        assertThat(IrqIndex.name(9)).isEqualTo("#9");
        assertThat(RegionIndex.name(RegionIndex.bar(3))).isEqualTo("BAR3");
        assertThat(RegionIndex.name(RegionIndex.CONFIG)).isEqualTo("CONFIG");
        assertThat(RegionIndex.name(0xFFFF_FFFFL)).isEqualTo("#4294967295");
    }
}
