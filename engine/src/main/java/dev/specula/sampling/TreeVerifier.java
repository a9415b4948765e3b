package dev.specula.sampling;

import java.util.Arrays;
import java.util.random.RandomGenerator;

import org.jspecify.annotations.Nullable;

import dev.specula.proposer.DraftTree;

/**
 * Decides which path of a draft tree the target accepts, losslessly. The target's rows
 * come from one call over the tree: row 0 predicts the token after the root, row 1 + i
 * the token after node i (each node saw only its ancestors).
 *
 * <p>
 * <b>Greedy</b>: from the root, descend into the child whose token is the target's argmax
 * of the current node's row (siblings are distinct, so at most one is); stop where no
 * child matches, and emit that argmax. The result is the longest path that matches the
 * target's greedy output, and the output equals the target's alone.
 *
 * <p>
 * <b>Sampling</b>: recursive rejection sampling with deterministic candidates
 * (SpecInfer's multi-candidate rule with one-hot drafts; EAGLE's
 * {@code evaluate_posterior}): at a node, with p its target distribution, try its
 * children in order; child c is accepted with probability p(c), and on rejection p(c) is
 * set to 0 and p renormalized. An accepted child becomes the current node (its own row,
 * fresh randomness); when every child is rejected the next token is drawn from what is
 * left of p; after a leaf, from the leaf's row. Each step is speculative sampling with q
 * = δ_c, so the token emitted at every position is distributed exactly as p: P(c_1) =
 * p(c_1), P(c_2) = (1 − p(c_1)) · p(c_2) / (1 − p(c_1)) = p(c_2), and so on, the rest
 * drawn from p without the tried children.
 *
 * <p>
 * A {@link LogitsProcessor} (penalties, a grammar) rewrites each row it reads for the
 * tokens of its path, as the target alone would see them: it stands at the committed
 * tokens and advances along the accepted path only.
 *
 * <p>
 * Internal to the engine: public because the decode loop calls it.
 */
public final class TreeVerifier {

    private TreeVerifier() {
    }

    /**
     * Greedy verification.
     * @param targetLogits rows [1 + tree.size(), width], rewritten in place when a
     * processor is given
     * @param processor at the committed position; left after the accepted path; null:
     * none
     */
    public static TreeVerdict greedy(DraftTree tree, float[] targetLogits, int width,
            @Nullable LogitsProcessor processor) {
        checkRows(tree, targetLogits, width);
        int[] path = new int[tree.maxDepth()];
        int accepted = 0;
        int node = DraftTree.ROOT;
        while (true) {
            int row = node == DraftTree.ROOT ? 0 : 1 + node;
            int choice = processor == null ? Distributions.argmax(targetLogits, row * width, width)
                    : processor.greedyChoice(targetLogits, row * width, width);
            int next = childWithToken(tree, node, choice);
            if (next < 0) {
                return new TreeVerdict(Arrays.copyOf(path, accepted), choice);
            }
            if (processor != null) {
                processor.advance(choice);
            }
            path[accepted++] = next;
            node = next;
        }
    }

    /**
     * Recursive rejection sampling with deterministic candidates; temperature, top-k and
     * top-p shape each target row as they would the target's alone.
     * @param targetLogits rows [1 + tree.size(), width], rewritten in place when a
     * processor is given
     * @param processor at the committed position; left after the accepted path; null:
     * none
     */
    public static TreeVerdict sample(DraftTree tree, float[] targetLogits, int width, SamplingParams params,
            RandomGenerator random, @Nullable LogitsProcessor processor) {
        checkRows(tree, targetLogits, width);
        int[] path = new int[tree.maxDepth()];
        int accepted = 0;
        int node = DraftTree.ROOT;
        descend: while (true) {
            int row = node == DraftTree.ROOT ? 0 : 1 + node;
            if (processor != null) {
                processor.process(targetLogits, row * width, width);
            }
            float[] p = Distributions.sampling(targetLogits, row * width, width, params);
            double mass = 1;
            for (int child : tree.children(node)) {
                int token = tree.token(child);
                double pToken = token < p.length ? p[token] / mass : 0;
                if (random.nextDouble() < pToken) {
                    if (processor != null) {
                        processor.advance(token);
                    }
                    path[accepted++] = child;
                    node = child;
                    continue descend;
                }
                if (token < p.length) {
                    mass -= p[token];
                    p[token] = 0f;
                }
                if (mass <= 0) {
                    break;
                }
            }
            // every child rejected (or none): the rest of p, which sample() normalizes.
            // If
            // the children held all of p (rounding: a rejection of probability ~0), p
            // itself
            if (mass <= 0) {
                p = Distributions.sampling(targetLogits, row * width, width, params);
            }
            return new TreeVerdict(Arrays.copyOf(path, accepted), Distributions.sample(p, random));
        }
    }

    private static int childWithToken(DraftTree tree, int node, int token) {
        for (int child : tree.children(node)) {
            if (tree.token(child) == token) {
                return child;
            }
        }
        return -1;
    }

    private static void checkRows(DraftTree tree, float[] targetLogits, int width) {
        if (targetLogits.length < (tree.size() + 1) * width) {
            throw new IllegalArgumentException("Verifying a tree of " + tree.size() + " nodes needs "
                    + (tree.size() + 1) + " target rows of width " + width + " but got " + targetLogits.length / width);
        }
    }

}
