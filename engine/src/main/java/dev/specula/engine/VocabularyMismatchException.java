package dev.specula.engine;

import java.nio.file.Path;

/**
 * Draft and target do not share a vocabulary, so the draft's tokens mean nothing to the
 * target.
 */
public class VocabularyMismatchException extends IllegalArgumentException {

    private final Path target;

    private final Path draft;

    private final int targetVocabularySize;

    private final int draftVocabularySize;

    public VocabularyMismatchException(Path target, int targetVocabularySize, Path draft, int draftVocabularySize,
            String detail) {
        super("Draft and target vocabularies differ: target " + target + " has " + targetVocabularySize
                + " tokens, draft " + draft + " has " + draftVocabularySize + " tokens"
                + (detail.isEmpty() ? "" : " (" + detail + ")")
                + ". Use a draft trained with the target's tokenizer (same tokenizer.json), or run without a draft.");
        this.target = target;
        this.draft = draft;
        this.targetVocabularySize = targetVocabularySize;
        this.draftVocabularySize = draftVocabularySize;
    }

    public Path getTarget() {
        return target;
    }

    public Path getDraft() {
        return draft;
    }

    public int getTargetVocabularySize() {
        return targetVocabularySize;
    }

    public int getDraftVocabularySize() {
        return draftVocabularySize;
    }

}
