package dev.specula.policy;

/**
 * A fixed draft length γ every round: the schedule of the original speculative decoding
 * papers (Leviathan et al. 2023; Chen et al. 2023).
 */
public final class FixedPolicy implements SpeculationPolicy {

    public static final String NAME = "fixed";

    public static final int MAX_GAMMA = 64;

    private final int gamma;

    public FixedPolicy(int gamma) {
        if (gamma < 1 || gamma > MAX_GAMMA) {
            throw new InvalidPolicyOptionException(NAME, InvalidPolicyOptionException.GAMMA, String.valueOf(gamma),
                    "in [1, " + MAX_GAMMA + "]");
        }
        this.gamma = gamma;
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
        // fixed: nothing to learn
    }

    public int gamma() {
        return gamma;
    }

}
