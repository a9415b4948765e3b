package dev.specula.policy;

/**
 * GammaTune and GammaTune+ (Gautam, Shrestha, Reddy: "Token-Driven GammaTune: Adaptive
 * Calibration for Enhanced Speculative Decoding", arXiv 2504.00030): the draft length
 * follows the number of accepted tokens A of the last round, with a switch between a fast
 * rule on full acceptance and a smoothed rule otherwise.
 *
 * <pre>
 * all γ drafts accepted:  γ ← clip(A + δ, γmin, γmax)              grow quickly while drafts land
 * otherwise:              γ̄ ← (1 − η)·γ̄ + η·A;  γ ← clip(⌈γ̄⌉)       follow acceptance, smoothed
 * GammaTune+:             additionally stop a round's drafting when the draft's top-1 probability < τ
 * </pre>
 *
 * Defaults η = 0.3, δ = 2, γ ∈ [1, 10], start at 3 (start = the configured γ when it is
 * given), τ = 0.4. These come from a transcription of the paper's Algorithm 1 (its text
 * was not available here); on full acceptance γ̄ is also set to the new γ, so a later
 * partial round smooths from where the fast rule left it. Options: {@code eta},
 * {@code delta}, {@code min}, {@code max}, {@code tau} (GammaTune+ only).
 */
public final class GammaTunePolicy implements SpeculationPolicy {

    public static final String NAME = "gammatune";

    public static final String NAME_PLUS = "gammatune-plus";

    private final String name;

    private final double eta;

    private final int delta;

    private final int minGamma;

    private final int maxGamma;

    /** Top-1 probability under which GammaTune+ stops drafting; 0 for plain GammaTune. */
    private final double tau;

    private double smoothed;

    private int gamma;

    GammaTunePolicy(String name, int startGamma, double eta, int delta, int minGamma, int maxGamma, double tau) {
        if (minGamma > maxGamma) {
            throw new InvalidPolicyOptionException(name, "min", String.valueOf(minGamma), "<= max (" + maxGamma + ")");
        }
        this.name = name;
        this.eta = eta;
        this.delta = delta;
        this.minGamma = minGamma;
        this.maxGamma = maxGamma;
        this.tau = tau;
        this.gamma = clip(startGamma);
        this.smoothed = gamma;
    }

    static GammaTunePolicy create(PolicyParameters parameters, boolean plus) {
        String name = plus ? NAME_PLUS : NAME;
        double eta = parameters.option(name, "eta", 0.3, 0, 1);
        int delta = parameters.intOption(name, "delta", 2, 0, FixedPolicy.MAX_GAMMA);
        int min = parameters.intOption(name, "min", 1, 1, FixedPolicy.MAX_GAMMA);
        int max = parameters.intOption(name, "max", 10, 1, FixedPolicy.MAX_GAMMA);
        double tau = plus ? parameters.option(name, "tau", 0.4, 0, 1) : 0;
        int start = parameters.options().containsKey("start")
                ? parameters.intOption(name, "start", 3, 1, FixedPolicy.MAX_GAMMA)
                : parameters.gamma(name, 1, FixedPolicy.MAX_GAMMA);
        return new GammaTunePolicy(name, start, eta, delta, min, max, tau);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int draftLength(RoundContext context) {
        return gamma;
    }

    @Override
    public boolean shouldPropose(DraftCandidate candidate) {
        return tau == 0 || candidate.topProbability() >= tau;
    }

    @Override
    public void observe(RoundOutcome outcome) {
        if (outcome.requested() == 0) {
            return;
        }
        int accepted = outcome.accepted();
        if (outcome.allAccepted() && outcome.drafted() == outcome.requested()) {
            gamma = clip(accepted + delta);
            smoothed = gamma;
        }
        else {
            smoothed = (1 - eta) * smoothed + eta * accepted;
            gamma = clip((int) Math.ceil(smoothed - 1e-9));
        }
    }

    private int clip(int value) {
        return Math.max(minGamma, Math.min(maxGamma, value));
    }

}
