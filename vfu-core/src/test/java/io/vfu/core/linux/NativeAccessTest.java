package io.vfu.core.linux;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.core.testing.ChildJvm;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Without {@code --enable-native-access} the first call fails with one actionable message. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class NativeAccessTest {
    @Test
    void missingNativeAccessGivesOneActionableMessage() throws Exception {
        try (ChildJvm child = ChildJvm.startWithoutNativeAccess(NativeAccessChild.class)) {
            assertThat(child.waitFor(Duration.ofSeconds(60))).as(child.describe()).isNotZero();
            assertThat(child.errorOutput())
                    .contains("UnsupportedOperationException")
                    .contains("--enable-native-access=ALL-UNNAMED")
                    .doesNotContain("WARNING: A restricted method");
            assertThat(child.output()).doesNotContain("created");
        }
    }

    @Test
    void withNativeAccessTheSameChildWorks() throws Exception {
        try (ChildJvm child = ChildJvm.start(NativeAccessChild.class)) {
            assertThat(child.waitFor(Duration.ofSeconds(60))).as(child.describe()).isZero();
            assertThat(child.output()).startsWith("created EventFd[fd=");
        }
    }
}
