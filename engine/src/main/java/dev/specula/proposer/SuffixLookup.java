package dev.specula.proposer;

/**
 * Suffix lookup (after SuffixDecoding, Oliaro et al. 2024, arXiv 2411.04975, over the
 * request's own tokens): a suffix automaton of the sequence (prompt and committed
 * output), extended by the tokens committed since the last round, finds the longest
 * suffix of the sequence that occurred earlier, of any length, and proposes its most
 * frequent continuation. One instance per sequence: it keeps the automaton.
 *
 * <pre>
 * match    w: the longest suffix of the sequence that also ends earlier in it (length L, no cap: a
 *          copy matches its whole copied run); L = 0 (the last token is new): no proposal
 * length   at most min(γ, ceil(2 × L)) tokens (SuffixDecoding's max_spec_factor, 2 here): a short match
 *          proposes little
 * walk     context = w, then per proposed token: c is the token for which context·c occurs most often
 *          in the sequence, counting up to 256 occurrences; of equal counts, the c whose last counted
 *          occurrence of context·c ends latest (below the cap: its latest occurrence). Propose c;
 *          context = context·c
 * end      when the context occurs only at the end of the sequence (a repeat whose period is shorter
 *          than the proposal), the proposal goes on repeating its own tokens, as {@link PromptLookup}'s
 * </pre>
 *
 * Where each context occurred once before, this is prompt lookup without a cap on n: what
 * followed the longest match. Where a context occurred several times, the continuation
 * most of them took wins over the latest one.
 *
 * <p>
 * The proposal is deterministic (its draft probability is 1), so rejection sampling stays
 * exact. The sequence only grows between calls (a shorter one starts the automaton over).
 *
 * <p>
 * Cost: amortized O(1) per new token plus at most 256 occurrence counts (a handful in
 * text), plus the continuations scanned per proposed token. Measured once on a 2-core
 * Xeon, 8,192 tokens of code ids spread over 151,936: the first call, which builds over
 * the prompt, 2–3 ms; each round after (1 to 5 new tokens, γ = 8) about 0.5 µs, where
 * n-gram prompt lookup rescans for about 3 µs; 1.5 MB of arrays. Worst case, one token
 * repeated 8,192 times: 4–5 ms and 2–4 µs.
 */
public final class SuffixLookup implements TokenProposer {

    /** Proposals of at most this many tokens per matched token (and at most γ). */
    static final double MAX_SPEC_FACTOR = 2;

    /**
     * Occurrences are counted up to this many: more are as frequent (and a round's cost
     * stays bounded in a long periodic run).
     */
    static final int COUNT_CAP = 256;

    private final double maxSpecFactor;

    private SuffixAutomaton automaton;

    /**
     * A lookup for one sequence, proposing at most {@link #MAX_SPEC_FACTOR} × the match.
     */
    public SuffixLookup() {
        this(MAX_SPEC_FACTOR, COUNT_CAP);
    }

    /**
     * A lookup for one sequence with its own caps.
     * @param maxSpecFactor proposal tokens per matched token, > 0 (infinity: γ alone
     * caps)
     * @param countCap occurrences are counted up to this many, >= 1
     */
    SuffixLookup(double maxSpecFactor, int countCap) {
        if (!(maxSpecFactor > 0)) {
            throw new IllegalArgumentException("maxSpecFactor must be > 0 but was " + maxSpecFactor);
        }
        this.maxSpecFactor = maxSpecFactor;
        this.automaton = new SuffixAutomaton(countCap);
    }

    @Override
    public int propose(int[] tokens, int length, int maxTokens, int[] out) {
        if (length < automaton.length()) {
            automaton = new SuffixAutomaton(automaton.countCap());
        }
        for (int i = automaton.length(); i < length; i++) {
            automaton.append(tokens[i]);
        }
        if (maxTokens <= 0) {
            return 0;
        }
        int context = automaton.link(automaton.last());
        int matched = context < 0 ? 0 : automaton.maxLength(context);
        if (matched == 0) {
            return 0;
        }
        int limit = (int) Math.min(maxTokens, Math.ceil(maxSpecFactor * matched));
        int proposed = 0;
        while (proposed < limit) {
            int edge = automaton.mostFrequentEdge(context);
            if (edge < 0) {
                // the context (w, then the proposal) occurs only at the end of the
                // sequence,
                // which ends with w too: what follows repeats the proposal
                for (int i = proposed; i < limit; i++) {
                    out[i] = out[i - proposed];
                }
                return proposed == 0 ? 0 : limit;
            }
            out[proposed++] = automaton.edgeToken(edge);
            context = automaton.edgeTarget(edge);
        }
        return proposed;
    }

}
