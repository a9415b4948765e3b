package dev.specula.autoconfigure;

import java.util.Map;

import org.springframework.boot.EnvironmentPostProcessor;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.env.DefaultPropertiesPropertySource;
import org.springframework.core.env.ConfigurableEnvironment;

/**
 * Quiets DJL's CUDA probe by default. Loading the tokenizer's native library makes DJL
 * ({@code ai.djl.util.Platform.fromSystem}) ask CUDA for the GPU count; on a machine with
 * a CUDA runtime but no usable GPU or driver it logs
 * {@code WARN ai.djl.util.cuda.CudaUtils: Failed to detect GPU count} twice, although
 * Specula's tokenizers run on the CPU and ONNX Runtime picks its own execution provider.
 * DJL has no property that skips the probe (its {@code ai.djl.util.cuda.fork} starts a
 * second JVM instead), so this sets
 * {@code logging.level.ai.djl.util.cuda.CudaUtils=error} in Boot's default properties:
 * any value the application sets wins.
 */
public class DjlLoggingEnvironmentPostProcessor implements EnvironmentPostProcessor {

    /** The property this sets unless the application does. */
    static final String CUDA_PROBE_LEVEL = "logging.level.ai.djl.util.cuda.CudaUtils";

    @Override
    public void postProcessEnvironment(ConfigurableEnvironment environment, SpringApplication application) {
        if (!environment.containsProperty(CUDA_PROBE_LEVEL)) {
            DefaultPropertiesPropertySource.addOrMerge(Map.of(CUDA_PROBE_LEVEL, "error"),
                    environment.getPropertySources());
        }
    }

}
