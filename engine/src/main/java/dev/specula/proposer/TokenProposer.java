package dev.specula.proposer;

/**
 * A proposer that needs no model call: it reads a sequence's committed tokens (prompt and
 * output) and proposes a chain of tokens to follow them, each with draft probability 1.
 * One that keeps state ({@link PredictedOutput}) is made per sequence and called once a
 * round, in order. The draft model, which proposes in batched model calls, is the
 * engine's own proposer and does not take this form.
 */
public interface TokenProposer {

    /**
     * Proposes up to {@code maxTokens} tokens to follow {@code tokens[0, length)}.
     * @param tokens the sequence's committed tokens, the first {@code length} used
     * @param out receives the proposal from index 0; it has room for {@code maxTokens}
     * @return how many tokens were proposed, 0 when there is nothing to propose
     */
    int propose(int[] tokens, int length, int maxTokens, int[] out);

}
