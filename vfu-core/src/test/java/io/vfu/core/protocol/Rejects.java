package io.vfu.core.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfu.core.linux.Errno;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;

/** Test helper: asserts that decoding fails with a {@link VfioUserException} carrying the given errno. */
final class Rejects {
    private Rejects() {
    }

    static void with(Errno errno, ThrowingCallable call) {
        assertThatThrownBy(call).isInstanceOfSatisfying(VfioUserException.class,
                e -> assertThat(e.errno()).isEqualTo(errno));
    }

    static void einval(ThrowingCallable call) {
        with(Errno.EINVAL, call);
    }
}
