package dev.specula.grammar;

/**
 * A compiled grammar as a byte-level pushdown automaton: numbered nodes of four kinds.
 * <ul>
 * <li>{@link #BYTES}: consumes one byte, along every edge whose range [lo, hi] holds it
 * (edges of one node may lead to several targets); a literal's node may also consume a
 * special token whole (its special edges).</li>
 * <li>{@link #SPLIT}: moves without input to each of its targets.</li>
 * <li>{@link #CALL}: pushes its return node and moves to a rule's start.</li>
 * <li>{@link #RETURN}: pops the top return node and moves there; with nothing to pop, the
 * text so far is a sentence of the grammar.</li>
 * </ul>
 * Immutable; built by {@link AutomatonBuilder}.
 */
final class Automaton {

    static final byte BYTES = 0;

    static final byte SPLIT = 1;

    static final byte CALL = 2;

    static final byte RETURN = 3;

    final byte[] kind;

    /**
     * BYTES: edges [edgeStart[n], edgeStart[n + 1]) of edgeLo/edgeHi/edgeTarget; SPLIT:
     * targets [edgeStart[n], edgeStart[n + 1]) of edgeTarget; CALL:
     * edgeTarget[edgeStart[n]] is the rule's start, edgeTarget[edgeStart[n] + 1] the
     * return node.
     */
    final int[] edgeStart;

    final int[] edgeLo;

    final int[] edgeHi;

    final int[] edgeTarget;

    /**
     * Special edges of BYTES nodes, by node: [token0, target0, token1, target1, ...], or
     * null (almost every node).
     */
    final int[][] specialEdges;

    final int start;

    Automaton(byte[] kind, int[] edgeStart, int[] edgeLo, int[] edgeHi, int[] edgeTarget, int[][] specialEdges,
            int start) {
        this.kind = kind;
        this.edgeStart = edgeStart;
        this.edgeLo = edgeLo;
        this.edgeHi = edgeHi;
        this.edgeTarget = edgeTarget;
        this.specialEdges = specialEdges;
        this.start = start;
    }

    int nodeCount() {
        return kind.length;
    }

}
