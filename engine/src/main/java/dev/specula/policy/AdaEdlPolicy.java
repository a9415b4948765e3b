package dev.specula.policy;

/**
 * AdaEDL (Agrawal, Jeon, Lee: "AdaEDL: Early Draft Stopping for Speculative Decoding of
 * Large Language Models via an Entropy-based Lower Bound on Token Acceptance
 * Probability", arXiv 2410.18351). The probability that a draft token is accepted is
 * bounded below by 1 − sqrt(c·H(q)), H the entropy of the draft's distribution; drafting
 * stops when the bound falls under λ, and λ adapts to the measured acceptance rate.
 *
 * <pre>
 * per draft position:  stop if 1 − sqrt(0.2 · H(q)) < λ                 (H in nats)
 * after each round:    AR ← 0.5·AR + 0.5·accepted/drafted
 *                      λ' = λ + 0.01  if AR < 0.9
 *                           λ − 0.01  if not all drafts were accepted
 *                           λ         otherwise
 *                      λ  ← 0.9·λ + 0.1·λ'
 * </pre>
 *
 * γ caps a round. Options: {@code lambda} (start, default 0.45), {@code c} (default 0.2).
 */
public final class AdaEdlPolicy implements SpeculationPolicy {

    public static final String NAME = "adaedl";

    private final int maxGamma;

    private final double coefficient;

    private double lambda;

    private double acceptanceRate = 1;

    public AdaEdlPolicy(int maxGamma, double lambda, double coefficient) {
        this.maxGamma = maxGamma;
        this.lambda = lambda;
        this.coefficient = coefficient;
    }

    static AdaEdlPolicy create(PolicyParameters parameters) {
        return new AdaEdlPolicy(parameters.gamma(NAME, 1, FixedPolicy.MAX_GAMMA),
                parameters.option(NAME, "lambda", 0.45, 0, 1), parameters.option(NAME, "c", 0.2, 1e-6, 10));
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
        return 1 - Math.sqrt(coefficient * candidate.entropy()) >= lambda;
    }

    @Override
    public void observe(RoundOutcome outcome) {
        if (outcome.drafted() == 0) {
            return;
        }
        acceptanceRate = 0.5 * acceptanceRate + 0.5 * outcome.accepted() / outcome.drafted();
        double target;
        if (acceptanceRate < 0.9) {
            target = lambda + 0.01;
        }
        else if (outcome.accepted() < outcome.drafted()) {
            target = lambda - 0.01;
        }
        else {
            target = lambda;
        }
        lambda = 0.9 * lambda + 0.1 * target;
    }

    /** The current threshold λ. */
    public double lambda() {
        return lambda;
    }

}
