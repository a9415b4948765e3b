package dev.specula.autoconfigure;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.jspecify.annotations.Nullable;

import dev.specula.autoconfigure.SpeculaModelsAutoConfiguration.ModelLocationsResolved;
import dev.specula.engine.ModelPair;
import dev.specula.engine.VocabularyMismatchException;
import dev.specula.model.DecoderModel;
import dev.specula.model.ModelLoadException;
import dev.specula.model.RuntimeOptions;

/**
 * Loads the target, the draft and the feature head one at a time, so that a model that
 * fails names the property that pointed at it ({@code specula.target.location},
 * {@code specula.draft.location} or {@code specula.griffin.location}), even when two of
 * them point at one directory; then pairs them, a refusal naming the model in the wrong
 * place. Whatever was loaded is closed when a later step fails.
 */
final class PairLoader {

    private PairLoader() {
    }

    /**
     * Loads the models at {@code locations} and pairs them.
     * @throws ConfiguredModelLoadException naming the property of the model that failed
     * to load, or that the pair refused
     * @throws VocabularyMismatchException when the draft's vocabulary differs from the
     * target's
     */
    static ModelPair load(ModelLocationsResolved locations, RuntimeOptions options) {
        List<DecoderModel> loaded = new ArrayList<>();
        try {
            DecoderModel target = load(locations.target(), SpeculaModelProperties.TARGET_LOCATION, options, loaded);
            DecoderModel draft = locations.draft() == null ? null
                    : load(locations.draft(), SpeculaModelProperties.DRAFT_LOCATION, options, loaded);
            DecoderModel head = locations.head() == null ? null
                    : load(locations.head(), SpeculaModelProperties.GRIFFIN_LOCATION, options, loaded);
            return pair(target, draft, head);
        }
        catch (RuntimeException ex) {
            loaded.forEach(DecoderModel::close);
            throw ex;
        }
    }

    private static DecoderModel load(Path location, String property, RuntimeOptions options,
            List<DecoderModel> loaded) {
        try {
            DecoderModel model = DecoderModel.load(location, options);
            loaded.add(model);
            return model;
        }
        catch (ConfiguredModelLoadException ex) {
            throw ex;
        }
        catch (ModelLoadException ex) {
            throw new ConfiguredModelLoadException(property, ex);
        }
    }

    private static ModelPair pair(DecoderModel target, @Nullable DecoderModel draft, @Nullable DecoderModel head) {
        try {
            return ModelPair.withHead(target, draft, head);
        }
        catch (ModelLoadException ex) {
            throw new ConfiguredModelLoadException(refused(target, draft, head), ex);
        }
        catch (VocabularyMismatchException ex) {
            if (head == null || draft != null && ex.getDraft().equals(draft.files().directory())) {
                throw ex;
            }
            // the head's tokens are not the target's: a model error of the head, which
            // the draft's analyzer (naming specula.draft.location) must not claim
            ConfiguredModelLoadException refused = new ConfiguredModelLoadException(
                    SpeculaModelProperties.GRIFFIN_LOCATION, head.files().tokenizer(),
                    "The feature head " + head.files().directory() + " does not share the target's vocabulary ("
                            + ex.getDraftVocabularySize() + " tokens against the target's "
                            + ex.getTargetVocabularySize()
                            + (ex.getDifferences().isEmpty() ? "" : "; " + String.join("; ", ex.getDifferences()))
                            + "): train the head on this target, whose tokenizer.json it keeps");
            refused.addSuppressed(ex);
            throw refused;
        }
    }

    /**
     * The property of the model a pair refused, checked in the pair's own order: a
     * feature head loaded as the target or the draft, a head that is no feature head, a
     * target without the head's hidden states, a head of another width.
     */
    private static String refused(DecoderModel target, @Nullable DecoderModel draft, @Nullable DecoderModel head) {
        if (target.takesFeatures()) {
            return SpeculaModelProperties.TARGET_LOCATION;
        }
        if (draft != null && draft.takesFeatures()) {
            return SpeculaModelProperties.DRAFT_LOCATION;
        }
        if (head == null || head.takesFeatures() && !target.signature().hasHiddenState()) {
            return SpeculaModelProperties.TARGET_LOCATION;
        }
        return SpeculaModelProperties.GRIFFIN_LOCATION;
    }

}
