package dev.specula.model;

/** Where ONNX Runtime runs the model. */
public enum ExecutionProvider {

    /** The default: ONNX Runtime's CPU kernels. */
    CPU,
    /**
     * NVIDIA GPUs; needs {@code com.microsoft.onnxruntime:onnxruntime_gpu} instead of
     * {@code onnxruntime}.
     */
    CUDA

}
