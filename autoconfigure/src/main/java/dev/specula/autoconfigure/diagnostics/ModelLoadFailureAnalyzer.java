package dev.specula.autoconfigure.diagnostics;

import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

import dev.specula.autoconfigure.ConfiguredModelLoadException;
import dev.specula.autoconfigure.SpeculaModelProperties;
import dev.specula.model.ModelLoadException;

/**
 * A model that is missing, incomplete or corrupt: names the path, the property and how to
 * export a model.
 */
public class ModelLoadFailureAnalyzer extends AbstractFailureAnalyzer<ModelLoadException> {

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, ModelLoadException cause) {
        String property = cause instanceof ConfiguredModelLoadException configured ? configured.getProperty()
                : SpeculaModelProperties.TARGET_LOCATION + " or " + SpeculaModelProperties.DRAFT_LOCATION;
        String description = String.format(
                "Specula could not load a model.%n%n    Property: %s%n    Path: %s%n    Reason: %s", property,
                cause.getPath() == null || cause.getPath().toString().isEmpty() ? "(none)"
                        : cause.getPath().toAbsolutePath(),
                cause.getMessage());
        String action = String.format("Point %s at a model directory in the Optimum text-generation-with-past layout "
                + "(model.onnx, config.json, tokenizer.json). To export a local Hugging Face model directory, run "
                + "`pip install -r requirements.txt && python -m specula_tools export HF_MODEL_DIR OUT_DIR` in the "
                + "tools/ directory of the Specula repository, then set %s=OUT_DIR; re-export a corrupt model.onnx "
                + "the same way. Or remove %s and %s to run the embedded pair "
                + "(dev.specula:specula-models-tiny on the classpath).", property, property,
                SpeculaModelProperties.TARGET_LOCATION, SpeculaModelProperties.DRAFT_LOCATION);
        return new FailureAnalysis(description, action, cause);
    }

}
