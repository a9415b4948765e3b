package dev.specula.policy;

import org.jspecify.annotations.Nullable;

/**
 * Ours: pick the draft length that maximizes expected tokens per second, from what is
 * measured while decoding — not a heuristic on the last round. With α_i the probability
 * that draft i is accepted given the drafts before it were, and T(γ) the measured wall
 * time of a round that drafts γ tokens (γ draft steps, one verification of γ + 1
 * positions — it grows with γ — and the engine's own work):
 *
 * <pre>
 * E(γ) = 1 + Σ_{k=1..γ} Π_{i&lt;k} α_i            expected tokens a round emits
 * γ*   = argmax_{0 ≤ γ ≤ γmax} E(γ) / T(γ)      γ* = 0 (a plain step) when speculation does not pay
 * </pre>
 *
 * Acceptance comes in streaks (a boilerplate stretch, then prose), so α_i is estimated
 * separately for the two states a round can start in: after a round whose drafts were all
 * accepted, and after one with a rejection (a Markov view of the streaks that
 * transformers' heuristic and GammaTune exploit by reacting to the last round). Every
 * sequence keeps its own counts per state (a boilerplate answer differs from prose),
 * blended with the estimates the sequences of the model pair share through their owner's
 * {@link PolicyResources} ({@link GoodputEstimates}: the prior, so no warm-up after the
 * first request). Now and then (every {@code probe} rounds) it drafts one more than γ*
 * (at least 1), so positions it stopped drafting keep being measured and a γ* of 0 can
 * recover. While γ* is 0 and those probes fail, each failed probe doubles the wait for
 * the next (up to {@value #MAX_PROBE_BACKOFF} times {@code probe}): a draft that never
 * lands costs a probe's draft calls and verified token ever more rarely; the first
 * accepted draft brings the wait back to {@code probe}. Probes from γ* = 0 are also
 * spaced so that their extra time stays within 1/{@value #PROBE_BUDGET_DIVISOR} of the
 * plain steps' (up to {@value #MAX_BUDGET_WAIT} times {@code probe} rounds apart): on a
 * small target a model draft's probe, which first catches up on every token since its
 * last call, costs many plain steps, while a prompt lookup's costs one more verified
 * token.
 *
 * The shared estimates are kept per proposer ({@link RoundContext#proposer()}): a round
 * of prompt lookup costs no draft calls and is accepted at its own rate, so requests that
 * draft with the model and requests that look up do not blur each other's T(γ) and α; nor
 * do the rounds of one request that drafts with the model unless its lookup matches
 * ({@code model+ngram}, {@code model+suffix}): each round is told which of them proposes,
 * and its own counts are kept per proposer too.
 *
 * Options: {@code max} (γmax, default 12), {@code probe} (rounds between probes, default
 * 16), {@code prior} (weight, in rounds, of the shared estimate against a sequence's own
 * counts, default 4).
 */
public final class GoodputPolicy implements SpeculationPolicy {

    public static final String NAME = "goodput";

    /**
     * Acceptance assumed where nothing was measured yet: optimistic, so positions get
     * tried.
     */
    private static final double UNMEASURED_ACCEPTANCE = 0.7;

    /**
     * Round times, and acceptance after a round with a rejection (index 0) or after a
     * fully accepted one (1).
     */
    private GoodputEstimates shared;

    private GoodputEstimates[] sharedByState;

    /** Where the shared estimates of each proposer come from. */
    private final PolicyResources resources;

    private final java.nio.file.@Nullable Path model;

    /**
     * The proposer whose shared estimates {@link #shared} holds ("" before any round).
     */
    private String proposer = "";

    /** This sequence's own counts for the current proposer, by state. */
    private GoodputEstimates[] ownByState;

    /**
     * This sequence's own counts per proposer: a request drafting with the model unless
     * its lookup matches hears of both, round by round ({@link RoundContext#proposer()}).
     */
    private final java.util.Map<String, GoodputEstimates[]> ownByProposer = new java.util.HashMap<>();

    /**
     * The state the next round starts in: whether the last round accepted every draft (a
     * first round counts as after one).
     */
    private int state = 1;

    /** The state the round in flight started in. */
    private int roundState;

    private final int maxGamma;

    private final int startGamma;

    private final int probeEvery;

    /**
     * The longest wait between probes, in multiples of {@link #probeEvery}: a draft that
     * starts to land (a prompt lookup once the answer starts quoting) is found within 64
     * rounds at the default.
     */
    static final int MAX_PROBE_BACKOFF = 4;

    /**
     * Probes from γ* = 0 take at most this share (its inverse) of the time of the plain
     * steps between them.
     */
    static final int PROBE_BUDGET_DIVISOR = 32;

    /**
     * The longest wait between probes that the budget sets, in multiples of
     * {@link #probeEvery}.
     */
    static final int MAX_BUDGET_WAIT = 16;

    /** Rounds between probes now: {@link #probeEvery}, doubled by each failed probe. */
    private int probeWait;

    /** Rounds since the last probe. */
    private int sinceProbe;

    /**
     * Whether the round in flight is a probe from γ* = 0: set by draftLength, consumed by
     * observe.
     */
    private boolean probingFromPlain;

    private final double priorWeight;

    private int rounds;

    GoodputPolicy(PolicyResources resources, java.nio.file.@Nullable Path model, int startGamma, int maxGamma,
            int probeEvery, double priorWeight) {
        this.resources = resources;
        this.model = model;
        this.shared = estimates("");
        this.sharedByState = new GoodputEstimates[] { estimates("after-rejection"),
                estimates("after-full-acceptance") };
        this.startGamma = startGamma;
        this.maxGamma = maxGamma;
        this.probeEvery = probeEvery;
        this.probeWait = probeEvery;
        this.priorWeight = priorWeight;
        this.ownByState = ownCounts("");
    }

    static GoodputPolicy create(PolicyParameters parameters) {
        int max = parameters.intOption(NAME, "max", 12, 1, FixedPolicy.MAX_GAMMA);
        java.nio.file.Path model = parameters.modelDirectory();
        PolicyResources resources = parameters.resources();
        return new GoodputPolicy(resources, model, Math.min(parameters.gamma(NAME, 1, FixedPolicy.MAX_GAMMA), max), max,
                parameters.intOption(NAME, "probe", 16, 2, 1_000_000),
                parameters.option(NAME, "prior", 4, 0, 1_000_000));
    }

    @Override
    public String name() {
        return NAME;
    }

    /**
     * The shared estimates under {@code part} for the current proposer (the draft
     * model's, and an unknown proposer's, under the part alone, as before proposers were
     * told apart).
     */
    private GoodputEstimates estimates(String part) {
        String key = proposer.isEmpty() || proposer.equals("model") ? part : proposer + "/" + part;
        return resources.estimates(model, key, FixedPolicy.MAX_GAMMA);
    }

    /**
     * This sequence's own counts (after a rejection, after a full acceptance) for a
     * proposer.
     */
    private GoodputEstimates[] ownCounts(String proposerId) {
        return ownByProposer.computeIfAbsent(proposerId,
                (id) -> new GoodputEstimates[] { new GoodputEstimates(maxGamma), new GoodputEstimates(maxGamma) });
    }

    @Override
    public int draftLength(RoundContext context) {
        String current = context.proposer() == null ? "" : context.proposer();
        if (!current.equals(proposer)) {
            proposer = current;
            shared = estimates("");
            sharedByState = new GoodputEstimates[] { estimates("after-rejection"), estimates("after-full-acceptance") };
            ownByState = ownCounts(current);
        }
        rounds++;
        roundState = state;
        double[] times = new double[maxGamma + 1];
        for (int gamma = 0; gamma <= maxGamma; gamma++) {
            times[gamma] = shared.roundNanos(gamma);
            if (Double.isNaN(times[gamma])) {
                // nothing measured yet for this model pair: draft the configured γ,
                // varied so T(k) gets a slope
                return rounds % 2 == 0 ? Math.max(1, startGamma - 1) : startGamma;
            }
        }
        int best = bestGamma(times);
        if (++sinceProbe >= roundsBetweenProbes(best, times[0])) {
            sinceProbe = 0;
            probingFromPlain = best == 0;
            return Math.min(maxGamma, Math.max(1, best + 1));
        }
        return best;
    }

    /**
     * {@link #probeWait}; from γ* = 0, at least as many rounds as keep a probe's extra
     * time (measured, shared) within the budget of the plain steps' ({@code plainNanos}
     * each).
     */
    private int roundsBetweenProbes(int best, double plainNanos) {
        double extra = shared.probeNanos() - plainNanos;
        if (best > 0 || !(extra > 0)) {
            return probeWait;
        }
        double affordable = Math.ceil(extra * PROBE_BUDGET_DIVISOR / plainNanos);
        return (int) Math.max(probeWait, Math.min(affordable, (double) probeEvery * MAX_BUDGET_WAIT));
    }

    /** argmax over γ of E(γ)/T(γ), for round times {@code times[γ]}. */
    int bestGamma(double[] times) {
        int best = 0;
        double bestRate = 1 / times[0];
        double expected = 1;
        double allAccepted = 1;
        for (int gamma = 1; gamma < times.length; gamma++) {
            allAccepted *= acceptance(gamma - 1);
            expected += allAccepted;
            double rate = expected / times[gamma];
            if (rate > bestRate) {
                bestRate = rate;
                best = gamma;
            }
        }
        return best;
    }

    /**
     * α_i: this sequence's counts blended with the shared estimate (itself blended with
     * an optimistic prior).
     */
    double acceptance(int position) {
        double sharedAlpha = sharedByState[state].acceptance(position, UNMEASURED_ACCEPTANCE, 2);
        return ownByState[state].acceptance(position, sharedAlpha, priorWeight);
    }

    @Override
    public void observe(RoundOutcome outcome) {
        if (outcome.accepted() > 0) {
            probeWait = probeEvery;
        }
        else if (probingFromPlain && outcome.drafted() > 0) {
            probeWait = Math.min(probeWait * 2, probeEvery * MAX_PROBE_BACKOFF);
        }
        if (probingFromPlain && outcome.drafted() > 0 && rounds > 1) {
            shared.recordProbe(outcome.roundNanos());
        }
        probingFromPlain = false;
        if (outcome.drafted() > 0) {
            ownByState[roundState].recordAcceptance(outcome.drafted(), outcome.accepted());
            sharedByState[roundState].recordAcceptance(outcome.drafted(), outcome.accepted());
            state = outcome.allAccepted() ? 1 : 0;
        }
        if (rounds > 1) {
            // the first round also prefills the prompt: its time says nothing about a
            // step
            shared.recordRound(outcome.drafted(), outcome.roundNanos());
        }
    }

}
