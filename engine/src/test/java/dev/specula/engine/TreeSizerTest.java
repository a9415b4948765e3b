package dev.specula.engine;

import org.junit.jupiter.api.Test;

import dev.specula.proposer.DraftTree;
import dev.specula.sampling.TreeVerdict;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The tree sizer's arithmetic: the cost line through timed calls, the number of nodes it
 * picks as verification gets dearer, and the acceptance it learns from verified trees.
 */
class TreeSizerTest {

    private static final int[] TOKENS = { 1, 2, 4, 8, 16, 32, 65 };

    /** Timings of t(k) = base + perToken · k. */
    private static TreeSizer linear(double base, double perToken) {
        double[] nanos = new double[TOKENS.length];
        for (int i = 0; i < TOKENS.length; i++) {
            nanos[i] = base + perToken * TOKENS[i];
        }
        return new TreeSizer(TOKENS, nanos);
    }

    @Test
    void theCostLinePassesThroughLinearTimings() {
        TreeSizer sizer = linear(3_000_000, 180_000);
        assertThat(sizer.cost(10)).isCloseTo(4_800_000, within(1.0));
        assertThat(sizer.cost(1)).isCloseTo(3_180_000, within(1.0));
    }

    @Test
    void dearerTokensBuySmallerTrees() {
        // 16 candidates, path probabilities falling from 0.9 to 0.05
        float[] scores = new float[16];
        for (int i = 0; i < scores.length; i++) {
            scores[i] = (float) Math.log(0.9 - i * 0.85 / 15);
        }
        int cheap = linear(3_000_000, 30_000).choose(scores, 0, 1_000_000, 1);
        int dear = linear(3_000_000, 600_000).choose(scores, 0, 1_000_000, 1);
        assertThat(cheap).isGreaterThan(dear);
        assertThat(cheap).isGreaterThan(10);
        assertThat(dear).isBetween(1, 10);
    }

    @Test
    void theBackboneIsAlwaysVerified() {
        float[] scores = { -3f, -4f, -5f, -5f };
        assertThat(linear(3_000_000, 3_000_000).choose(scores, 3, 0, 1)).isEqualTo(3);
    }

    @Test
    void roundsDraftChainsWhileBranchesDoNotPayAndProbeNowAndThen() {
        TreeSizer sizer = linear(3_000_000, 3_000_000);
        // every branch far too dear: the backbone alone, round after round
        float[] scores = { -0.1f, -0.2f, -3f, -4f };
        for (int round = 0; round < 60; round++) {
            assertThat(sizer.choose(scores, 2, 0, 1)).isEqualTo(2);
        }
        int trees = 0;
        for (int round = 0; round < 64; round++) {
            trees += sizer.growsTrees() ? 1 : 0;
        }
        assertThat(trees).as("probes only").isEqualTo(4);
        // branches that pay bring trees back
        TreeSizer cheap = linear(3_000_000, 1_000);
        for (int round = 0; round < 60; round++) {
            cheap.choose(scores, 2, 0, 1);
        }
        assertThat(cheap.growsTrees()).isTrue();
    }

    @Test
    void treesGiveWayToChainsThatCommitMoreTokensPerSecondOverWholeRounds() {
        // the target's calls alone say branches pay: 1 µs a verified token
        TreeSizer sizer = linear(3_000_000, 1_000);
        float[] scores = { -0.1f, -0.2f, -0.3f, -0.4f };
        for (int round = 0; round < 60; round++) {
            assertThat(sizer.choose(scores, 2, 0, 1)).isEqualTo(4);
        }
        // but over whole rounds (drafting, verifying, the work around both) a tree
        // commits
        // 4 tokens in 5 ms and a chain 3 in 3 ms
        int trees = run(sizer, 16, 4, 5_000_000, 3, 3_000_000);
        assertThat(trees).as("both kinds are tried first").isBetween(4, 12);
        assertThat(run(sizer, 64, 4, 5_000_000, 3, 3_000_000)).as("then trees as probes only").isEqualTo(4);
        // when trees commit more per second again, the probes bring them back (within a
        // few), chains being the probes then
        assertThat(run(sizer, 128, 4, 2_000_000, 3, 3_000_000)).isGreaterThanOrEqualTo(48);
        assertThat(run(sizer, 64, 4, 2_000_000, 3, 3_000_000)).isEqualTo(60);
    }

    /** {@code rounds} rounds as the sizer chooses their kind: how many grew trees. */
    private static int run(TreeSizer sizer, int rounds, int treeTokens, long treeNanos, int chainTokens,
            long chainNanos) {
        int trees = 0;
        for (int round = 0; round < rounds; round++) {
            boolean tree = sizer.growsTrees();
            trees += tree ? 1 : 0;
            sizer.observeRound(tree, tree ? treeTokens : chainTokens, tree ? treeNanos : chainNanos);
        }
        return trees;
    }

    @Test
    void acceptanceIsLearnedFromVerifiedTrees() {
        TreeSizer sizer = linear(3_000_000, 180_000);
        float confident = (float) Math.log(0.95);
        assertThat(sizer.acceptance(confident)).isCloseTo(0.95, within(1e-6));
        // an over-confident draft: its 0.95 nodes are never accepted
        DraftTree tree = new DraftTree(new int[] { 7, 8 }, new int[] { -1, -1 }, new float[] { confident, -3f });
        for (int round = 0; round < 200; round++) {
            sizer.observe(tree, new TreeVerdict(new int[0], 9), new boolean[] { true, true }, 3, 3_500_000);
        }
        assertThat(sizer.acceptance(confident)).isLessThan(0.1);
        // and the rounds observed keep the cost line where it was (they lie on it)
        assertThat(sizer.cost(3)).isCloseTo(3_540_000, within(60_000.0));
    }

}
