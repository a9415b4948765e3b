package dev.specula.proposer;

import java.util.Arrays;

/**
 * A round's draft tree: candidate tokens after the root (the sequence's last committed
 * token), each with its parent and its path's draft log-probability, verified in one
 * target call (SpecInfer; EAGLE-2's dynamic tree).
 *
 * <pre>
 * node i        tokens[i], parents[i] (a node index &lt; i, or ROOT), depth(i) = its parent's + 1 (1 under the root)
 * scores[i]     Σ log q along the path root → i: the draft's confidence in the whole path (EAGLE-2's "value")
 * order         topological (a parent before its children); siblings by descending score
 * target rows   [1 + size, width]: row 0 the root's, row 1 + i node i's
 * </pre>
 *
 * Siblings hold distinct tokens, so at most one child of a node can match the target's
 * greedy choice. A chain is the tree whose every node has at most one child.
 */
public final class DraftTree {

    /** The parent of a node under the root. */
    public static final int ROOT = -1;

    private final int[] tokens;

    private final int[] parents;

    private final float[] scores;

    private final int[] depths;

    /**
     * A tree of the given nodes, in topological order.
     * @param tokens the nodes' tokens
     * @param parents each node's parent index ({@link #ROOT} under the root)
     * @param scores each node's path log-probability under the draft
     * @throws IllegalArgumentException when the arrays differ in length, a parent does
     * not come before its child, or two siblings hold the same token
     */
    public DraftTree(int[] tokens, int[] parents, float[] scores) {
        if (tokens.length != parents.length || tokens.length != scores.length) {
            throw new IllegalArgumentException("A draft tree needs one parent and one score per token but has "
                    + tokens.length + " tokens, " + parents.length + " parents and " + scores.length + " scores");
        }
        this.tokens = tokens.clone();
        this.parents = parents.clone();
        this.scores = scores.clone();
        this.depths = new int[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            if (parents[i] < ROOT || parents[i] >= i) {
                throw new IllegalArgumentException(
                        "Node " + i + " of a draft tree must have a parent before it but has " + parents[i]);
            }
            depths[i] = parents[i] == ROOT ? 1 : depths[parents[i]] + 1;
            for (int j = 0; j < i; j++) {
                if (parents[j] == parents[i] && tokens[j] == tokens[i]) {
                    throw new IllegalArgumentException(
                            "Nodes " + j + " and " + i + " are siblings with the same token " + tokens[i]);
                }
            }
        }
    }

    /** Nodes in the tree (the root not counted). */
    public int size() {
        return tokens.length;
    }

    public int token(int node) {
        return tokens[node];
    }

    /** The node's parent, {@link #ROOT} under the root. */
    public int parent(int node) {
        return parents[node];
    }

    /** The node's path log-probability under the draft. */
    public float score(int node) {
        return scores[node];
    }

    /** 1 for a child of the root. */
    public int depth(int node) {
        return depths[node];
    }

    /** The deepest node's depth: the longest chain the tree can accept. */
    public int maxDepth() {
        int max = 0;
        for (int depth : depths) {
            max = Math.max(max, depth);
        }
        return max;
    }

    /**
     * The children of {@code node} ({@link #ROOT}: of the root), in tree order (by
     * descending score).
     */
    public int[] children(int node) {
        int count = 0;
        int[] children = new int[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            if (parents[i] == node) {
                children[count++] = i;
            }
        }
        return Arrays.copyOf(children, count);
    }

    /** The tokens along a path of nodes. */
    public int[] tokensOf(int[] path) {
        int[] out = new int[path.length];
        for (int i = 0; i < path.length; i++) {
            out[i] = tokens[path[i]];
        }
        return out;
    }

    @Override
    public String toString() {
        return "DraftTree[tokens=" + Arrays.toString(tokens) + ", parents=" + Arrays.toString(parents) + "]";
    }

}
