package dev.specula.model;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

/**
 * Specula's kernel library ({@code engine/src/main/native}), shipped in the engine's jar
 * for the platforms the build made it for, and written once a process to a temporary file
 * that ONNX Runtime loads ({@code registerCustomOpLibrary}). The library keeps itself
 * loaded once registered, so closing session options cannot unload code a live session
 * runs.
 */
final class NativeKernels {

    /** The classpath folder of the libraries, one subfolder a platform. */
    static final String RESOURCE_FOLDER = "/dev/specula/native/";

    static final String LIBRARY_FILE = "libspecula_kernels.so";

    private static Path extracted;

    private static String unavailable;

    private NativeKernels() {
    }

    /** The platform's folder name: {@code linux-x86_64}, else what the JVM reports. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String system = os.startsWith("linux") ? "linux" : os.replace(' ', '_');
        String machine = arch.equals("amd64") || arch.equals("x86_64") ? "x86_64" : arch;
        return system + "-" + machine;
    }

    /**
     * The library's path on disk, extracted on first use.
     * @throws IllegalStateException saying why there is none: the jar has no build for
     * this platform, or it cannot be written out
     */
    static synchronized Path library() {
        if (extracted != null) {
            return extracted;
        }
        if (unavailable != null) {
            throw new IllegalStateException(unavailable);
        }
        String resource = RESOURCE_FOLDER + platform() + "/" + LIBRARY_FILE;
        try (InputStream in = NativeKernels.class.getResourceAsStream(resource)) {
            if (in == null) {
                unavailable = "this build of specula-engine has no kernel library for " + platform() + " (" + resource
                        + "; it is built on Linux x86-64 where g++ is installed, see engine/src/main/native)";
                throw new IllegalStateException(unavailable);
            }
            Path file = Files.createTempFile("specula-kernels-", ".so");
            file.toFile().deleteOnExit();
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            // registered once on throwaway options, before any model is rewritten for
            // it: a CPU without AVX2, or a temporary folder mounted noexec, is found
            // here (the library keeps itself loaded once registered)
            try (OrtSession.SessionOptions probe = new OrtSession.SessionOptions()) {
                probe.registerCustomOpLibrary(file.toString());
            }
            catch (OrtException ex) {
                unavailable = "the kernel library refused to load: " + ex.getMessage();
                throw new IllegalStateException(unavailable, ex);
            }
            extracted = file;
            return file;
        }
        catch (IOException ex) {
            unavailable = "cannot write the kernel library " + resource + " to a temporary file: " + ex.getMessage();
            throw new IllegalStateException(unavailable, ex);
        }
    }

}
