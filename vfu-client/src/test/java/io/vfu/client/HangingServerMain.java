package io.vfu.client;

import io.vfu.core.protocol.Command;
import java.nio.file.Path;

/** Child-JVM server: answers VERSION, prints "GOT REGION_READ" when a REGION_READ arrives and never answers it. */
public final class HangingServerMain {
    private HangingServerMain() {
    }

    public static void main(String[] args) throws Exception {
        FakeServer server = FakeServer.start(Path.of(args[0]));
        server.on(Command.REGION_READ, (s, c) -> {
            System.out.println("GOT REGION_READ");
            System.out.flush();
            return s.hang();
        });
        System.out.println("READY");
        System.out.flush();
        Thread.currentThread().join(); // until killed
    }
}
