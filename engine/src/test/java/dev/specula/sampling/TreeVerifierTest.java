package dev.specula.sampling;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import dev.specula.proposer.DraftTree;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Tree verification on synthetic distributions whose second token depends on the first
 * (so a node's own row must be read): the first two tokens out of rounds over trees of
 * width 2 and 3 are distributed as p(x1) · p(x2 | x1) (chi-square at 99.9 %), and greedy
 * keeps the longest path matching the target's argmax.
 */
class TreeVerifierTest {

    private static final int V = 6;

    private static final int SAMPLES = 200_000;

    private static final float[] FIRST = { 0.40f, 0.25f, 0.15f, 0.10f, 0.06f, 0.04f };

    private static final SamplingParams UNIT_TEMPERATURE = new SamplingParams(1.0, 0, 1.0, null);

    /** p(x2 | x1): a base distribution rotated by x1. */
    private static float[] second(int first) {
        float[] base = { 0.05f, 0.05f, 0.10f, 0.20f, 0.25f, 0.35f };
        float[] p = new float[V];
        for (int v = 0; v < V; v++) {
            p[v] = base[(v + first) % V];
        }
        return p;
    }

    /** p(x3 | x1, x2): uniform but for x2's favourite. */
    private static float[] third(int second) {
        float[] p = new float[V];
        java.util.Arrays.fill(p, 0.1f);
        p[second] = 0.5f;
        return p;
    }

    /**
     * root ─ 0 ─ 4, 5 / ─ 1 ─ 3 / ─ 2 (width up to 3); siblings by the draft's order.
     */
    private static DraftTree tree(int width) {
        if (width == 2) {
            return new DraftTree(new int[] { 0, 1, 4, 5, 3 }, new int[] { -1, -1, 0, 0, 1 },
                    new float[] { -0.5f, -1f, -1.2f, -1.5f, -2f });
        }
        return new DraftTree(new int[] { 0, 1, 2, 4, 5, 3, 2 }, new int[] { -1, -1, -1, 0, 0, 1, 3 },
                new float[] { -0.5f, -1f, -1.1f, -1.2f, -1.5f, -2f, -2.5f });
    }

    /** Target rows [1 + size, V]: the root's, then each node's given its path. */
    private static float[] rows(DraftTree tree) {
        float[] logits = new float[(1 + tree.size()) * V];
        fill(logits, 0, FIRST);
        for (int node = 0; node < tree.size(); node++) {
            float[] p = tree.depth(node) == 1 ? second(tree.token(node)) : third(tree.token(node));
            fill(logits, 1 + node, p);
        }
        return logits;
    }

    private static void fill(float[] logits, int row, float[] p) {
        for (int v = 0; v < V; v++) {
            logits[row * V + v] = (float) Math.log(p[v]);
        }
    }

    /** Rounds until two tokens are out; counts (x1, x2). */
    private static long[] sampleFirstTwo(DraftTree tree, SplittableRandom random, boolean lossless) {
        long[] counts = new long[V * V];
        for (int n = 0; n < SAMPLES; n++) {
            int[] out = new int[2];
            int produced = 0;
            // the first round is over the tree; a second, if needed, is plain
            TreeVerdict verdict = lossless ? TreeVerifier.sample(tree, rows(tree), V, UNIT_TEMPERATURE, random, null)
                    : acceptFirstChild(tree, random);
            for (int i = 0; i < verdict.accepted() && produced < 2; i++) {
                out[produced++] = tree.token(verdict.path()[i]);
            }
            if (produced < 2) {
                out[produced++] = verdict.nextToken();
            }
            if (produced < 2) {
                out[produced++] = Distributions.sample(second(out[0]), random);
            }
            counts[out[0] * V + out[1]]++;
        }
        return counts;
    }

    /** A wrong rule for the power check: the first child is always accepted. */
    private static TreeVerdict acceptFirstChild(DraftTree tree, SplittableRandom random) {
        int first = tree.children(DraftTree.ROOT)[0];
        return new TreeVerdict(new int[] { first }, Distributions.sample(second(tree.token(first)), random));
    }

    private static double[] joint() {
        double[] joint = new double[V * V];
        for (int a = 0; a < V; a++) {
            float[] p = second(a);
            for (int b = 0; b < V; b++) {
                joint[a * V + b] = FIRST[a] * p[b];
            }
        }
        return joint;
    }

    @Test
    void treesOfWidthTwoAndThreeKeepTheTargetDistribution() {
        for (int width : new int[] { 2, 3 }) {
            long[] counts = sampleFirstTwo(tree(width), new SplittableRandom(13 + width), true);
            double[] chi = ChiSquare.statistic(counts, joint(), SAMPLES);
            assertThat(chi[0]).as("width %d", width).isLessThan(ChiSquare.critical(chi[1]));
        }
    }

    @Test
    void theChiSquareBoundCatchesARuleThatAlwaysTakesTheDraft() {
        long[] counts = sampleFirstTwo(tree(2), new SplittableRandom(5), false);
        double[] chi = ChiSquare.statistic(counts, joint(), SAMPLES);
        assertThat(chi[0]).isGreaterThan(10 * ChiSquare.critical(chi[1]));
    }

    @Test
    void greedyKeepsTheLongestPathMatchingTheTargetsArgmax() {
        DraftTree tree = tree(3);
        // argmax: root → 1 (node 1), after 1 → 3 (node 5), after 3 → 3 (no child): path
        // 1, 5; next 3
        float[] logits = new float[(1 + tree.size()) * V];
        logits[1] = 5f;
        logits[(1 + 1) * V + 3] = 5f;
        logits[(1 + 5) * V + 3] = 5f;
        TreeVerdict verdict = TreeVerifier.greedy(tree, logits, V, null);
        assertThat(verdict.path()).containsExactly(1, 5);
        assertThat(verdict.nextToken()).isEqualTo(3);
        assertThat(verdict.lastRow()).isEqualTo(6);
        // a root argmax no child holds: nothing accepted
        float[] other = new float[(1 + tree.size()) * V];
        other[5] = 5f;
        assertThat(TreeVerifier.greedy(tree, other, V, null)).satisfies((v) -> {
            assertThat(v.path()).isEmpty();
            assertThat(v.nextToken()).isEqualTo(5);
        });
    }

    @Test
    void aMalformedTreeIsRefused() {
        assertThatThrownBy(() -> new DraftTree(new int[] { 1, 1 }, new int[] { -1, -1 }, new float[] { 0, 0 }))
            .hasMessageContaining("siblings");
        assertThatThrownBy(() -> new DraftTree(new int[] { 1, 2 }, new int[] { 1, -1 }, new float[] { 0, 0 }))
            .hasMessageContaining("parent before it");
    }

}
