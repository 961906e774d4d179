package io.vfu.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What the figures came from: CPU, core count, kernel, JDK, load. */
final class Machine {
    private Machine() {}

    static String describe() {
        String cpu = "unknown CPU";
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    cpu = line.substring(line.indexOf(':') + 1).trim();
                    break;
                }
            }
        } catch (IOException e) {
            // keep unknown
        }
        return cpu + ", " + Runtime.getRuntime().availableProcessors() + " CPUs, Linux "
                + System.getProperty("os.version") + ", JDK " + Runtime.version();
    }

    /** The 1/5/15-minute load averages. */
    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }
}
