package io.vfu.core.protocol;

import static io.vfu.core.protocol.Bytes.encode;
import static io.vfu.core.protocol.Bytes.hex;
import static io.vfu.core.protocol.Bytes.norm;
import static io.vfu.core.protocol.Rejects.einval;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.core.protocol.FeaturePayload.DmaLoggingControl;
import io.vfu.core.protocol.FeaturePayload.DmaLoggingReport;
import io.vfu.core.protocol.FeaturePayload.DmaLoggingReportQuery;
import io.vfu.core.protocol.FeaturePayload.MigDataSize;
import io.vfu.core.protocol.FeaturePayload.MigDeviceState;
import io.vfu.core.protocol.FeaturePayload.MigrationFlags;
import io.vfu.core.protocol.FeaturePayload.PrecopyInfo;
import io.vfu.core.protocol.FeaturePayload.Raw;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.junit.jupiter.api.Test;

/** DEVICE_FEATURE golden bytes, from protocol reference §10 and §11.4 (flags: index | GET 0x10000 | SET 0x20000 | PROBE 0x40000). */
class DeviceFeatureTest {
    // GET MIGRATION: argsz 16, flags 0x00010001; reply flags STOP_COPY|PRE_COPY
    static final String GET_MIGRATION = "10 00 00 00  01 00 01 00";
    static final String GET_MIGRATION_REPLY = "10 00 00 00  01 00 01 00  05 00 00 00 00 00 00 00";
    // GET MIG_DEVICE_STATE: flags 0x00010002; reply RUNNING (2), data_fd -1
    static final String GET_STATE = "10 00 00 00  02 00 01 00";
    static final String GET_STATE_REPLY = "10 00 00 00  02 00 01 00  02 00 00 00  ff ff ff ff";
    // SET MIG_DEVICE_STATE PRE_COPY (6), as libvfio-user's sample client sends it; the reply is identical
    static final String SET_STATE = "10 00 00 00  02 00 02 00  06 00 00 00  ff ff ff ff";
    // SET DMA_LOGGING_START page 4096, no ranges (24-byte payload)
    static final String START = "18 00 00 00  06 00 02 00  00 10 00 00 00 00 00 00  00 00 00 00  00 00 00 00";
    // SET DMA_LOGGING_START page 4096, ranges [0, 1 MiB) and [1 GiB, +4 KiB)
    static final String START_2 = "38 00 00 00  06 00 02 00  00 10 00 00 00 00 00 00  02 00 00 00  00 00 00 00"
            + "  00 00 00 00 00 00 00 00  00 00 10 00 00 00 00 00"
            + "  00 00 00 40 00 00 00 00  00 10 00 00 00 00 00 00";
    // SET DMA_LOGGING_STOP
    static final String STOP = "08 00 00 00  07 00 02 00";
    // SET DMA_LOGGING_STOP as libvfio-user's sample client sends it: argsz 24, page 4096, no ranges
    static final String STOP_SAMPLE_CLIENT = "18 00 00 00  07 00 02 00  00 10 00 00 00 00 00 00  00 00 00 00  00 00 00 00";
    // GET DMA_LOGGING_REPORT iova 0x1000, length 0x1000, page 0x1000: argsz 8 + 24 + 8 = 40
    static final String REPORT = "28 00 00 00  08 00 01 00  00 10 00 00 00 00 00 00  00 10 00 00 00 00 00 00"
            + "  00 10 00 00 00 00 00 00";
    static final String REPORT_REPLY = REPORT + "  01 00 00 00 00 00 00 00";
    // PROBE GET|SET of MIG_DEVICE_STATE: flags 0x00070002
    static final String PROBE = "08 00 00 00  02 00 07 00";
    // GET MIG_DATA_SIZE (9): reply 1 MiB
    static final String GET_SIZE = "10 00 00 00  09 00 01 00";
    static final String GET_SIZE_REPLY = "10 00 00 00  09 00 01 00  00 00 10 00 00 00 00 00";
    // GET VFU_PRECOPY_INFO (0xf001): reply initial 0x2000, dirty 0x300
    static final String GET_PRECOPY = "18 00 00 00  01 f0 01 00";
    static final String GET_PRECOPY_REPLY = "18 00 00 00  01 f0 01 00  00 20 00 00 00 00 00 00  00 03 00 00 00 00 00 00";

    @Test
    void getMigration() {
        DeviceFeatureRequest request = DeviceFeatureRequest.get(DeviceFeature.MIGRATION);
        assertThat(encode(request)).isEqualTo(norm(GET_MIGRATION));
        assertThat(DeviceFeatureRequest.decode(hex(GET_MIGRATION))).isEqualTo(request);
        assertThat(request.isGet()).isTrue();
        assertThat(request.feature()).isEqualTo(1);

        DeviceFeatureReply reply = DeviceFeatureReply.get(DeviceFeature.MIGRATION,
                new MigrationFlags(MigrationFlags.STOP_COPY | MigrationFlags.PRE_COPY));
        assertThat(encode(reply)).isEqualTo(norm(GET_MIGRATION_REPLY));
        DeviceFeatureReply decoded = DeviceFeatureReply.decode(hex(GET_MIGRATION_REPLY));
        assertThat(decoded).isEqualTo(reply);
        assertThat(((MigrationFlags) decoded.featureData()).preCopy()).isTrue();
    }

    @Test
    void getAndSetDeviceState() {
        DeviceFeatureRequest get = DeviceFeatureRequest.get(DeviceFeature.MIG_DEVICE_STATE);
        assertThat(encode(get)).isEqualTo(norm(GET_STATE));
        assertThat(DeviceFeatureRequest.decode(hex(GET_STATE))).isEqualTo(get);
        DeviceFeatureReply getReply = DeviceFeatureReply.get(DeviceFeature.MIG_DEVICE_STATE, new MigDeviceState(2));
        assertThat(encode(getReply)).isEqualTo(norm(GET_STATE_REPLY));
        assertThat(DeviceFeatureReply.decode(hex(GET_STATE_REPLY))).isEqualTo(getReply);
        // libvfio-user returns data_fd 0 in GET: accepted, kept, ignored
        assertThat(((MigDeviceState) DeviceFeatureReply.decode(hex("10 00 00 00  02 00 01 00  02 00 00 00  00 00 00 00"))
                .featureData()).deviceState()).isEqualTo(2);

        DeviceFeatureRequest set = DeviceFeatureRequest.set(DeviceFeature.MIG_DEVICE_STATE, new MigDeviceState(6));
        assertThat(encode(set)).isEqualTo(norm(SET_STATE));
        assertThat(DeviceFeatureRequest.decode(hex(SET_STATE))).isEqualTo(set);
        assertThat(encode(DeviceFeatureReply.echo(set))).isEqualTo(norm(SET_STATE));
        assertThat(DeviceFeatureReply.decode(hex(SET_STATE))).isEqualTo(DeviceFeatureReply.echo(set));
    }

    @Test
    void setEchoIsByteExactEvenForOddFields() {
        // data_fd 0 and a reserved word left uninitialised by the sender come back unchanged
        String state = "10 00 00 00  02 00 02 00  03 00 00 00  00 00 00 00";
        assertThat(encode(DeviceFeatureReply.echo(DeviceFeatureRequest.decode(hex(state))))).isEqualTo(norm(state));
        String start = "18 00 00 00  06 00 02 00  00 10 00 00 00 00 00 00  00 00 00 00  de ad be ef";
        DeviceFeatureRequest decoded = DeviceFeatureRequest.decode(hex(start));
        assertThat(((DmaLoggingControl) decoded.featureData()).reserved()).isEqualTo(0xefbeaddeL);
        assertThat(encode(DeviceFeatureReply.echo(decoded))).isEqualTo(norm(start));
    }

    @Test
    void dmaLoggingStartAndStop() {
        DeviceFeatureRequest start = DeviceFeatureRequest.set(DeviceFeature.DMA_LOGGING_START,
                new DmaLoggingControl(4096, List.of()));
        assertThat(encode(start)).isEqualTo(norm(START));
        assertThat(DeviceFeatureRequest.decode(hex(START))).isEqualTo(start);
        assertThat(DeviceFeatureReply.decode(hex(START))).isEqualTo(DeviceFeatureReply.echo(start));

        DeviceFeatureRequest start2 = DeviceFeatureRequest.set(DeviceFeature.DMA_LOGGING_START,
                new DmaLoggingControl(4096, List.of(new DmaLoggingControl.Range(0, 0x100000),
                        new DmaLoggingControl.Range(0x4000_0000L, 0x1000))));
        assertThat(encode(start2)).isEqualTo(norm(START_2));
        assertThat(DeviceFeatureRequest.decode(hex(START_2))).isEqualTo(start2);

        DeviceFeatureRequest stop = DeviceFeatureRequest.set(DeviceFeature.DMA_LOGGING_STOP, FeaturePayload.EMPTY);
        assertThat(encode(stop)).isEqualTo(norm(STOP));
        assertThat(DeviceFeatureRequest.decode(hex(STOP))).isEqualTo(stop);
        assertThat(DeviceFeatureReply.decode(hex(STOP))).isEqualTo(DeviceFeatureReply.echo(stop));

        // libvfio-user's sample client sends STOP with the 16-byte START control; accepted and echoed verbatim
        DeviceFeatureRequest stopWithData = DeviceFeatureRequest.decode(hex(STOP_SAMPLE_CLIENT));
        assertThat(stopWithData.feature()).isEqualTo(DeviceFeature.DMA_LOGGING_STOP);
        assertThat(encode(DeviceFeatureReply.echo(stopWithData))).isEqualTo(norm(STOP_SAMPLE_CLIENT));
    }

    @Test
    void dmaLoggingReport() {
        DmaLoggingReportQuery query = new DmaLoggingReportQuery(0x1000, 0x1000, 0x1000);
        DeviceFeatureRequest request = DeviceFeatureRequest.report(query);
        assertThat(request.argsz()).isEqualTo(40);
        assertThat(encode(request)).isEqualTo(norm(REPORT));
        assertThat(DeviceFeatureRequest.decode(hex(REPORT))).isEqualTo(request);

        DeviceFeatureReply reply = DeviceFeatureReply.get(DeviceFeature.DMA_LOGGING_REPORT,
                new DmaLoggingReport(query, hex("01 00 00 00 00 00 00 00")));
        assertThat(encode(reply)).isEqualTo(norm(REPORT_REPLY));
        MemorySegment payload = hex(REPORT_REPLY);
        DeviceFeatureReply decoded = DeviceFeatureReply.decode(payload);
        assertThat(decoded).isEqualTo(reply);
        assertThat(payload.asOverlappingSlice(((DmaLoggingReport) decoded.featureData()).bitmap())).isPresent();

        // 65 pages need two words: iova 0, length 0x41000, page 0x1000, argsz 8 + 24 + 16 = 48
        String big = "30 00 00 00  08 00 01 00  00 00 00 00 00 00 00 00  00 10 04 00 00 00 00 00  00 10 00 00 00 00 00 00";
        assertThat(DeviceFeatureRequest.decode(hex(big))).isEqualTo(
                DeviceFeatureRequest.report(new DmaLoggingReportQuery(0, 0x41000, 0x1000)));
        assertThat(((DmaLoggingReport) DeviceFeatureReply.decode(hex(big + "  00 00 00 00 00 00 00 80  01 00 00 00 00 00 00 00"))
                .featureData()).bitmap().byteSize()).isEqualTo(16);
    }

    @Test
    void probeIsEchoed() {
        DeviceFeatureRequest probe = DeviceFeatureRequest.probe(DeviceFeature.MIG_DEVICE_STATE,
                DeviceFeature.GET | DeviceFeature.SET);
        assertThat(encode(probe)).isEqualTo(norm(PROBE));
        assertThat(DeviceFeatureRequest.decode(hex(PROBE))).isEqualTo(probe);
        assertThat(probe.isProbe() && probe.isGet() && probe.isSet()).isTrue();
        assertThat(DeviceFeatureReply.decode(hex(PROBE))).isEqualTo(DeviceFeatureReply.echo(probe));
        // PROBE alone (is the feature there at all?), with stray data kept for the echo
        String withData = "0a 00 00 00  01 00 04 00  aa bb";
        DeviceFeatureRequest stray = DeviceFeatureRequest.decode(hex(withData));
        assertThat(stray.featureData()).isEqualTo(new Raw(hex("aa bb")));
        assertThat(encode(DeviceFeatureReply.echo(stray))).isEqualTo(norm(withData));
    }

    @Test
    void projectExtensions() {
        DeviceFeatureRequest size = DeviceFeatureRequest.get(DeviceFeature.MIG_DATA_SIZE);
        assertThat(encode(size)).isEqualTo(norm(GET_SIZE));
        assertThat(DeviceFeatureRequest.decode(hex(GET_SIZE))).isEqualTo(size);
        DeviceFeatureReply sizeReply = DeviceFeatureReply.get(DeviceFeature.MIG_DATA_SIZE, new MigDataSize(0x100000));
        assertThat(encode(sizeReply)).isEqualTo(norm(GET_SIZE_REPLY));
        assertThat(DeviceFeatureReply.decode(hex(GET_SIZE_REPLY))).isEqualTo(sizeReply);

        DeviceFeatureRequest precopy = DeviceFeatureRequest.get(DeviceFeature.VFU_PRECOPY_INFO);
        assertThat(encode(precopy)).isEqualTo(norm(GET_PRECOPY));
        assertThat(DeviceFeatureRequest.decode(hex(GET_PRECOPY))).isEqualTo(precopy);
        DeviceFeatureReply precopyReply = DeviceFeatureReply.get(DeviceFeature.VFU_PRECOPY_INFO, new PrecopyInfo(0x2000, 0x300));
        assertThat(encode(precopyReply)).isEqualTo(norm(GET_PRECOPY_REPLY));
        assertThat(DeviceFeatureReply.decode(hex(GET_PRECOPY_REPLY))).isEqualTo(precopyReply);
    }

    @Test
    void unknownFeaturesKeepRawData() {
        // feature 3 (kernel LOW_POWER_ENTRY): not ours to judge; argsz not checked for GET
        DeviceFeatureRequest get = DeviceFeatureRequest.decode(hex("08 00 00 00  03 00 01 00  aa bb"));
        assertThat(get.feature()).isEqualTo(3);
        assertThat(get.featureData()).isEqualTo(new Raw(hex("aa bb")));
        assertThat(DeviceFeatureRequest.decode(hex("08 00 00 00  03 00 02 00")).featureData()).isEqualTo(FeaturePayload.EMPTY);
        DeviceFeatureReply reply = DeviceFeatureReply.decode(hex("0a 00 00 00  03 00 01 00  cc dd"));
        assertThat(reply).isEqualTo(DeviceFeatureReply.get(3, new Raw(hex("cc dd"))));
        assertThat(encode(reply)).isEqualTo(norm("0a 00 00 00  03 00 01 00  cc dd"));
    }

    @Test
    void getIgnoresAKernelStyleOutputBuffer() {
        assertThat(DeviceFeatureRequest.decode(hex(GET_MIGRATION + " 00 00 00 00 00 00 00 00")))
                .isEqualTo(DeviceFeatureRequest.get(DeviceFeature.MIGRATION));
        assertThat(DeviceFeatureRequest.decode(hex(REPORT + " 00 00 00 00 00 00 00 00")))
                .isEqualTo(DeviceFeatureRequest.decode(hex(REPORT)));
    }

    @Test
    void malformedFlags() {
        einval(() -> DeviceFeatureRequest.decode(hex("10 00 00 00  01 00 01")));                  // short
        einval(() -> DeviceFeatureRequest.decode(hex("10 00 00 00  01 00 00 00")));               // no operation
        einval(() -> DeviceFeatureRequest.decode(hex("10 00 00 00  02 00 03 00")));               // GET|SET without PROBE
        einval(() -> DeviceFeatureRequest.decode(hex("10 00 00 00  01 00 09 00")));               // bit 19
        einval(() -> DeviceFeatureRequest.decode(hex("10 00 00 00  01 00 01 80")));               // bit 31
        einval(() -> DeviceFeatureRequest.decode(hex("10 00 00 00  01 00 02 00  05 00 00 00 00 00 00 00"))); // SET MIGRATION
        einval(() -> DeviceFeatureRequest.decode(hex("08 00 00 00  01 00 06 00")));               // PROBE SET MIGRATION
        einval(() -> DeviceFeatureRequest.decode(hex("20 00 00 00  06 00 01 00")));               // GET DMA_LOGGING_START
        einval(() -> DeviceFeatureReply.decode(hex("10 00 00 00  01 00 09 00  05 00 00 00 00 00 00 00")));
        einval(() -> DeviceFeatureReply.decode(hex("10 00 00 00  01 00 00 00  05 00 00 00 00 00 00 00")));
    }

    @Test
    void malformedArgsz() {
        einval(() -> DeviceFeatureRequest.decode(hex("0f 00 00 00  01 00 01 00")));                               // GET < 16
        einval(() -> DeviceFeatureRequest.decode(hex("17 00 00 00  01 f0 01 00")));                               // GET < 24
        einval(() -> DeviceFeatureRequest.decode(hex("0f 00 00 00  02 00 02 00  06 00 00 00  ff ff ff ff")));     // SET < 16
        einval(() -> DeviceFeatureRequest.decode(hex("07 00 00 00  02 00 07 00")));                               // PROBE < 8
        einval(() -> DeviceFeatureRequest.decode(hex("27 00 00 00  08 00 01 00  00 10 00 00 00 00 00 00"
                + "  00 10 00 00 00 00 00 00  00 10 00 00 00 00 00 00")));                                         // REPORT < 40
        einval(() -> DeviceFeatureReply.decode(hex("11 00 00 00  01 00 01 00  05 00 00 00 00 00 00 00")));        // GET reply > size
        einval(() -> DeviceFeatureReply.decode(hex("0f 00 00 00  01 00 01 00  05 00 00 00 00 00 00 00")));        // GET reply < size
        einval(() -> DeviceFeatureReply.decode(hex("0f 00 00 00  02 00 02 00  06 00 00 00  ff ff ff ff")));       // echo < size
    }

    @Test
    void malformedData() {
        einval(() -> DeviceFeatureRequest.decode(hex("10 00 00 00  02 00 02 00  06 00 00 00")));                  // state 4 bytes
        einval(() -> DeviceFeatureRequest.decode(hex("14 00 00 00  02 00 02 00  06 00 00 00 ff ff ff ff 00 00 00 00")));
        // STOP with data is accepted (libvfio-user's sample client sends some): see dmaLoggingStartAndStop
        einval(() -> DeviceFeatureRequest.decode(hex("18 00 00 00  06 00 02 00  00 10 00 00 00 00 00 00  01 00 00 00  00 00 00 00"))); // 1 range, none sent
        einval(() -> DeviceFeatureRequest.decode(hex("18 00 00 00  06 00 02 00  00 10 00 00 00 00 00 00  ff ff ff ff  00 00 00 00"))); // huge num_ranges
        einval(() -> DeviceFeatureRequest.decode(hex("1c 00 00 00  06 00 02 00  00 10 00 00 00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00"))); // not 16·n
        einval(() -> DeviceFeatureRequest.decode(hex("14 00 00 00  06 00 02 00  00 10 00 00 00 00 00 00  00 00 00 00")));    // short control
        einval(() -> DeviceFeatureRequest.decode(hex("28 00 00 00  06 00 02 00  00 10 00 00 00 00 00 00  01 00 00 00  00 00 00 00"
                + "  00 00 00 00 00 00 00 f0  00 00 00 00 00 00 00 10")));                                                   // range overflow
        String reportHead = "40 00 00 00  08 00 01 00  00 10 00 00 00 00 00 00  00 10 00 00 00 00 00 00";
        einval(() -> DeviceFeatureRequest.decode(hex(reportHead + "  00 18 00 00 00 00 00 00")));                 // page 0x1800
        einval(() -> DeviceFeatureRequest.decode(hex(reportHead + "  00 00 00 00 00 00 00 00")));                 // page 0
        einval(() -> DeviceFeatureRequest.decode(hex(reportHead)));                                               // query 16 bytes
        einval(() -> DeviceFeatureRequest.decode(hex("40 00 00 00  08 00 01 00  00 00 00 00 00 00 00 ff"
                + "  00 00 00 00 00 00 00 01  00 10 00 00 00 00 00 00")));                                         // iova overflow
    }

    @Test
    void malformedReplyData() {
        einval(() -> DeviceFeatureReply.decode(hex("0c 00 00 00  01 00 01 00  05 00 00 00")));                    // flags 4 bytes
        einval(() -> DeviceFeatureReply.decode(hex("20 00 00 00  08 00 01 00  00 10 00 00 00 00 00 00"
                + "  00 10 00 00 00 00 00 00  00 10 00 00 00 00 00 00")));                                         // bitmap missing
        einval(() -> DeviceFeatureReply.decode(hex("30 00 00 00  08 00 01 00  00 10 00 00 00 00 00 00"
                + "  00 10 00 00 00 00 00 00  00 10 00 00 00 00 00 00  01 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00"))); // 16 != 8
        einval(() -> DeviceFeatureReply.decode(hex("24 00 00 00  08 00 01 00  00 10 00 00 00 00 00 00"
                + "  00 10 00 00 00 00 00 00  00 10 00 00 00 00 00 00  01 00 00 00")));                            // 4 != 8
        einval(() -> DeviceFeatureReply.decode(hex("1c 00 00 00  09 00 01 00  00 00 10 00 00 00 00 00  00 00 00 00"))); // 12 != 8
        einval(() -> DeviceFeatureReply.decode(hex("10 00 00 00  01 f0 01 00  00 20 00 00 00 00 00 00")));        // precopy 8 != 16
    }
}
