package dev.specula.grammar;

import java.util.Arrays;

/**
 * One sequence's position in a {@link CompiledGrammar}: the parser state after each token
 * advanced so far, kept as a stack, so {@link #resetTo(int)} (a speculative round's
 * rejected tokens) is O(1). Parser states are immutable and shared, so keeping them all
 * costs one reference a token. Not thread-safe: one sequence, one thread.
 */
public final class GrammarMatcher {

    /**
     * How many top logits {@link #argmaxAllowed} tries one by one before the full mask.
     */
    private static final int CANDIDATES = 8;

    private final CompiledGrammar grammar;

    /** history[k]: the state after k tokens; history[count] is the current one. */
    private ParserState[] history = new ParserState[64];

    /** Whether the token that led to history[k] was an end token: nothing follows it. */
    private boolean[] ended = new boolean[64];

    private int count;

    private final int[] candidateIds = new int[CANDIDATES];

    private final float[] candidateValues = new float[CANDIDATES];

    GrammarMatcher(CompiledGrammar grammar) {
        this.grammar = grammar;
        this.history[0] = grammar.initial();
    }

    /** Whether {@code token} is a legal next token from the current state. */
    public boolean isAllowed(int token) {
        return !ended[count] && grammar.isAllowed(history[count], token);
    }

    /**
     * Moves past {@code token}; an {@link IllegalArgumentException} naming it when it is
     * not allowed here.
     */
    public void advance(int token) {
        ParserState state = history[count];
        ParserState next;
        boolean end = false;
        if (ended[count]) {
            throw new IllegalArgumentException("Token " + token + " is not allowed: an end token was already advanced");
        }
        if (grammar.isEnd(token)) {
            if (!state.complete) {
                throw new IllegalArgumentException("End token " + token
                        + " is not allowed: the text so far is not a complete sentence of the grammar");
            }
            next = state;
            end = true;
        }
        else {
            next = grammar.after(state, token);
            if (next == grammar.space().dead) {
                throw new IllegalArgumentException("Token " + token + " is not allowed by the grammar here");
            }
        }
        if (count + 1 == history.length) {
            history = Arrays.copyOf(history, history.length * 2);
            ended = Arrays.copyOf(ended, ended.length * 2);
        }
        count++;
        history[count] = next;
        ended[count] = end;
    }

    /** The number of tokens advanced so far. */
    public int mark() {
        return count;
    }

    /**
     * Back to the state after the first {@code mark} tokens advanced
     * ({@code 0 <= mark <= mark()}).
     */
    public void resetTo(int mark) {
        if (mark < 0 || mark > count) {
            throw new IllegalArgumentException("Mark " + mark + " is outside 0.." + count);
        }
        count = mark;
    }

    /**
     * Sets logits[offset + id] to -Infinity for every id in [0, width) not allowed now
     * (ids past the vocabulary, padded logit rows, included).
     * @return whether any id in [0, width) is allowed (false: the row is all -Infinity)
     */
    public boolean mask(float[] logits, int offset, int width) {
        if (ended[count]) {
            Arrays.fill(logits, offset, offset + width, Float.NEGATIVE_INFINITY);
            return false;
        }
        return grammar.mask(history[count]).apply(logits, offset, width);
    }

    /**
     * The allowed id in [0, width) with the largest logit, the lowest id on ties (as an
     * argmax over the masked row), or -1 when none is allowed. Tries the row's top
     * {@value #CANDIDATES} logits in descending order with {@link #isAllowed} first (a
     * lookup when the state's mask is cached, a walk of the token's bytes otherwise), and
     * computes the full mask only when none of them is allowed.
     */
    public int argmaxAllowed(float[] logits, int offset, int width) {
        if (ended[count]) {
            return -1;
        }
        ParserState state = history[count];
        TokenMask cached = state.mask;
        if (cached != null && cached.isSparse()) {
            // a few allowed ids listed: reading them beats a pass over the row
            return cached.argmax(logits, offset, width);
        }
        int found = topCandidates(logits, offset, width);
        for (int i = 0; i < found; i++) {
            if (grammar.isAllowed(state, candidateIds[i])) {
                return candidateIds[i];
            }
        }
        return grammar.mask(state).argmax(logits, offset, width);
    }

    /**
     * Fills the candidates with the row's largest logits, in descending order, lower ids
     * first among equal ones; returns how many (fewer when width is small or values NaN).
     */
    private int topCandidates(float[] logits, int offset, int width) {
        int found = 0;
        // the smallest kept value once full: most ids fail this test alone
        float threshold = Float.NEGATIVE_INFINITY;
        for (int id = 0; id < width; id++) {
            float value = logits[offset + id];
            if (found == CANDIDATES && !(value > threshold)) {
                continue;
            }
            if (Float.isNaN(value)) {
                continue;
            }
            int at = Math.min(found, CANDIDATES - 1);
            while (at > 0 && value > candidateValues[at - 1]) {
                if (at < CANDIDATES) {
                    candidateValues[at] = candidateValues[at - 1];
                    candidateIds[at] = candidateIds[at - 1];
                }
                at--;
            }
            candidateValues[at] = value;
            candidateIds[at] = id;
            found = Math.min(found + 1, CANDIDATES);
            threshold = candidateValues[found - 1];
        }
        return found;
    }

    /** Whether end tokens are allowed now: the text so far is a complete sentence. */
    public boolean isComplete() {
        return !ended[count] && history[count].complete;
    }

    /**
     * Whether generation is over: an end token was advanced, or the text so far is
     * complete and nothing but end tokens can follow.
     */
    public boolean isTerminated() {
        return ended[count] || grammar.onlyEndFollows(history[count]);
    }

}
