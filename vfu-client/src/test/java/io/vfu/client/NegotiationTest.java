package io.vfu.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import io.vfu.core.protocol.VfioUserException;
import io.vfu.core.testing.NoFdLeaks;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

@ExtendWith(NoFdLeaks.class)
class NegotiationTest {
    @TempDir
    Path dir;

    /** libvfio-user's exact VERSION reply text (libvfio-user-samples.md §3.2), json-c spacing, minor 2. */
    static final String LVU_JSON =
            "{ \"capabilities\": { \"max_msg_fds\": 8, \"max_data_xfer_size\": 1048576, \"migration\": { \"pgsize\": 4096 } } }";

    @Test
    void sendsVersionZeroZeroWithoutMigrationAndAdoptsTheTwinSocket() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir));
             VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
            assertThat(server.versionRequest.major()).isZero();
            assertThat(server.versionRequest.minor()).isZero();
            assertThat(server.versionJson).isEqualTo(
                    "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,\"twin_socket\":{\"supported\":true}}}");
            assertThat(client.twinSocketActive()).isTrue();
            assertThat(client.serverCapabilities().maxMsgFdsOrDefault()).isEqualTo(8);
            assertThat(client.serverVersion().minor()).isZero();
        }
    }

    @Test
    void withoutTheOfferThereIsNoTwinSocket() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir));
             VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().offerTwinSocket(false).build())) {
            assertThat(server.versionJson).doesNotContain("twin_socket");
            assertThat(client.twinSocketActive()).isFalse();
        }
    }

    @Test
    void acceptsLibvfioUsersReply() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.rawVersion = new FakeServer.RawVersion(0, 2, LVU_JSON, false);
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                assertThat(client.serverVersion().minor()).isEqualTo(2);
                assertThat(client.serverCapabilities().maxMsgFdsOrDefault()).isEqualTo(8);
                assertThat(client.serverCapabilities().maxDataXferSizeOrDefault()).isEqualTo(1048576);
                assertThat(client.serverCapabilities().migration()).isPresent();
                assertThat(client.serverCapabilities().writeMultipleOrDefault()).isFalse();
                assertThat(client.twinSocketActive()).isFalse();
            }
        }
    }

    @Test
    void acceptsLibvfioUsersTwinSocketReply() throws Exception {
        String json = "{ \"capabilities\": { \"max_msg_fds\": 8, \"max_data_xfer_size\": 1048576, \"migration\": "
                + "{ \"pgsize\": 4096 }, \"twin_socket\": { \"supported\": true, \"fd_index\": 0 } } }";
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.rawVersion = new FakeServer.RawVersion(0, 2, json, true);
            try (VfioUserClient client = ClientTestSupport.connect(dir, ClientTestSupport.options().build())) {
                assertThat(client.twinSocketActive()).isTrue();
            }
        }
    }

    @Test
    void rejectsAnotherMajorVersion() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.rawVersion = new FakeServer.RawVersion(1, 0, "{}", false);
            assertThatThrownBy(() -> ClientTestSupport.connect(dir, ClientTestSupport.options().build()))
                    .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL))
                    .hasMessageContaining("major version 1");
        }
    }

    @Test
    void twinSocketSupportedWithoutIndexIsRefused() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.rawVersion = new FakeServer.RawVersion(0, 0, "{\"capabilities\":{\"twin_socket\":{\"supported\":true}}}", true);
            assertThatThrownBy(() -> ClientTestSupport.connect(dir, ClientTestSupport.options().build()))
                    .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EPROTO))
                    .hasMessageContaining("fd_index missing");
        }
    }

    @Test
    void twinSocketIndexBeyondTheFdsIsRefused() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.rawVersion = new FakeServer.RawVersion(0, 0,
                    "{\"capabilities\":{\"twin_socket\":{\"supported\":true,\"fd_index\":1}}}", true);
            assertThatThrownBy(() -> ClientTestSupport.connect(dir, ClientTestSupport.options().build()))
                    .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EPROTO))
                    .hasMessageContaining("fd_index 1");
        }
    }

    @Test
    void malformedJsonIsRefused() throws Exception {
        try (FakeServer server = FakeServer.start(ClientTestSupport.socket(dir))) {
            server.rawVersion = new FakeServer.RawVersion(0, 0, "{\"capabilities\":{\"max_msg_fds\":\"many\"}}", false);
            assertThatThrownBy(() -> ClientTestSupport.connect(dir, ClientTestSupport.options().build()))
                    .isInstanceOfSatisfying(VfioUserException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
        }
    }
}
