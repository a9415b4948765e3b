package dev.specula.model;

import dev.specula.kv.KvSequence;

/**
 * Narrows a chain's attention_bias row to a tree node's view: of the tree's nodes, the
 * node sees only itself and its ancestors ({@link TreeAttention}).
 */
final class TreeBias {

    private TreeBias() {
    }

    /**
     * Masks, in the row at {@code offset} of {@code bias} (already a chain's row: the
     * sequence's live past, then its new tokens up to the query), every tree node that is
     * neither the query nor one of its ancestors.
     * @param sequence the query's sequence
     * @param newColumns column of the sequence's first new token in the row
     * @param firstNew logical position of the sequence's first new token in this call
     * @param query the query's logical position
     */
    static void restrict(float[] bias, int offset, KvSequence sequence, int newColumns, int firstNew, int query,
            TreeAttention tree) {
        if (query < tree.base()) {
            return;
        }
        for (int key = tree.base(); key < query; key++) {
            if (tree.sees(query, key)) {
                continue;
            }
            int column = key < firstNew ? sequence.slot(key) : newColumns + key - firstNew;
            bias[offset + column] = Float.NEGATIVE_INFINITY;
        }
    }

}
