package dev.specula.sampling;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The acceptance rule on synthetic distributions, with no model: a "model" whose
 * next-token distribution depends only on the position. Speculative sampling of two
 * tokens must be distributed as p_1 × p_2.
 */
class DraftVerifierTest {

    private static final int V = 6;

    private static final int SAMPLES = 200_000;

    /**
     * target p_pos and draft q_pos for positions 0..2 over 6 tokens; q deliberately
     * unlike p.
     */
    private static final float[][] P = { { 0.40f, 0.25f, 0.15f, 0.10f, 0.06f, 0.04f },
            { 0.05f, 0.05f, 0.10f, 0.20f, 0.25f, 0.35f }, { 0.30f, 0.10f, 0.10f, 0.10f, 0.10f, 0.30f }, };

    private static final float[][] Q = { { 0.10f, 0.10f, 0.40f, 0.10f, 0.20f, 0.10f },
            { 0.30f, 0.30f, 0.10f, 0.10f, 0.10f, 0.10f }, { 1f / 6, 1f / 6, 1f / 6, 1f / 6, 1f / 6, 1f / 6 }, };

    private static final SamplingParams UNIT_TEMPERATURE = new SamplingParams(1.0, 0, 1.0, null);

    @Test
    void greedyAcceptsTheMatchingPrefixThenTakesTheTargetsChoice() {
        // argmax per row: 3, 1, 4
        float[] targetLogits = logitsRows(new int[] { 3, 1, 4 });
        assertThat(DraftVerifier.greedy(new int[] { 3, 1 }, 2, targetLogits, V)).isEqualTo(new Verdict(2, 4));
        assertThat(DraftVerifier.greedy(new int[] { 3, 2 }, 2, targetLogits, V)).isEqualTo(new Verdict(1, 1));
        assertThat(DraftVerifier.greedy(new int[] { 0, 1 }, 2, targetLogits, V)).isEqualTo(new Verdict(0, 3));
        assertThat(DraftVerifier.greedy(new int[] {}, 0, targetLogits, V)).isEqualTo(new Verdict(0, 3));
    }

    @Test
    void speculativeSamplingOfTwoTokensFollowsTheTargetDistribution() {
        long[] counts = sampleFirstTwo(true, 2, new SplittableRandom(7));
        double[] expected = jointOfTarget();
        double[] chi = ChiSquare.statistic(counts, expected, SAMPLES);
        assertThat(chi[0]).isLessThan(ChiSquare.critical(chi[1]));
    }

    @Test
    void theChiSquareBoundRejectsSamplesFromTheDraftInstead() {
        // power check: accepting every draft (no rejection rule) yields the draft's
        // distribution, which the bound catches
        long[] counts = sampleFirstTwo(false, 2, new SplittableRandom(7));
        double[] chi = ChiSquare.statistic(counts, jointOfTarget(), SAMPLES);
        assertThat(chi[0]).isGreaterThan(10 * ChiSquare.critical(chi[1]));
    }

    @Test
    void deterministicProposalsKeepTheTargetDistribution() {
        // prompt lookup's proposals: fixed tokens with q one-hot (null). Proposing each
        // position's likeliest token (0, then 5) runs both the accept and the reject path
        // often
        long[] counts = sampleFirstTwo(true, 2, new SplittableRandom(11), new int[] { 0, 5, 0 });
        double[] chi = ChiSquare.statistic(counts, jointOfTarget(), SAMPLES);
        assertThat(chi[0]).isLessThan(ChiSquare.critical(chi[1]));
    }

    @Test
    void aRejectedDeterministicProposalIsNeverTheRecoveredToken() {
        // p(2) = 0.15: a proposed 2 that is rejected must resample p without 2
        float[] targetLogits = new float[2 * V];
        for (int v = 0; v < V; v++) {
            targetLogits[v] = (float) Math.log(P[0][v]);
            targetLogits[V + v] = (float) Math.log(P[1][v]);
        }
        SplittableRandom random = new SplittableRandom(3);
        int accepted = 0;
        for (int n = 0; n < 20_000; n++) {
            Verdict verdict = DraftVerifier.sample(new int[] { 2 }, 1, new float[1][], targetLogits, V,
                    UNIT_TEMPERATURE, random);
            if (verdict.accepted() == 0) {
                assertThat(verdict.nextToken()).isNotEqualTo(2);
            }
            else {
                accepted++;
            }
        }
        assertThat(accepted / 20_000.0).isCloseTo(0.15, org.assertj.core.data.Offset.offset(0.02));
    }

    /** Rounds of γ drafts until two tokens are out; counts (x1, x2) pairs. */
    private static long[] sampleFirstTwo(boolean verify, int gamma, SplittableRandom random) {
        return sampleFirstTwo(verify, gamma, random, null);
    }

    /**
     * As above; {@code fixedDrafts} non-null: the draft at position i is always
     * fixedDrafts[i], proposed with a one-hot q.
     */
    private static long[] sampleFirstTwo(boolean verify, int gamma, SplittableRandom random, int[] fixedDrafts) {
        long[] counts = new long[V * V];
        for (int n = 0; n < SAMPLES; n++) {
            int[] out = new int[4];
            int produced = 0;
            while (produced < 2) {
                int[] drafts = new int[gamma];
                float[][] q = new float[gamma][];
                for (int i = 0; i < gamma; i++) {
                    if (fixedDrafts != null) {
                        drafts[i] = fixedDrafts[Math.min(produced + i, 2)];
                        continue;
                    }
                    q[i] = Q[Math.min(produced + i, 2)];
                    drafts[i] = Distributions.sample(q[i], random);
                }
                if (!verify) {
                    for (int i = 0; i < gamma && produced < 2; i++) {
                        out[produced++] = drafts[i];
                    }
                    continue;
                }
                float[] targetLogits = new float[(gamma + 1) * V];
                for (int row = 0; row <= gamma; row++) {
                    float[] p = P[Math.min(produced + row, 2)];
                    for (int v = 0; v < V; v++) {
                        targetLogits[row * V + v] = (float) Math.log(p[v]);
                    }
                }
                Verdict verdict = DraftVerifier.sample(drafts, gamma, q, targetLogits, V, UNIT_TEMPERATURE, random);
                for (int i = 0; i < verdict.accepted() && produced < 2; i++) {
                    out[produced++] = drafts[i];
                }
                if (produced < 2) {
                    out[produced++] = verdict.nextToken();
                }
            }
            counts[out[0] * V + out[1]]++;
        }
        return counts;
    }

    private static double[] jointOfTarget() {
        double[] joint = new double[V * V];
        for (int a = 0; a < V; a++) {
            for (int b = 0; b < V; b++) {
                joint[a * V + b] = P[0][a] * P[1][b];
            }
        }
        return joint;
    }

    private static float[] logitsRows(int[] argmaxPerRow) {
        float[] logits = new float[argmaxPerRow.length * V];
        for (int row = 0; row < argmaxPerRow.length; row++) {
            logits[row * V + argmaxPerRow[row]] = 5f;
        }
        return logits;
    }

}
