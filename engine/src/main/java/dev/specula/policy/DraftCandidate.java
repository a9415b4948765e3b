package dev.specula.policy;

import org.jspecify.annotations.Nullable;

import dev.specula.sampling.Distributions;

/**
 * A draft token about to be proposed, with the draft model's own distribution (softmax of
 * its raw logits, temperature 1) at that position; the statistics are computed only if a
 * policy asks for them.
 */
public final class DraftCandidate {

    private final int index;

    private final int token;

    private final float[] logits;

    private final int offset;

    private final int width;

    private final double priorLogProbability;

    private float @Nullable [] probabilities;

    /**
     * One draft token the policy may stop at.
     * @param index 0-based position of the candidate in this round
     * @param token the id the draft would propose
     * @param logits the draft's logits row (from {@code offset}, {@code width} wide)
     * @param priorLogProbability sum of log-probabilities of the tokens already proposed
     * this round
     */
    public DraftCandidate(int index, int token, float[] logits, int offset, int width, double priorLogProbability) {
        this.index = index;
        this.token = token;
        this.logits = logits;
        this.offset = offset;
        this.width = width;
        this.priorLogProbability = priorLogProbability;
    }

    public int index() {
        return index;
    }

    public int token() {
        return token;
    }

    /** The draft's probability of its most likely token. */
    public double topProbability() {
        float[] p = probabilities();
        float max = 0;
        for (float v : p) {
            max = Math.max(max, v);
        }
        return max;
    }

    /** The draft's probability of the candidate token. */
    public double tokenProbability() {
        return probabilities()[token];
    }

    /** Shannon entropy of the draft's distribution, in nats. */
    public double entropy() {
        double entropy = 0;
        for (float v : probabilities()) {
            if (v > 0) {
                entropy -= v * Math.log(v);
            }
        }
        return entropy;
    }

    /** Sum of log-probabilities of this round's drafts, the candidate included. */
    public double cumulativeLogProbability() {
        return priorLogProbability + Math.log(Math.max(tokenProbability(), Double.MIN_VALUE));
    }

    /**
     * {@link #cumulativeLogProbability()} if a policy already asked for the statistics,
     * else NaN (not computed).
     */
    public double knownCumulativeLogProbability() {
        return probabilities == null ? Double.NaN : cumulativeLogProbability();
    }

    private float[] probabilities() {
        if (probabilities == null) {
            probabilities = Distributions.softmax(logits, offset, width);
        }
        return probabilities;
    }

}
