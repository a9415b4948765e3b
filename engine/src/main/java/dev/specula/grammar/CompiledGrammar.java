package dev.specula.grammar;

import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

import org.jspecify.annotations.Nullable;

/**
 * A {@link Grammar} against a {@link TokenVocabulary} and the model's end-of-sequence
 * ids: its automaton, the parser states met so far (each with its successors by byte and,
 * once computed, its token mask) and the end ids. Thread-safe: many
 * {@link GrammarMatcher}s, on many threads, share one compiled grammar and its caches.
 *
 * <p>
 * A token is allowed at a state when its bytes walk the automaton without dying (a
 * special token: when a literal continues with its content there; an end id: when the
 * text so far is complete). A mask walks the vocabulary's trie from the state's local
 * state (shared by all states that differ only in their stacks), skipping the subtree
 * under a refused byte, then the subtrees where the stack decides from the state itself;
 * it is cached on the state (up to {@value #MASK_CACHE_BYTES} bytes of masks per compiled
 * grammar; past that, masks are recomputed each time).
 */
public final class CompiledGrammar {

    static final long MASK_CACHE_BYTES = 16L << 20;

    private final TokenVocabulary vocabulary;

    private final StateSpace space;

    /** By id (below the vocabulary's size): an end-of-sequence id. */
    private final boolean[] end;

    private final int[] endIds;

    private final AtomicLong maskBytes = new AtomicLong();

    private CompiledGrammar(TokenVocabulary vocabulary, StateSpace space, int[] endIds) {
        this.vocabulary = vocabulary;
        this.space = space;
        this.endIds = endIds;
        this.end = new boolean[vocabulary.size()];
        for (int id : endIds) {
            end[id] = true;
        }
    }

    /**
     * Compiles {@code grammar}; an end id outside the vocabulary is an
     * {@link IllegalArgumentException}.
     */
    public static CompiledGrammar compile(Grammar grammar, TokenVocabulary vocabulary, int[] endTokenIds) {
        Objects.requireNonNull(grammar, "grammar");
        int[] ends = endTokenIds.clone();
        for (int id : ends) {
            if (id < 0 || id >= vocabulary.size()) {
                throw new IllegalArgumentException(
                        "End token id " + id + " is outside the vocabulary (size " + vocabulary.size() + ")");
            }
        }
        Automaton automaton = AutomatonBuilder.build(grammar.expr(), vocabulary.specialByContent());
        return new CompiledGrammar(vocabulary, new StateSpace(automaton), ends);
    }

    /** A matcher at the start of the text. */
    public GrammarMatcher newMatcher() {
        return new GrammarMatcher(this);
    }

    StateSpace space() {
        return space;
    }

    ParserState initial() {
        return space.initial;
    }

    boolean isEnd(int token) {
        return token >= 0 && token < end.length && end[token];
    }

    /**
     * Whether {@code token} may follow {@code state} (an end id: whether it is complete).
     */
    boolean isAllowed(ParserState state, int token) {
        TokenMask mask = state.mask;
        if (mask != null) {
            return mask.isAllowed(token);
        }
        if (token < 0 || token >= end.length) {
            return false;
        }
        if (end[token]) {
            return state.complete;
        }
        return after(state, token) != space.dead;
    }

    /**
     * The state after {@code token} (not an end id), {@link StateSpace#dead} when
     * refused.
     */
    ParserState after(ParserState state, int token) {
        if (vocabulary.isSpecial(token)) {
            return space.special(state, token);
        }
        byte[] bytes = vocabulary.bytes(token);
        if (bytes == null || bytes.length == 0) {
            return space.dead;
        }
        return space.walk(state, bytes);
    }

    /** The mask of {@code state}: cached on the state, computed on first use. */
    TokenMask mask(ParserState state) {
        TokenMask mask = state.mask;
        if (mask != null) {
            return mask;
        }
        mask = TokenMask.of(allowedBits(state), vocabulary.size());
        if (state.canonical && maskBytes.addAndGet(mask.footprint()) <= MASK_CACHE_BYTES) {
            state.mask = mask;
        }
        return mask;
    }

    /**
     * The allowed ids of {@code state}: the tokens its local state decides (cached on the
     * local state, so states that differ only in their stacks share one trie walk), the
     * frontier's subtrees walked from the state itself, then special and end tokens.
     */
    private long[] allowedBits(ParserState state) {
        long[] bits;
        ParserState dead = space.dead;
        TokenTrie trie = vocabulary.trie();
        if (state.isStuck()) {
            bits = new long[(vocabulary.size() + 63) >>> 6];
        }
        else {
            ParserState.LocalMask local = localMask(space.local(state));
            bits = local.accepted().clone();
            ParserState[] at = new ParserState[trie.maxDepth + 1];
            long[][] loopsAt = new long[trie.maxDepth + 1][];
            int[] path = new int[trie.maxDepth + 1];
            for (int node : local.frontier()) {
                // the real state after the bytes above the node (alive, as the local was)
                int depth = trie.depth[node];
                for (int up = trie.parent[node], d = depth - 1; d >= 1; up = trie.parent[up], d--) {
                    path[d] = up;
                }
                ParserState above = state;
                for (int d = 1; d < depth; d++) {
                    above = space.next(above, trie.nodeByte[path[d]] & 0xFF);
                }
                at[depth - 1] = above;
                loopsAt[depth - 1] = null;
                walk(at, loopsAt, node, node + trie.subtreeSize[node], bits, null);
            }
        }
        ParserState.SpecialMoves specials = space.specials(state);
        for (int k = 0; k < specials.tokens().length; k++) {
            if (specials.targets()[k] != dead) {
                int id = specials.tokens()[k];
                bits[id >>> 6] |= 1L << id;
            }
        }
        for (int id : endIds) {
            if (state.complete) {
                bits[id >>> 6] |= 1L << id;
            }
            else {
                bits[id >>> 6] &= ~(1L << id);
            }
        }
        return bits;
    }

    /** The mask of a local state: one walk of the whole trie, cached on it. */
    private ParserState.LocalMask localMask(ParserState local) {
        ParserState.LocalMask mask = local.localMask;
        if (mask != null) {
            return mask;
        }
        TokenTrie trie = vocabulary.trie();
        long[] accepted = new long[(vocabulary.size() + 63) >>> 6];
        ParserState[] at = new ParserState[trie.maxDepth + 1];
        at[0] = local;
        int[][] frontier = { new int[64] };
        int frontierCount = walk(at, new long[trie.maxDepth + 1][], 1, trie.nodeCount(), accepted, frontier);
        mask = new ParserState.LocalMask(accepted, Arrays.copyOf(frontier[0], frontierCount));
        if (local.canonical && maskBytes.addAndGet(mask.footprint()) <= MASK_CACHE_BYTES) {
            local.localMask = mask;
        }
        return mask;
    }

    /**
     * Walks trie nodes [first, end) in preorder (a subtree, or the whole trie from node
     * 1): {@code at[d]} holds the state after the first d bytes of the current node's
     * path ({@code at[depth(first) - 1]} given), a dead node skips its subtree, a subtree
     * whose bytes all lead back to its parent's state is accepted whole. A node whose
     * state exited (a local walk: {@code frontier} given) is added to the frontier, its
     * subtree left to the real state. Returns the frontier's size.
     */
    private int walk(ParserState[] at, long[][] loopsAt, int first, int end, long[] bits, int @Nullable [][] frontier) {
        TokenTrie trie = vocabulary.trie();
        ParserState dead = space.dead;
        int frontierCount = 0;
        int i = first;
        while (i < end) {
            int depth = trie.depth[i];
            ParserState from = at[depth - 1];
            long[] loops = loopsAt[depth - 1];
            if (loops == null) {
                loops = space.selfLoops(from);
                loopsAt[depth - 1] = loops;
            }
            int below = i + trie.subtreeSize[i];
            if (!trie.subtreeNonAscii[i] && (trie.subtreeLow[i] & ~loops[0]) == 0
                    && (trie.subtreeHigh[i] & ~loops[1]) == 0) {
                // every path below stays in this state: all the subtree's tokens allowed
                for (int k = trie.tokenStart[i]; k < trie.tokenStart[below]; k++) {
                    int id = trie.tokenIds[k];
                    bits[id >>> 6] |= 1L << id;
                }
                i = below;
                continue;
            }
            ParserState next = space.next(from, trie.nodeByte[i] & 0xFF);
            if (next.exited && frontier != null) {
                if (frontierCount == frontier[0].length) {
                    frontier[0] = Arrays.copyOf(frontier[0], frontierCount * 2);
                }
                frontier[0][frontierCount++] = i;
                i = below;
                continue;
            }
            if (next == dead) {
                i = below;
                continue;
            }
            at[depth] = next;
            loopsAt[depth] = null;
            for (int k = trie.tokenStart[i]; k < trie.tokenStart[i + 1]; k++) {
                int id = trie.tokenIds[k];
                bits[id >>> 6] |= 1L << id;
            }
            i++;
        }
        return frontierCount;
    }

    /**
     * Whether only end tokens can follow {@code state}: it is complete and no byte or
     * special token can move it.
     */
    boolean onlyEndFollows(ParserState state) {
        return state.complete && state.isStuck();
    }

    @Override
    public String toString() {
        return "CompiledGrammar[" + space.automaton.nodeCount() + " nodes, " + space.stateCount() + " states, ends "
                + Arrays.toString(endIds) + "]";
    }

}
