package dev.specula.grammar;

import java.util.Arrays;

import org.jspecify.annotations.Nullable;

/**
 * A parser position, immutable: the set of threads (a BYTES node and the stack under it)
 * the text so far can be in, and whether the text so far is complete. Threads are sorted
 * by (node, frame id), so equal sets are equal arrays. Interned by {@link StateSpace}; an
 * interned state also memoizes, lazily: its successor by each byte (a DFA built on
 * demand), its special-token moves and its token mask. Those memo fields are written with
 * benign races: every value is an immutable object, and a lost write only costs a
 * recomputation.
 */
final class ParserState {

    final int[] nodes;

    final Frame[] frames;

    /** The text so far is a sentence of the grammar (end tokens may follow). */
    final boolean complete;

    /**
     * A local state only (threads over holes): some thread returned into a hole on the
     * last byte, so what may follow depends on the stack the hole stands for.
     */
    final boolean exited;

    private final int hash;

    /** Set by {@link StateSpace} when this is the canonical instance of its threads. */
    boolean canonical;

    /** The state after each byte (null: not yet computed), allocated on first use. */
    @Nullable ParserState[] next;

    volatile @Nullable SpecialMoves specials;

    volatile @Nullable TokenMask mask;

    /**
     * The ASCII bytes that lead back to this very state (bits 0..63, 64..127): inside a
     * JSON string, every plain character. Computed on first use.
     */
    volatile long @Nullable [] selfLoops;

    /**
     * This state with each stack replaced by a hole of its depth (see
     * {@link StateSpace#local}).
     */
    volatile @Nullable ParserState local;

    /**
     * A local state's tokens: what its threads decide alone, and where the stack decides.
     */
    volatile @Nullable LocalMask localMask;

    ParserState(int[] nodes, Frame[] frames, boolean complete, boolean exited) {
        this.nodes = nodes;
        this.frames = frames;
        this.complete = complete;
        this.exited = exited;
        int h = (Arrays.hashCode(nodes) * 31 + Boolean.hashCode(complete)) * 31 + Boolean.hashCode(exited);
        for (Frame frame : frames) {
            h = h * 31 + frame.id;
        }
        this.hash = h;
    }

    /** No thread can move: the text so far cannot go on (it may still be complete). */
    boolean isStuck() {
        return nodes.length == 0;
    }

    @Override
    public boolean equals(Object other) {
        if (!(other instanceof ParserState state) || state.hash != hash || state.complete != complete
                || state.exited != exited || !Arrays.equals(state.nodes, nodes)) {
            return false;
        }
        for (int i = 0; i < frames.length; i++) {
            if (frames[i].id != state.frames[i].id) {
                return false;
            }
        }
        return true;
    }

    @Override
    public int hashCode() {
        return hash;
    }

    /**
     * The tokens of a local state: {@code accepted}, allowed whatever the stacks under
     * it; {@code frontier}, the trie nodes where a path first returned into a hole (their
     * subtrees are decided by walking the real state); every other token is refused.
     */
    record LocalMask(long[] accepted, int[] frontier) {

        long footprint() {
            return 32 + 8L * accepted.length + 4L * frontier.length;
        }

    }

    /** The special tokens a state may consume whole and the states they lead to. */
    record SpecialMoves(int[] tokens, ParserState[] targets) {

        static final SpecialMoves NONE = new SpecialMoves(new int[0], new ParserState[0]);

        @Nullable ParserState target(int token) {
            for (int i = 0; i < tokens.length; i++) {
                if (tokens[i] == token) {
                    return targets[i];
                }
            }
            return null;
        }

    }

}
