package dev.specula.engine;

import org.jspecify.annotations.Nullable;

import dev.specula.policy.PlainPolicy;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.PredictedOutput;
import dev.specula.proposer.PromptLookup;
import dev.specula.proposer.ProposerKind;
import dev.specula.proposer.SuffixLookup;
import dev.specula.proposer.TokenProposer;
import dev.specula.request.InvalidRequestException;

/**
 * How one request speculates, settled before any work from its policy, its proposer and
 * the models loaded.
 *
 * @param proposer what proposes the drafts; null: plain decoding (the plain policy)
 * @param lookup prompt lookup's settings when the proposer uses n-grams; null otherwise
 * @param prediction the predicted output's tokens when the proposer is
 * {@code prediction}; null otherwise
 */
record Speculation(@Nullable ProposerKind proposer, @Nullable PromptLookup lookup, int @Nullable [] prediction) {

    static final Speculation PLAIN = new Speculation(null, null, null);

    /**
     * How {@code request} speculates under {@code policy}.
     * @throws dev.specula.request.InvalidRequestException naming {@code proposer} when
     * the request asks for the draft model and none is loaded, or for another proposer
     * than its prediction's; naming {@code prediction} when it asks for that proposer
     * without one, or carries one under the plain policy
     */
    static Speculation of(GenerationRequest request, SpeculationPolicy policy, ModelPair models) {
        ProposerKind kind = proposerOf(request, models);
        if (policy instanceof PlainPolicy) {
            if (request.prediction() != null) {
                throw new InvalidRequestException("prediction",
                        "A prediction is a draft, and the plain policy drafts nothing: drop the prediction or choose "
                                + "a speculative policy");
            }
            return PLAIN;
        }
        return new Speculation(kind, kind.usesLookup() ? request.promptLookup() : null,
                kind == ProposerKind.PREDICTION ? request.prediction() : null);
    }

    /** The request's proposer, or the default for the request and the models loaded. */
    static ProposerKind proposerOf(GenerationRequest request, ModelPair models) {
        return ProposerKind.resolve(request.proposer(), models.draft().isPresent(), models.head().isPresent(),
                request.prediction() != null, "proposer", "prediction");
    }

    boolean speculative() {
        return proposer != null;
    }

    /** Whether the request needs a draft KV cache. */
    boolean usesDraftModel() {
        return proposer != null && proposer.usesModel();
    }

    /** Whether the feature head drafts: the request needs a head KV cache. */
    boolean usesHead() {
        return proposer != null && proposer.usesHead();
    }

    /**
     * The model that drafts for the request: the draft model or the feature head; none
     * for plain decoding and lookups.
     */
    java.util.Optional<dev.specula.model.Decoder> drafter(ModelPair models) {
        return usesHead() ? models.head() : usesDraftModel() ? models.draft() : java.util.Optional.empty();
    }

    /**
     * The sequence's proposer that needs no model (a new one: it may keep state); null
     * when there is none.
     */
    @Nullable TokenProposer newTokenProposer(int promptLength) {
        if (prediction != null) {
            return new PredictedOutput(prediction, promptLength);
        }
        if (proposer != null && proposer.usesSuffixLookup()) {
            return new SuffixLookup();
        }
        return lookup;
    }

    /** The policy's name as results report it: "plain" when nothing is proposed. */
    String policyName(SpeculationPolicy policy) {
        return speculative() ? policy.name() : PlainPolicy.NAME;
    }

}
