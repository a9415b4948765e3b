package dev.specula.proposer;

import java.util.Locale;

import org.jspecify.annotations.Nullable;

import dev.specula.request.InvalidRequestException;

/**
 * What proposes a round's draft tokens. The target verifies them the same way, whoever
 * proposed them: the output is the target's either way.
 *
 * <pre>
 * model          the draft model, one call per drafted token (needs a draft)
 * ngram          prompt lookup: what followed the last n tokens where they last occurred in
 *                the prompt or the output ({@link PromptLookup}); free, needs no draft
 * model+ngram    the lookup when it matches, the draft model otherwise
 * suffix         suffix lookup: the most frequent continuation of the longest earlier match of the
 *                sequence's end, of any length ({@link SuffixLookup}); free, needs no draft
 * model+suffix   suffix lookup when it matches, the draft model otherwise
 * prediction     the caller's predicted output (OpenAI's Predicted Outputs, {@link PredictedOutput})
 * griffin        the GRIFFIN feature head: drafts from the target's own last hidden state, one head
 *                call per drafted token (needs a head)
 * </pre>
 *
 * The default is {@code prediction} when the request carries a prediction, else
 * {@code model} with a draft, {@code griffin} with a head and no draft, and {@code ngram}
 * without either.
 */
public enum ProposerKind {

    MODEL("model", true, false, false), NGRAM("ngram", false, true, false),
    MODEL_PLUS_NGRAM("model+ngram", true, true, false), SUFFIX("suffix", false, false, true),
    MODEL_PLUS_SUFFIX("model+suffix", true, false, true), PREDICTION("prediction", false, false, false),
    GRIFFIN("griffin", false, false, false);

    /** The names, for messages. */
    public static final String NAMES = "model, ngram, model+ngram, suffix, model+suffix, prediction, griffin";

    private final String id;

    private final boolean usesModel;

    private final boolean usesLookup;

    private final boolean usesSuffixLookup;

    ProposerKind(String id, boolean usesModel, boolean usesLookup, boolean usesSuffixLookup) {
        this.id = id;
        this.usesModel = usesModel;
        this.usesLookup = usesLookup;
        this.usesSuffixLookup = usesSuffixLookup;
    }

    /** The name selected by property, request option and CLI flag. */
    public String id() {
        return id;
    }

    /**
     * The id of the lookup alone ({@code ngram} or {@code suffix}) for a proposer that
     * looks up; null for the others.
     */
    public @Nullable String lookupId() {
        return usesSuffixLookup ? SUFFIX.id : usesLookup ? NGRAM.id : null;
    }

    /** Whether the draft model proposes (in some rounds at least). */
    public boolean usesModel() {
        return usesModel;
    }

    /** Whether the feature head proposes. */
    public boolean usesHead() {
        return this == GRIFFIN;
    }

    /**
     * Whether a model proposes (in some rounds at least): the draft model or the feature
     * head. Such a proposer can draft trees.
     */
    public boolean usesDrafter() {
        return usesModel || usesHead();
    }

    /**
     * Whether prompt lookup by n-grams ({@link PromptLookup}) proposes (in some rounds at
     * least).
     */
    public boolean usesLookup() {
        return usesLookup;
    }

    /**
     * Whether suffix lookup ({@link SuffixLookup}) proposes (in some rounds at least).
     */
    public boolean usesSuffixLookup() {
        return usesSuffixLookup;
    }

    /**
     * The kind named {@code id} ({@code model}, {@code ngram}, {@code model+ngram},
     * {@code suffix}, {@code model+suffix}, {@code prediction}, {@code griffin}).
     * @param field the request field or property that named it, for the error
     * @throws InvalidRequestException naming {@code field} for an unknown name
     */
    public static ProposerKind parse(String id, String field) {
        String wanted = id == null ? "" : id.trim().toLowerCase(Locale.ROOT);
        for (ProposerKind kind : values()) {
            if (kind.id.equals(wanted)) {
                return kind;
            }
        }
        throw new InvalidRequestException(field, "Unknown proposer '" + id + "': use one of " + NAMES);
    }

    /**
     * The kind a request without a prediction runs: the requested one, or the default
     * ({@code model} with a draft, {@code ngram} without one).
     * @param field the request field or property that named it, for the error
     * @throws InvalidRequestException naming {@code field} when the requested kind needs
     * a draft model and none is loaded; naming {@code prediction} when it is
     * {@code prediction}
     */
    public static ProposerKind resolve(@Nullable ProposerKind requested, boolean hasDraft, String field) {
        return resolve(requested, hasDraft, false, false, field, "prediction");
    }

    /**
     * {@link #resolve(ProposerKind, boolean, String)} with a feature head loaded or not.
     */
    public static ProposerKind resolve(@Nullable ProposerKind requested, boolean hasDraft, boolean hasHead,
            String field) {
        return resolve(requested, hasDraft, hasHead, false, field, "prediction");
    }

    /**
     * {@link #resolve(ProposerKind, boolean, boolean, boolean, String, String)} without a
     * head.
     */
    public static ProposerKind resolve(@Nullable ProposerKind requested, boolean hasDraft, boolean hasPrediction,
            String field, String predictionField) {
        return resolve(requested, hasDraft, false, hasPrediction, field, predictionField);
    }

    /**
     * The kind a request runs: the requested one, or the default ({@code prediction} with
     * a prediction, else {@code model} with a draft, {@code griffin} with a head alone,
     * {@code ngram} without either).
     * @param field the request field or property that named the proposer, for the error
     * @param predictionField the request field of the prediction, for the error
     * @throws InvalidRequestException naming {@code field} when the requested kind needs
     * a draft model and none is loaded, or when a prediction comes with another proposer;
     * naming {@code predictionField} when {@code prediction} comes without a prediction;
     * naming {@code field} when {@code griffin} is asked for and no head is loaded
     */
    public static ProposerKind resolve(@Nullable ProposerKind requested, boolean hasDraft, boolean hasHead,
            boolean hasPrediction, String field, String predictionField) {
        if (requested == null) {
            return hasPrediction ? PREDICTION : hasDraft ? MODEL : hasHead ? GRIFFIN : NGRAM;
        }
        if (requested == GRIFFIN && !hasHead && !hasPrediction) {
            throw new InvalidRequestException(field,
                    "The proposer 'griffin' drafts with a GRIFFIN feature head, and none is loaded: load one "
                            + "(specula.griffin.location, or --griffin in the CLI) or choose another proposer");
        }
        if (requested == PREDICTION && !hasPrediction) {
            throw new InvalidRequestException(predictionField,
                    "The proposer 'prediction' drafts the caller's predicted output, and the request has none");
        }
        if (requested != PREDICTION && hasPrediction) {
            throw new InvalidRequestException(field,
                    "The request carries a prediction, which only the proposer 'prediction' drafts, but asks for '"
                            + requested.id + "': leave the proposer out or drop the prediction");
        }
        if (requested.usesModel && !hasDraft) {
            throw new InvalidRequestException(field,
                    "The proposer '" + requested.id + "' needs a draft model, and none is loaded: load a draft "
                            + "(specula.draft.location, or --draft in the CLI) or choose the proposer 'ngram'");
        }
        return requested;
    }

    @Override
    public String toString() {
        return id;
    }

}
