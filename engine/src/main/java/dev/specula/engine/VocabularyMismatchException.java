package dev.specula.engine;

import java.nio.file.Path;
import java.util.List;

/**
 * Draft and target do not share a vocabulary, so the draft's tokens mean nothing to the
 * target: the two models, their tokenizer files, their sizes and what differs.
 */
public class VocabularyMismatchException extends IllegalArgumentException {

    private final Path target;

    private final Path draft;

    private final Path targetTokenizer;

    private final Path draftTokenizer;

    private final int targetVocabularySize;

    private final int draftVocabularySize;

    private final List<String> differences;

    /**
     * A mismatch between the two models' tokenizers.
     * @param target the target model's directory
     * @param targetTokenizer the target's tokenizer.json
     * @param targetVocabularySize the target's largest token id + 1
     * @param draft the draft model's directory
     * @param draftTokenizer the draft's tokenizer.json
     * @param draftVocabularySize the draft's largest token id + 1
     * @param differences what differs, one line each, the most telling first (e.g. "token
     * 'abc' is 17 in the target's tokenizer.json but 912 in the draft's")
     */
    public VocabularyMismatchException(Path target, Path targetTokenizer, int targetVocabularySize, Path draft,
            Path draftTokenizer, int draftVocabularySize, List<String> differences) {
        super("Draft and target vocabularies differ: target " + target + " has " + targetVocabularySize
                + " tokens, draft " + draft + " has " + draftVocabularySize + " tokens"
                + (differences.isEmpty() ? "" : " (" + String.join("; ", differences) + ")") + ". Compared "
                + targetTokenizer + " with " + draftTokenizer + ". Use a draft trained with the target's tokenizer "
                + "(every token at the same id in tokenizer.json), or run without a draft.");
        this.target = target;
        this.draft = draft;
        this.targetTokenizer = targetTokenizer;
        this.draftTokenizer = draftTokenizer;
        this.targetVocabularySize = targetVocabularySize;
        this.draftVocabularySize = draftVocabularySize;
        this.differences = List.copyOf(differences);
    }

    /** The target model's directory. */
    public Path getTarget() {
        return target;
    }

    /** The draft model's directory. */
    public Path getDraft() {
        return draft;
    }

    /** The target's tokenizer.json. */
    public Path getTargetTokenizer() {
        return targetTokenizer;
    }

    /** The draft's tokenizer.json. */
    public Path getDraftTokenizer() {
        return draftTokenizer;
    }

    public int getTargetVocabularySize() {
        return targetVocabularySize;
    }

    public int getDraftVocabularySize() {
        return draftVocabularySize;
    }

    /** What differs, one line each, the most telling first. */
    public List<String> getDifferences() {
        return differences;
    }

}
