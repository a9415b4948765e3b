package dev.specula.engine;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import org.jspecify.annotations.Nullable;

import dev.specula.model.Decoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.ModelLoadException;
import dev.specula.model.RuntimeOptions;
import dev.specula.tokenizer.TextTokenizer;
import dev.specula.tokenizer.Vocabulary;

/**
 * A target model and, optionally, a draft that shares its vocabulary and a GRIFFIN
 * feature head over the target's hidden states. Without either every request is plain
 * target decoding (or drafts by lookup).
 */
public final class ModelPair implements AutoCloseable {

    private final DecoderModel target;

    /**
     * The target as the decode loop calls it: the model itself, or a decorator of it (a
     * slow target in a test).
     */
    private final Decoder targetSteps;

    private final Decoder draft;

    /** The feature head drafting from the target's hidden states; null: none. */
    private final @Nullable Decoder head;

    /** Sizes draft trees from the target's measured costs; measured on first use. */
    private TreeSizer treeSizer;

    public ModelPair(DecoderModel target, Decoder draft) {
        this(target, target, draft, null);
    }

    /** A pair with a draft and a feature head, either of which may be null. */
    public static ModelPair withHead(DecoderModel target, @Nullable Decoder draft, @Nullable Decoder head) {
        return new ModelPair(target, target, draft, head);
    }

    /**
     * A pair whose target steps go through {@code targetSteps}, a decorator of
     * {@code target}.
     */
    ModelPair(DecoderModel target, Decoder targetSteps, Decoder draft) {
        this(target, targetSteps, draft, null);
    }

    ModelPair(DecoderModel target, Decoder targetSteps, @Nullable Decoder draft, @Nullable Decoder head) {
        if (target == null) {
            throw new IllegalArgumentException("target must not be null");
        }
        for (Decoder decoder : new Decoder[] { target, draft }) {
            if (decoder != null && decoder.takesFeatures()) {
                throw new ModelLoadException(decoder.files().model(),
                        decoder.files().directory()
                                + " is a feature head (its graph takes hidden_states): load it as the head "
                                + "(specula.griffin.location, or --griffin in the CLI), not as a target or draft");
            }
        }
        if (draft != null) {
            checkSameVocabulary(target, draft);
        }
        if (head != null) {
            checkHead(target, head);
        }
        this.target = target;
        this.targetSteps = targetSteps;
        this.draft = draft;
        this.head = head;
    }

    /**
     * A feature head drafts from the target's {@code last_hidden_state}, of its width,
     * and proposes the target's tokens.
     */
    static void checkHead(DecoderModel target, Decoder head) {
        if (!head.takesFeatures()) {
            throw new ModelLoadException(head.files().model(),
                    head.files().directory() + " is not a feature head"
                            + " (its graph takes no hidden_states input): train one with python -m specula_tools "
                            + "train-griffin, or load this model as the draft");
        }
        if (!target.signature().hasHiddenState()) {
            throw new ModelLoadException(target.files().model(), "The feature head " + head.files().directory()
                    + " drafts from the target's last_hidden_state, and " + target.files().model()
                    + " has no such output: export the target with --with-hidden (python -m specula_tools export)");
        }
        if (head.hiddenSize() != target.hiddenSize()) {
            throw new ModelLoadException(head.files().model(),
                    "The feature head " + head.files().directory() + " returns hidden states of width "
                            + head.hiddenSize() + ", but the target's " + "last_hidden_state has width "
                            + target.hiddenSize() + ": train the head on this target");
        }
        checkSameVocabulary(target, head);
    }

    /**
     * Loads the target and (if {@code draftLocation} is not null) the draft.
     * @throws VocabularyMismatchException naming both tokenizer files and the first
     * differing tokens when the draft's token ids mean other tokens to the target
     */
    public static ModelPair load(Path targetLocation, Path draftLocation, RuntimeOptions options) {
        return load(targetLocation, draftLocation, null, options);
    }

    /**
     * Loads the target, and the draft and the feature head when their locations are not
     * null.
     * @throws ModelLoadException when the head is no feature head or does not fit the
     * target (the target has no last_hidden_state, or another width)
     */
    public static ModelPair load(Path targetLocation, @Nullable Path draftLocation, @Nullable Path headLocation,
            RuntimeOptions options) {
        DecoderModel target = DecoderModel.load(targetLocation, options);
        DecoderModel draft = null;
        DecoderModel head = null;
        try {
            draft = draftLocation == null ? null : DecoderModel.load(draftLocation, options);
            head = headLocation == null ? null : DecoderModel.load(headLocation, options);
            return withHead(target, draft, head);
        }
        catch (RuntimeException ex) {
            target.close();
            for (DecoderModel model : new DecoderModel[] { draft, head }) {
                if (model != null) {
                    model.close();
                }
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

    /** The GRIFFIN feature head, when one is loaded. */
    public Optional<Decoder> head() {
        return Optional.ofNullable(head);
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
        if (head != null) {
            head.close();
        }
    }

}
