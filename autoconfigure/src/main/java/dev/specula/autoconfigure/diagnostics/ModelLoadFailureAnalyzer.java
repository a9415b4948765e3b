package dev.specula.autoconfigure.diagnostics;

import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

import dev.specula.autoconfigure.ConfiguredModelLoadException;
import dev.specula.autoconfigure.SpeculaModelProperties;
import dev.specula.model.ModelLoadException;

/**
 * A model that is missing, incomplete or corrupt: names the path, the property and how to
 * export a model (or, for the GRIFFIN feature head, how to train one).
 */
public class ModelLoadFailureAnalyzer extends AbstractFailureAnalyzer<ModelLoadException> {

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, ModelLoadException cause) {
        String property = cause instanceof ConfiguredModelLoadException configured ? configured.getProperty()
                : SpeculaModelProperties.TARGET_LOCATION + ", " + SpeculaModelProperties.DRAFT_LOCATION + " or "
                        + SpeculaModelProperties.GRIFFIN_LOCATION;
        String description = String.format(
                "Specula could not load a model.%n%n    Property: %s%n    Path: %s%n    Reason: %s", property,
                cause.getPath() == null || cause.getPath().toString().isEmpty() ? "(none)"
                        : cause.getPath().toAbsolutePath(),
                cause.getMessage());
        return new FailureAnalysis(description, action(property), cause);
    }

    private static String action(String property) {
        if (SpeculaModelProperties.GRIFFIN_LOCATION.equals(property)) {
            return String.format("Point %s at a GRIFFIN feature head trained on the target: a directory with "
                    + "model.onnx (a packed graph taking hidden_states), config.json (model_type griffin_head) and "
                    + "the target's tokenizer.json. To train one, run `python -m specula_tools train-griffin` in the "
                    + "tools/ directory of the Specula repository (the target must be exported --with-hidden). Or "
                    + "remove %s, or set specula.griffin.enabled=false, to serve without the head.", property,
                    property);
        }
        return String.format("Point %s at a model directory in the Optimum text-generation-with-past layout "
                + "(model.onnx, config.json, tokenizer.json). To export a local Hugging Face model directory, run "
                + "`pip install -r requirements.txt && python -m specula_tools export HF_MODEL_DIR OUT_DIR` in the "
                + "tools/ directory of the Specula repository, then set %s=OUT_DIR; re-export a corrupt model.onnx "
                + "the same way. Or remove %s and %s to run the embedded pair "
                + "(dev.specula:specula-models-tiny on the classpath).", property, property,
                SpeculaModelProperties.TARGET_LOCATION, SpeculaModelProperties.DRAFT_LOCATION);
    }

}
