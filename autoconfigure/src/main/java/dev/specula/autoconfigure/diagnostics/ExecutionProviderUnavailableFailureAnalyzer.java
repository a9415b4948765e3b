package dev.specula.autoconfigure.diagnostics;

import ai.onnxruntime.OrtException;
import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

import dev.specula.model.ExecutionProviderUnavailableException;

/**
 * CUDA asked for, but the ONNX Runtime on the classpath is the CPU build: names the GPU
 * artifact and the CPU setting.
 */
public class ExecutionProviderUnavailableFailureAnalyzer
        extends AbstractFailureAnalyzer<ExecutionProviderUnavailableException> {

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, ExecutionProviderUnavailableException cause) {
        String version = OrtException.class.getPackage().getImplementationVersion();
        String sameVersion = version == null ? "the same version" : version;
        String description = String.format(
                "The %s execution provider is not available in the ONNX Runtime on the classpath "
                        + "(specula.runtime.provider=%s).%n%n    Reason: %s",
                cause.getProvider(), cause.getProvider(), cause.getMessage());
        String action = String.format("Replace the dependency com.microsoft.onnxruntime:onnxruntime with %s:%s "
                + "(exclude onnxruntime from dev.specula:specula-engine and add the GPU artifact), and install the CUDA and "
                + "cuDNN versions that ONNX Runtime release needs; or set specula.runtime.provider=CPU.",
                ExecutionProviderUnavailableException.CUDA_ARTIFACT, sameVersion);
        return new FailureAnalysis(description, action, cause);
    }

}
