package dev.specula.autoconfigure.diagnostics;

import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

import dev.specula.engine.VocabularyMismatchException;

/**
 * A draft whose tokenizer differs from the target's: names both models, their tokenizer
 * files and vocabulary sizes, and the first differing tokens.
 */
public class VocabularyMismatchFailureAnalyzer extends AbstractFailureAnalyzer<VocabularyMismatchException> {

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, VocabularyMismatchException cause) {
        StringBuilder description = new StringBuilder(String.format(
                "The draft model cannot speculate for the target: their vocabularies differ, so the draft's token ids "
                        + "would mean other tokens to the target.%n%n"
                        + "    Target: %s (%d tokens, specula.target.location)%n    Target tokenizer: %s%n"
                        + "    Draft:  %s (%d tokens, specula.draft.location)%n    Draft tokenizer:  %s%n",
                cause.getTarget(), cause.getTargetVocabularySize(), cause.getTargetTokenizer(), cause.getDraft(),
                cause.getDraftVocabularySize(), cause.getDraftTokenizer()));
        if (!cause.getDifferences().isEmpty()) {
            description.append(String.format("%n    Differences:%n"));
            for (String difference : cause.getDifferences()) {
                description.append(String.format("      - %s%n", difference));
            }
        }
        String action = "Set specula.draft.location to a draft from the target's model family that uses the same "
                + "tokenizer: every token of the draft's tokenizer.json at the same id as in the target's, with the "
                + "same merges (e.g. Qwen2.5-0.5B-Instruct for Qwen2.5-7B-Instruct, SmolLM2-135M for SmolLM2-1.7B; "
                + "a vocabulary of the same size is not enough), or set specula.draft.enabled=false to serve the "
                + "target alone with plain decoding.";
        return new FailureAnalysis(description.toString().stripTrailing(), action, cause);
    }

}
