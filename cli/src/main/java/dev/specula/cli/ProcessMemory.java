package dev.specula.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * This process's resident memory from {@code /proc/self/status} (JVM heap, ONNX Runtime's
 * native memory and mapped weights together), and its peak, which {@link #resetPeak()}
 * restarts so that one phase's peak can be read on its own. Linux only: elsewhere every
 * figure is -1.
 */
final class ProcessMemory {

    private static final Path STATUS = Path.of("/proc/self/status");

    private static final Path CLEAR_REFS = Path.of("/proc/self/clear_refs");

    private ProcessMemory() {
    }

    /** VmRSS in bytes, -1 when unknown. */
    static long residentBytes() {
        return field("VmRSS:");
    }

    /**
     * VmHWM (peak VmRSS since start or the last {@link #resetPeak()}) in bytes, -1 when
     * unknown.
     */
    static long peakResidentBytes() {
        return field("VmHWM:");
    }

    /**
     * Restarts the peak at the current resident size ({@code echo 5 > clear_refs}).
     * @return false where the kernel does not allow it: the peak then covers the whole
     * run
     */
    static boolean resetPeak() {
        try {
            Files.writeString(CLEAR_REFS, "5");
            return true;
        }
        catch (IOException | UnsupportedOperationException | SecurityException ex) {
            return false;
        }
    }

    private static long field(String name) {
        try {
            List<String> lines = Files.readAllLines(STATUS);
            for (String line : lines) {
                if (line.startsWith(name)) {
                    String[] parts = line.substring(name.length()).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024; // "VmRSS: 123456 kB"
                }
            }
            return -1;
        }
        catch (IOException | NumberFormatException ex) {
            return -1;
        }
    }

}
