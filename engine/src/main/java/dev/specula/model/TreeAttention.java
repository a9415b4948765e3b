package dev.specula.model;

import java.util.Arrays;

/**
 * Which tokens a step's tokens attend to when a sequence's last tokens form a draft tree:
 * each node sees the tokens before the tree and its own ancestors, and sits one position
 * after its parent (SpecInfer's tree attention; EAGLE-2's tree mask and
 * {@code tree_position_ids}).
 *
 * <pre>
 * logical positions   0 .. base − 1          the sequence's tokens before the tree: seen by every token
 *                     base + i               tree node i (its KV in the cache, or a new token of the step)
 * parents[i]          logical position of node i's parent, &lt; base + i (base − 1: the root, the last token
 *                     before the tree)
 * position_ids        a token before the tree: its logical position; node i: its parent's + 1
 * </pre>
 *
 * Nodes are in topological order (a parent before its children), which any breadth- or
 * score-ordered expansion gives. Only a graph that takes an {@code attention_bias} can
 * express the tree ({@link Decoder#supportsTrees()}).
 *
 * @param base logical position of the first node
 * @param parents the parent of each node, as a logical position
 */
public record TreeAttention(int base, int[] parents) {

    public TreeAttention {
        if (base < 1) {
            throw new IllegalArgumentException("A tree needs a root before it: base must be >= 1 but was " + base);
        }
        for (int i = 0; i < parents.length; i++) {
            if (parents[i] < base - 1 || parents[i] >= base + i) {
                throw new IllegalArgumentException("Tree node " + i + " (logical " + (base + i)
                        + ") must have a parent in [" + (base - 1) + ", " + (base + i) + ") but has " + parents[i]);
            }
        }
        parents = parents.clone();
    }

    /** Logical positions the tree covers: {@code base + parents.length}. */
    public int end() {
        return base + parents.length;
    }

    /** The position_id of the token at {@code logical}. */
    public long position(int logical) {
        int depth = 0;
        int node = logical;
        while (node >= base) {
            node = parents[node - base];
            depth++;
        }
        return (long) node + depth;
    }

    /**
     * Whether the token at {@code query} attends to the token at {@code key}: a key
     * before the tree always (causally, for a query before the tree), a node only when it
     * is the query or one of its ancestors.
     */
    public boolean sees(int query, int key) {
        if (key > query) {
            return false;
        }
        if (key < base) {
            return true;
        }
        int node = query;
        while (node > key) {
            node = parents[node - base];
        }
        return node == key;
    }

    /**
     * Checks that the tree covers a step over logical positions {@code from .. to − 1}.
     * @throws IllegalArgumentException when it ends elsewhere
     */
    void checkCovers(int to) {
        if (end() != to) {
            throw new IllegalArgumentException(
                    "The tree covers logical positions up to " + end() + " but the step ends at " + to);
        }
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof TreeAttention tree && tree.base == base && Arrays.equals(tree.parents, parents);
    }

    @Override
    public int hashCode() {
        return 31 * base + Arrays.hashCode(parents);
    }

    @Override
    public String toString() {
        return "TreeAttention[base=" + base + ", parents=" + Arrays.toString(parents) + "]";
    }

}
