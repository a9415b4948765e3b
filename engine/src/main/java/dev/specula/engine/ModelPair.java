package dev.specula.engine;

import java.nio.file.Path;
import java.util.Optional;

import dev.specula.model.Decoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.tokenizer.TextTokenizer;

/**
 * A target model and, optionally, a draft that shares its vocabulary. Without a draft
 * every request is plain target decoding.
 */
public final class ModelPair implements AutoCloseable {

    private final DecoderModel target;

    /**
     * The target as the decode loop calls it: the model itself, or a decorator of it (a
     * slow target in a test).
     */
    private final Decoder targetSteps;

    private final Decoder draft;

    public ModelPair(DecoderModel target, Decoder draft) {
        this(target, target, draft);
    }

    /**
     * A pair whose target steps go through {@code targetSteps}, a decorator of
     * {@code target}.
     */
    ModelPair(DecoderModel target, Decoder targetSteps, Decoder draft) {
        if (target == null) {
            throw new IllegalArgumentException("target must not be null");
        }
        if (draft != null) {
            checkSameVocabulary(target, draft);
        }
        this.target = target;
        this.targetSteps = targetSteps;
        this.draft = draft;
    }

    /**
     * Loads the target and (if {@code draftLocation} is not null) the draft.
     * @throws VocabularyMismatchException naming both models and sizes when their
     * vocabularies differ
     */
    public static ModelPair load(Path targetLocation, Path draftLocation, RuntimeOptions options) {
        DecoderModel target = DecoderModel.load(targetLocation, options);
        if (draftLocation == null) {
            return new ModelPair(target, null);
        }
        DecoderModel draft = null;
        try {
            draft = DecoderModel.load(draftLocation, options);
            return new ModelPair(target, draft);
        }
        catch (RuntimeException ex) {
            target.close();
            if (draft != null) {
                draft.close();
            }
            throw ex;
        }
    }

    /**
     * Same tokenizer vocabulary size and the same special tokens. The logits widths may
     * differ (embedding rows padded differently, as Qwen2.5-0.5B and -7B are) as long as
     * both cover the tokenizer.
     */
    static void checkSameVocabulary(Decoder target, Decoder draft) {
        TextTokenizer targetTokenizer = target.tokenizer();
        TextTokenizer draftTokenizer = draft.tokenizer();
        Path targetDir = target.files().directory();
        Path draftDir = draft.files().directory();
        if (targetTokenizer.vocabularySize() != draftTokenizer.vocabularySize()) {
            throw new VocabularyMismatchException(targetDir, targetTokenizer.vocabularySize(), draftDir,
                    draftTokenizer.vocabularySize(), "tokenizer.json sizes differ");
        }
        if (!targetTokenizer.specialTokens().equals(draftTokenizer.specialTokens())) {
            throw new VocabularyMismatchException(targetDir, targetTokenizer.vocabularySize(), draftDir,
                    draftTokenizer.vocabularySize(), "special tokens differ: target " + targetTokenizer.specialTokens()
                            + ", draft " + draftTokenizer.specialTokens());
        }
        for (Decoder model : new Decoder[] { target, draft }) {
            if (model.logitsWidth() < targetTokenizer.vocabularySize()) {
                throw new VocabularyMismatchException(targetDir, target.logitsWidth(), draftDir, draft.logitsWidth(),
                        model.files().directory() + " has " + model.logitsWidth()
                                + " logits, fewer than the tokenizer's " + targetTokenizer.vocabularySize()
                                + " tokens");
            }
        }
    }

    public DecoderModel target() {
        return target;
    }

    Decoder targetSteps() {
        return targetSteps;
    }

    public Optional<Decoder> draft() {
        return Optional.ofNullable(draft);
    }

    @Override
    public void close() {
        target.close();
        if (draft != null) {
            draft.close();
        }
    }

}
