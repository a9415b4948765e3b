package dev.specula.policy;

/**
 * Draft while the draft model is confident: stop a round when the draft's top-1
 * probability falls below a threshold (llama.cpp's {@code --draft-p-min}, default 0.75
 * there and here), drafting at most γ tokens.
 *
 * <pre>
 * for each draft position: propose iff max_v q(v) ≥ threshold;  at most γ per round
 * </pre>
 *
 * Options: {@code threshold} in [0, 1]. γ is the cap (default: the configured γ; 16 is a
 * good cap here).
 */
public final class ConfidencePolicy implements SpeculationPolicy {

    public static final String NAME = "confidence";

    private final int maxGamma;

    private final double threshold;

    public ConfidencePolicy(int maxGamma, double threshold) {
        this.maxGamma = maxGamma;
        this.threshold = threshold;
    }

    static ConfidencePolicy create(PolicyParameters parameters) {
        return new ConfidencePolicy(parameters.gamma(NAME, 1, FixedPolicy.MAX_GAMMA),
                parameters.option(NAME, "threshold", 0.75, 0, 1));
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int draftLength(RoundContext context) {
        return maxGamma;
    }

    @Override
    public boolean shouldPropose(DraftCandidate candidate) {
        // as llama.cpp, also for the first position: a round may draft nothing (a plain
        // target step)
        return candidate.topProbability() >= threshold;
    }

    @Override
    public void observe(RoundOutcome outcome) {
        // stateless
    }

}
