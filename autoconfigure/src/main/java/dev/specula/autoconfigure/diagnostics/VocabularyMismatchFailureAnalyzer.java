package dev.specula.autoconfigure.diagnostics;

import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

import dev.specula.engine.VocabularyMismatchException;

/**
 * A draft whose tokenizer differs from the target's: names both models and vocabulary
 * sizes.
 */
public class VocabularyMismatchFailureAnalyzer extends AbstractFailureAnalyzer<VocabularyMismatchException> {

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, VocabularyMismatchException cause) {
        String description = String.format("The draft model cannot speculate for the target: their vocabularies differ."
                + "%n%n    Target: %s (%d tokens, specula.target.location)%n    Draft:  %s (%d tokens, specula.draft.location)"
                + "%n    Reason: %s", cause.getTarget(), cause.getTargetVocabularySize(), cause.getDraft(),
                cause.getDraftVocabularySize(), cause.getMessage());
        String action = "Set specula.draft.location to a draft from the target's model family that uses the same "
                + "tokenizer (identical tokenizer.json and special tokens, e.g. Qwen2.5-0.5B-Instruct for Qwen2.5-7B-Instruct, "
                + "SmolLM2-135M for SmolLM2-1.7B), or set specula.draft.enabled=false to serve the target alone with plain decoding.";
        return new FailureAnalysis(description, action, cause);
    }

}
