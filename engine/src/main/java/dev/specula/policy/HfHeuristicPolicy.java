package dev.specula.policy;

/**
 * transformers' assisted-generation schedule
 * ({@code num_assistant_tokens_schedule="heuristic"} of
 * {@code AssistedCandidateGenerator.update_candidate_strategy}): when every draft of a
 * round was accepted, draft two more next time; otherwise one fewer, never below 1.
 * Capped at γmax.
 *
 * <pre>
 * all accepted:  γ ← min(γ + 2, γmax)
 * otherwise:     γ ← max(1, γ − 1)
 * </pre>
 *
 * Parameters: γ = the starting length (transformers starts at 20; our default is the
 * configured γ), option {@code max} = γmax (default 16).
 */
public final class HfHeuristicPolicy implements SpeculationPolicy {

    public static final String NAME = "hf-heuristic";

    private final int maxGamma;

    private int gamma;

    public HfHeuristicPolicy(int startGamma, int maxGamma) {
        if (maxGamma < 1 || maxGamma > FixedPolicy.MAX_GAMMA) {
            throw new InvalidPolicyOptionException(NAME, "max", String.valueOf(maxGamma),
                    "in [1, " + FixedPolicy.MAX_GAMMA + "]");
        }
        if (startGamma < 1 || startGamma > maxGamma) {
            throw new InvalidPolicyOptionException(NAME, InvalidPolicyOptionException.GAMMA, String.valueOf(startGamma),
                    "in [1, max=" + maxGamma + "]");
        }
        this.gamma = startGamma;
        this.maxGamma = maxGamma;
    }

    static HfHeuristicPolicy create(PolicyParameters parameters) {
        int max = parameters.intOption(NAME, "max", 16, 1, FixedPolicy.MAX_GAMMA);
        return new HfHeuristicPolicy(Math.min(parameters.gamma(NAME, 1, FixedPolicy.MAX_GAMMA), max), max);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int draftLength(RoundContext context) {
        return gamma;
    }

    @Override
    public void observe(RoundOutcome outcome) {
        if (outcome.drafted() == 0) {
            return;
        }
        gamma = outcome.allAccepted() && outcome.drafted() == outcome.requested() ? Math.min(gamma + 2, maxGamma)
                : Math.max(1, gamma - 1);
    }

}
