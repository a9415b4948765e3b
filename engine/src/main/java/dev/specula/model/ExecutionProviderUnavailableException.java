package dev.specula.model;

/**
 * The configured ONNX Runtime execution provider (e.g. CUDA) is not in the ONNX Runtime
 * on the classpath.
 */
public final class ExecutionProviderUnavailableException extends RuntimeException {

    /** The Maven coordinates of the ONNX Runtime build that has the CUDA provider. */
    public static final String CUDA_ARTIFACT = "com.microsoft.onnxruntime:onnxruntime_gpu";

    private final ExecutionProvider provider;

    ExecutionProviderUnavailableException(ExecutionProvider provider, String message, Throwable cause) {
        super(message, cause);
        this.provider = provider;
    }

    /** The provider that was asked for. */
    public ExecutionProvider getProvider() {
        return provider;
    }

}
