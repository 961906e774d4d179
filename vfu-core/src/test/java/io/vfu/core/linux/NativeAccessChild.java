package io.vfu.core.linux;

/** Child of {@link NativeAccessTest}: uses the package in a JVM started without native access. */
public final class NativeAccessChild {
    private NativeAccessChild() {}

    public static void main(String[] args) throws Exception {
        try (EventFd event = EventFd.create()) {
            System.out.println("created " + event);
        }
    }
}
