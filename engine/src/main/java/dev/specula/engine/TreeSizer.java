package dev.specula.engine;

import java.util.Arrays;
import java.util.List;

import ai.onnxruntime.OrtException;

import dev.specula.kv.SequenceCache;
import dev.specula.model.Decoder;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.proposer.DraftTree;
import dev.specula.proposer.TreeShape;
import dev.specula.sampling.TreeVerdict;

/**
 * Chooses how many draft-tree nodes a round verifies ({@code --tree-nodes auto}) from
 * what they cost and what they are expected to yield, as EAGLE's {@code total_token=-1}
 * tunes its tree from timed target calls, but every round:
 *
 * <pre>
 * cost(n)      = the round's draft time + t(n + 1)             t(k) = a + b·k: the target's call over k tokens,
 *                                                              a line fitted to calls timed once (1 to 65
 *                                                              tokens over a 128-token cache, the fastest of 3)
 *                                                              and then to every verification observed, the
 *                                                              older ones fading (weight 0.99 a call)
 * yield(n)     = 1 + Σ_{i &lt; n} a(s_i)                          s_i: the path log-probability under the draft of
 *                                                              the i-th node in selection order (the greedy
 *                                                              backbone, then the rest by score); a: the
 *                                                              observed share of nodes of that confidence on
 *                                                              accepted paths
 * n            = argmax yield(n) / cost(n)                     over the backbone's length .. the candidates
 *                                                              (at most 64)
 * </pre>
 *
 * When branches stop paying (fewer than one sized round in {@value #BRANCH_SHARE_INVERSE}
 * chose any, lately), the sizer says so ({@link #growsTrees()}): rounds then draft
 * chains, whose expansion costs less, and one round in {@value #PROBE_EVERY} grows a tree
 * again to see whether branches pay now. Nor do trees grow while whole tree rounds (their
 * wider drafting and the work outside the target's call included) commit fewer tokens a
 * second than whole chain rounds, lately ({@link #observeRound}); then one round in
 * {@value #PROBE_EVERY} grows a tree, and while trees win, one in {@value #PROBE_EVERY}
 * drafts a chain.
 *
 * The backbone (the draft's greedy chain, as deep as the policy asked) is always
 * verified: the policy chose that depth, and the sizer only decides which branches are
 * worth their cost. Acceptance is learned from the branches alone (the backbone's is the
 * policy's business).
 *
 * a(s) starts as exp(s) (a calibrated draft) and learns from every verified tree, in 10
 * bins of exp(s) with a prior of 16 observations at exp(s). On a CPU each verified token
 * costs a few percent of a step, so the trees chosen are far smaller than a GPU's 60.
 * Shared by every sequence of a model pair; thread-safe.
 */
final class TreeSizer {

    /** Verification sizes timed once. */
    private static final int[] MEASURED = { 1, 2, 4, 8, 16, 32, 65 };

    private static final int BINS = 10;

    private static final double PRIOR = 16;

    /** How much an observation's weight fades with each later one. */
    private static final double FADE = 0.99;

    /**
     * Weighted sums of the (k, t(k)) points, the least-squares line's inputs: [0] the
     * calls timed once (which keep their weight, so the slope stays known however narrow
     * the sizes observed since), [1] the verifications observed (fading).
     */
    private final double[] weights = new double[2];

    private final double[] sumK = new double[2];

    private final double[] sumKk = new double[2];

    private final double[] sumT = new double[2];

    private final double[] sumKt = new double[2];

    /** Each timed call's weight: as much as this many observed verifications. */
    private static final double TIMED_WEIGHT = 8;

    /** Branches pay while at least one sized round in this many chooses some. */
    private static final int BRANCH_SHARE_INVERSE = 5;

    /** While they do not, one round in this many grows a tree anyway. */
    private static final int PROBE_EVERY = 16;

    /** Recent share of sized rounds that chose branches (an average fading by 0.95). */
    private double branchShare = 1;

    private long asked;

    /**
     * Whole rounds of each kind, [0] chains and [1] trees: tokens committed and wall
     * time, fading.
     */
    private final double[] roundTokens = new double[2];

    private final double[] roundNanos = new double[2];

    private final long[] rounds = new long[2];

    /** How much a round's weight fades with each later round of its kind. */
    private static final double ROUND_FADE = 0.95;

    /** Rounds of each kind observed before their rates are compared. */
    private static final int TRIED_ROUNDS = 4;

    private final long[] hits = new long[BINS];

    private final long[] trials = new long[BINS];

    /** A sizer whose cost line starts from {@code tokens[i]} taking {@code nanos[i]}. */
    TreeSizer(int[] tokens, double[] nanos) {
        for (int i = 0; i < tokens.length; i++) {
            add(0, tokens[i], nanos[i], TIMED_WEIGHT);
        }
    }

    /**
     * Times the target's calls over 1 .. 65 tokens after a 128-token context (fewer when
     * its context is shorter): the fastest of 3 after one warm-up each, the fastest being
     * the least disturbed by anything else on the machine.
     */
    static TreeSizer measure(Decoder target) throws OrtException {
        int longest = MEASURED[MEASURED.length - 1];
        int context = Math.max(1, Math.min(128, target.contextLength() - longest));
        int vocabulary = Math.max(2, target.tokenizer().vocabularySize());
        int[] prompt = new int[Math.max(context, longest)];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 1 + (i * 7919) % (vocabulary - 1);
        }
        double[] nanos = new double[MEASURED.length];
        try (SequenceCache cache = target.newCache()) {
            target.forward(List.of(new StepInput(cache, Arrays.copyOf(prompt, context), 1, false, null)));
            for (int m = 0; m < MEASURED.length; m++) {
                int k = MEASURED[m];
                int[] tokens = Arrays.copyOf(prompt, k);
                long fastest = Long.MAX_VALUE;
                // the first calls of a size are slow (ONNX Runtime's allocations, the
                // JIT): 3 warm-up calls, then the fastest of 5
                for (int r = 0; r < 8; r++) {
                    StepOutput output = target.forward(List.of(new StepInput(cache, tokens, k, false, null))).get(0);
                    if (r >= 3) {
                        fastest = Math.min(fastest, output.runNanos());
                    }
                    cache.rollbackTo(context);
                }
                nanos[m] = Math.max(1, fastest);
            }
        }
        return new TreeSizer(MEASURED, nanos);
    }

    private void add(int kind, double tokens, double nanos, double weight) {
        weights[kind] += weight;
        sumK[kind] += weight * tokens;
        sumKk[kind] += weight * tokens * tokens;
        sumT[kind] += weight * nanos;
        sumKt[kind] += weight * tokens * nanos;
    }

    /** t(k) in nanoseconds, from the fitted line (its slope never below 0). */
    synchronized double cost(int tokens) {
        double w = weights[0] + weights[1];
        double meanK = (sumK[0] + sumK[1]) / w;
        double meanT = (sumT[0] + sumT[1]) / w;
        double varianceK = (sumKk[0] + sumKk[1]) / w - meanK * meanK;
        double covariance = (sumKt[0] + sumKt[1]) / w - meanK * meanT;
        double slope = varianceK <= 0 ? 0 : Math.max(0, covariance / varianceK);
        return Math.max(1, meanT + slope * (tokens - meanK));
    }

    /**
     * How many candidates, in selection order, to verify: the backbone, and the branches
     * that pay for themselves.
     * @param scoresInOrder every candidate's path log-probability, in selection order
     * @param backbone how many of the first candidates form the backbone
     * @param draftNanos what this round's drafting cost
     * @param pending the committed tokens the call carries before the tree (its root
     * among them)
     */
    synchronized int choose(float[] scoresInOrder, int backbone, long draftNanos, int pending) {
        int most = Math.min(scoresInOrder.length, TreeShape.MAX_NODES);
        int least = Math.min(backbone, most);
        double yield = 1;
        for (int n = 0; n < least; n++) {
            yield += Math.exp(scoresInOrder[n]);
        }
        double best = yield / (draftNanos + cost(pending + least));
        int chosen = least;
        for (int n = least + 1; n <= most; n++) {
            yield += acceptance(scoresInOrder[n - 1]);
            double rate = yield / (draftNanos + cost(pending + n));
            if (rate > best) {
                best = rate;
                chosen = n;
            }
        }
        branchShare = 0.95 * branchShare + 0.05 * (chosen > least ? 1 : 0);
        return chosen;
    }

    /**
     * Whether the next round should grow a tree: while branches pay, and now and then to
     * check.
     */
    synchronized boolean growsTrees() {
        asked++;
        boolean probe = asked % PROBE_EVERY == 0;
        if (branchShare * BRANCH_SHARE_INVERSE < 1) {
            return probe;
        }
        if (rounds[0] < TRIED_ROUNDS || rounds[1] < TRIED_ROUNDS) {
            // both kinds tried first, in turn
            return rounds[1] <= rounds[0];
        }
        boolean treesPay = rate(1) > rate(0);
        // the kind that loses is still tried now and then: what pays changes with the
        // text
        return probe != treesPay;
    }

    /**
     * Learns from a verified tree: which of its branches' nodes lay on the accepted path,
     * and what the call cost.
     * @param offBackbone per node, whether it is a branch's (off the backbone)
     * @param tokens the tokens the target call carried
     */
    synchronized void observe(DraftTree tree, TreeVerdict verdict, boolean[] offBackbone, int tokens,
            long targetNanos) {
        boolean[] accepted = new boolean[tree.size()];
        for (int node : verdict.path()) {
            accepted[node] = true;
        }
        for (int node = 0; node < tree.size(); node++) {
            if (!offBackbone[node]) {
                continue;
            }
            int bin = bin(tree.score(node));
            trials[bin]++;
            if (accepted[node]) {
                hits[bin]++;
            }
        }
        if (targetNanos > 0) {
            weights[1] *= FADE;
            sumK[1] *= FADE;
            sumKk[1] *= FADE;
            sumT[1] *= FADE;
            sumKt[1] *= FADE;
            add(1, tokens, targetNanos, 1);
        }
    }

    /**
     * Learns what a whole round of each kind yields per second: drafting, the target's
     * call and the work around both, which the cost line (the target's calls alone) does
     * not see. A tree drafts wider levels and verifies more nodes; at 2 threads that work
     * outside ONNX Runtime is what made trees lose to their chains.
     * @param tree whether the round verified a tree (else a chain the draft model drafted
     * in its place)
     * @param committed the tokens the round committed (accepted + 1)
     * @param wallNanos the round's wall time, its drafting included
     */
    synchronized void observeRound(boolean tree, int committed, long wallNanos) {
        int kind = tree ? 1 : 0;
        roundTokens[kind] = ROUND_FADE * roundTokens[kind] + committed;
        roundNanos[kind] = ROUND_FADE * roundNanos[kind] + Math.max(1, wallNanos);
        rounds[kind]++;
    }

    /**
     * Committed tokens per nanosecond of recent rounds of one kind (0: chains, 1: trees).
     */
    private double rate(int kind) {
        return roundTokens[kind] / roundNanos[kind];
    }

    /** The expected share of nodes of path log-probability {@code score} accepted. */
    synchronized double acceptance(float score) {
        double confidence = Math.exp(score);
        int bin = bin(score);
        return (hits[bin] + PRIOR * confidence) / (trials[bin] + PRIOR);
    }

    private static int bin(float score) {
        return (int) Math.min(BINS - 1, Math.max(0, Math.floor(Math.exp(score) * BINS)));
    }

}
