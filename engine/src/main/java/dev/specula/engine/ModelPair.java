package dev.specula.engine;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import dev.specula.model.Decoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.tokenizer.TextTokenizer;
import dev.specula.tokenizer.Vocabulary;

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

    /** Sizes draft trees from the target's measured costs; measured on first use. */
    private TreeSizer treeSizer;

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
     * @throws VocabularyMismatchException naming both tokenizer files and the first
     * differing tokens when the draft's token ids mean other tokens to the target
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
     * Every token the draft's tokenizer defines has the same id in the target's, and both
     * have the same merges: what the draft proposes means to the target what it means to
     * the draft. The target may define more tokens (the draft never proposes them), and
     * the logits widths may exceed the tokenizers (embedding rows padded differently, as
     * Qwen2.5-0.5B and -7B are) as long as each model's covers its own tokenizer. Equal
     * digests settle the common case; the tokenizer files are read again only when they
     * differ.
     */
    static void checkSameVocabulary(Decoder target, Decoder draft) {
        TextTokenizer targetTokenizer = target.tokenizer();
        TextTokenizer draftTokenizer = draft.tokenizer();
        if (!targetTokenizer.vocabularyDigest().equals(draftTokenizer.vocabularyDigest())) {
            List<String> differences = Vocabulary.differences(Vocabulary.read(targetTokenizer.file()),
                    Vocabulary.read(draftTokenizer.file()));
            if (!differences.isEmpty()) {
                throw mismatch(target, draft, differences);
            }
        }
        for (Decoder model : new Decoder[] { target, draft }) {
            int tokens = model.tokenizer().vocabularySize();
            if (model.logitsWidth() < tokens) {
                throw mismatch(target, draft, List.of(model.files().directory() + " has " + model.logitsWidth()
                        + " logits, fewer than its tokenizer's " + tokens + " tokens"));
            }
        }
    }

    private static VocabularyMismatchException mismatch(Decoder target, Decoder draft, List<String> differences) {
        return new VocabularyMismatchException(target.files().directory(), target.tokenizer().file(),
                target.tokenizer().vocabularySize(), draft.files().directory(), draft.tokenizer().file(),
                draft.tokenizer().vocabularySize(), differences);
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

    /**
     * The tree sizer of this pair: the target's verification costs t(1 .. 65) are
     * measured on the first call (tens of milliseconds for the embedded pair, seconds for
     * a 0.5B target).
     */
    synchronized TreeSizer treeSizer() {
        if (treeSizer == null) {
            try {
                treeSizer = TreeSizer.measure(targetSteps);
            }
            catch (ai.onnxruntime.OrtException ex) {
                throw new GenerationException(
                        "ONNX Runtime failed while timing the target for draft trees: " + ex.getMessage(), ex);
            }
        }
        return treeSizer;
    }

    @Override
    public void close() {
        target.close();
        if (draft != null) {
            draft.close();
        }
    }

}
