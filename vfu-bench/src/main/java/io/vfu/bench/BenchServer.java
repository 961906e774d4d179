package io.vfu.bench;

import io.vfu.core.linux.UnixSocket;
import io.vfu.server.VfioUserServer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The server process of {@code vfu bench}: serves {@link BenchDevice} on {@code DIR/device.sock} and the raw
 * baselines on {@code DIR/raw.sock}, prints {@code ready} once both listen, and exits when its standard input
 * closes (the benchmark process ended, however it ended).
 */
public final class BenchServer {
    static final String DEVICE_SOCKET = "device.sock";
    static final String RAW_SOCKET = "raw.sock";
    static final String READY = "ready";

    private BenchServer() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: BenchServer DIR MAX_TRANSFER_BYTES");
            System.exit(2);
        }
        Path dir = Path.of(args[0]);
        long maxTransfer = Long.parseLong(args[1]);
        Files.createDirectories(dir);
        VfioUserServer server = VfioUserServer.builder(new BenchDevice().device(), dir.resolve(DEVICE_SOCKET))
                .maxDataXferSize(maxTransfer)
                .start();
        UnixSocket raw = UnixSocket.listen(dir.resolve(RAW_SOCKET));
        Thread acceptor = Thread.ofPlatform().daemon(true).name("raw-accept").start(() -> {
            try {
                while (true) {
                    UnixSocket s = raw.accept();
                    Thread.ofPlatform().daemon(true).name("raw-conn").start(() -> Raw.serve(s, maxTransfer + 4096));
                }
            } catch (IOException e) {
                // closed
            }
        });
        System.out.println(READY);
        System.out.flush();
        InputStream in = System.in;
        while (in.read() >= 0) {
            // wait for the parent to go away
        }
        server.close();
        raw.close();
        acceptor.interrupt();
        System.exit(0);
    }
}
