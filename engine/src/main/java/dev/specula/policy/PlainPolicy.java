package dev.specula.policy;

/**
 * No speculation: every round is one target step (γ = 0). The baseline every speedup is
 * measured against.
 */
public final class PlainPolicy implements SpeculationPolicy {

    public static final String NAME = "plain";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int draftLength(RoundContext context) {
        return 0;
    }

    @Override
    public void observe(RoundOutcome outcome) {
        // nothing to learn
    }

}
