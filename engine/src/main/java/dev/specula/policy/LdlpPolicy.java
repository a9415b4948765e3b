package dev.specula.policy;

/**
 * AdaEAGLE's draft length control (Zhang et al., "AdaEAGLE: Optimizing Speculative
 * Decoding via Explicit Modeling of Adaptive Draft Structures", arXiv 2412.18910): before
 * each round, the Lightweight Draft Length Predictor (LDLP, a small residual MLP,
 * {@link LengthPredictor}) predicts from the target's last hidden state and the last
 * token's embedding how many drafts the target will accept; drafting goes on past that
 * length only while the draft stays sure of itself.
 *
 * <pre>
 * before the round:  L̂ = round(LDLP(h_t, x_t))                     clamped to [0, γmax]
 * per position i:    stop iff i ≥ L̂  AND  Σ_{j≤i} log q(d_j) < threshold   (threshold −0.6)
 * </pre>
 *
 * The first round, before the target has produced a hidden state, drafts the configured
 * γ. Needs a target exported {@code --with-hidden} and {@code ldlp.onnx} next to it.
 * Options: {@code logprob} (the cumulative log-probability threshold, default −0.6),
 * {@code max} (γmax, default from ldlp.json).
 */
public final class LdlpPolicy implements SpeculationPolicy {

    public static final String NAME = "ldlp";

    private final DraftLengthPredictor predictor;

    private final int firstRoundGamma;

    private final int maxGamma;

    private final double threshold;

    private int predicted;

    public LdlpPolicy(DraftLengthPredictor predictor, int firstRoundGamma, int maxGamma, double threshold) {
        this.predictor = predictor;
        this.firstRoundGamma = firstRoundGamma;
        this.maxGamma = maxGamma;
        this.threshold = threshold;
    }

    static LdlpPolicy create(PolicyParameters parameters) {
        java.nio.file.Path directory = parameters.model()
            .orElseThrow(() -> new IllegalArgumentException(
                    "Policy 'ldlp' needs the target model's directory (its ldlp.onnx); none was given"));
        LengthPredictor predictor = parameters.resources().predictor(directory);
        int max = parameters.intOption(NAME, "max", predictor.gammaMax(), 1, FixedPolicy.MAX_GAMMA);
        return new LdlpPolicy(predictor, Math.min(parameters.gamma(NAME, 1, FixedPolicy.MAX_GAMMA), max), max,
                parameters.option(NAME, "logprob", -0.6, -100, 0));
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public boolean usesTargetHiddenState() {
        return true;
    }

    @Override
    public int draftLength(RoundContext context) {
        if (context.targetHiddenState() == null) {
            predicted = firstRoundGamma;
            return firstRoundGamma;
        }
        double length = predictor.predict(context.targetHiddenState(), context.lastToken());
        predicted = (int) Math.max(0, Math.min(maxGamma, Math.round(length)));
        return maxGamma;
    }

    @Override
    public boolean shouldPropose(DraftCandidate candidate) {
        return candidate.index() < predicted || candidate.cumulativeLogProbability() >= threshold;
    }

    @Override
    public void observe(RoundOutcome outcome) {
        // the predictor was trained offline; nothing to learn online
    }

    /** The length predicted for the current round. */
    int predicted() {
        return predicted;
    }

}
