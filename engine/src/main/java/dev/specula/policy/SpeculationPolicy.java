package dev.specula.policy;

/**
 * Decides how far the draft model runs ahead: one instance per sequence, asked before
 * each round and told what the round produced.
 *
 * <pre>
 * round:  γ = draftLength(context)            0 = a plain target step
 *         for i in 0..γ-1:                    the draft proposes d_i from its distribution
 *             if !shouldPropose(candidate_i)  stop drafting early (confidence, entropy, ...)
 *         target verifies the proposed drafts in one call
 *         observe(outcome)                    accepted count, timings
 * </pre>
 */
public interface SpeculationPolicy {

    /**
     * The policy's name as selected by property, request option or CLI flag (e.g.
     * "fixed").
     */
    String name();

    /**
     * Draft tokens to propose in the next round, 0 for a plain target step; the engine
     * caps it at what is left to generate.
     */
    int draftLength(RoundContext context);

    /**
     * Called before draft token {@code candidate.index()} is proposed; false stops this
     * round's drafting.
     */
    default boolean shouldPropose(DraftCandidate candidate) {
        return true;
    }

    /**
     * Whether {@link RoundContext#targetHiddenState()} should be filled (the target must
     * export it).
     */
    default boolean usesTargetHiddenState() {
        return false;
    }

    /** What the round produced. */
    void observe(RoundOutcome outcome);

}
