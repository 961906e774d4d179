package io.vfu.core.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfu.core.linux.Fds;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * JUnit extension that fails a test which leaves more file descriptors open than it found
 * ({@link Fds#openFdCount()} before and after each test). Register with {@code @ExtendWith(NoFdLeaks.class)}.
 *
 * <p>The count may drop (a descriptor leaked elsewhere collected meanwhile) but must not grow. AssertJ is
 * touched before the first count, because loading it opens its jar once for the life of the JVM.
 */
public final class NoFdLeaks implements BeforeEachCallback, AfterEachCallback {
    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(NoFdLeaks.class);

    @Override
    public void beforeEach(ExtensionContext context) {
        assertThat(0).as("warm-up").isZero();
        context.getStore(NAMESPACE).put("before", Fds.openFdCount());
    }

    @Override
    public void afterEach(ExtensionContext context) {
        int before = context.getStore(NAMESPACE).get("before", Integer.class);
        int after = Fds.openFdCount();
        assertThat(after).as("open file descriptors after %s (before: %d)", context.getDisplayName(), before)
                .isLessThanOrEqualTo(before);
    }
}
