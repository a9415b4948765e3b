package dev.specula.model;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
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

    /** The environment's global intra-op pool; null when it was created without one. */
    private static volatile @Nullable ThreadPool globalPool;

    private OrtEnvironments() {
    }

    /**
     * An intra-op thread pool: its threads (0: ONNX Runtime's choice) and whether idle
     * threads spin.
     */
    public record ThreadPool(int threads, boolean spinning) {
    }

    /** The shared environment, created on first use (without a global thread pool). */
    public static OrtEnvironment get() {
        return get(null);
    }

    /**
     * The shared environment. The first call creates it, with {@code pool} as ONNX
     * Runtime's global intra-op pool when given: sessions asking for that pool share it
     * ({@link #globalPool()}) instead of each starting its own. A draft and a target that
     * each had their own spinning pool competed for the cores: on 2 cores a speculative
     * round of the embedded pair took 4.0 ms against 1.9–2.7 ms with one shared pool.
     */
    public static OrtEnvironment get(@Nullable ThreadPool pool) {
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
                        holder[0] = create(pool);
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

    /**
     * The global intra-op pool the environment was created with; null before it exists or
     * when it has none.
     */
    public static @Nullable ThreadPool globalPool() {
        return globalPool;
    }

    private static OrtEnvironment create(@Nullable ThreadPool pool) {
        if (pool == null) {
            return OrtEnvironment.getEnvironment();
        }
        try (OrtEnvironment.ThreadingOptions threading = new OrtEnvironment.ThreadingOptions()) {
            threading.setGlobalIntraOpNumThreads(pool.threads());
            threading.setGlobalInterOpNumThreads(1);
            threading.setGlobalSpinControl(pool.spinning());
            OrtEnvironment created = OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING, "specula",
                    threading);
            globalPool = pool;
            return created;
        }
        catch (OrtException | IllegalStateException ex) {
            // an environment made elsewhere in this process (its threading is fixed): use
            // it, each session with its own pool
            return OrtEnvironment.getEnvironment();
        }
    }

}
