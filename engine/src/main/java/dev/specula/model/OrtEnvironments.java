package dev.specula.model;

import ai.onnxruntime.OrtEnvironment;
import org.jspecify.annotations.Nullable;

/**
 * The process's ONNX Runtime environment, created on a thread with a large stack. ONNX
 * Runtime 1.29 matches regular expressions against the process command line while it
 * creates its environment (telemetry); with a long command line (a Maven- or IDE-built
 * classpath of a few kB) that recursion overflows a default 1 MB thread stack and the JVM
 * dies with SIGSEGV. Once created, the environment is shared and safe on any thread.
 */
public final class OrtEnvironments {

    private static final long INIT_STACK_BYTES = 64L << 20;

    private static volatile @Nullable OrtEnvironment environment;

    private OrtEnvironments() {
    }

    /** The shared environment, created on first use. */
    public static OrtEnvironment get() {
        OrtEnvironment created = environment;
        if (created != null) {
            return created;
        }
        synchronized (OrtEnvironments.class) {
            if (environment == null) {
                OrtEnvironment[] holder = new OrtEnvironment[1];
                RuntimeException[] failure = new RuntimeException[1];
                Thread init = new Thread(null, () -> {
                    try {
                        holder[0] = OrtEnvironment.getEnvironment();
                    }
                    catch (RuntimeException ex) {
                        failure[0] = ex;
                    }
                }, "specula-ort-init", INIT_STACK_BYTES);
                init.start();
                boolean interrupted = false;
                while (true) {
                    try {
                        init.join();
                        break;
                    }
                    catch (InterruptedException ex) {
                        interrupted = true;
                    }
                }
                if (interrupted) {
                    Thread.currentThread().interrupt();
                }
                if (failure[0] != null) {
                    throw failure[0];
                }
                environment = holder[0];
            }
            return environment;
        }
    }

}
