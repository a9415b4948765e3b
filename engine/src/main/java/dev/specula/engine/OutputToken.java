package dev.specula.engine;

import org.jspecify.annotations.Nullable;

import dev.specula.sampling.TokenLogprob;

/**
 * A piece of streamed text and the output token it belongs to, with how that token was
 * made ({@link TokenStreamListener#onTokens}).
 *
 * @param index the token's position in the output, from 0; a token whose text streams in
 * two parts (a possible stop string held back its end) comes as two pieces with the same
 * index
 * @param id the token id
 * @param text this piece of the token's text; empty for a token without text of its own
 * (end of sequence; a byte of a character that a later token completes, which carries the
 * character)
 * @param kind how the token was made
 * @param round the verification round that committed it, from 1
 * @param gamma the draft length γ the policy chose for that round (0: it drafted nothing)
 * @param logprob the token's log-probability ({@link GenerationResult#logprobs()}), on
 * the first piece of the token only, when the request asks for log-probabilities; null
 * otherwise. A stream's pieces thus carry each token's once, in order: together they are
 * the result's
 */
public record OutputToken(int index, int id, String text, TokenKind kind, int round, int gamma,
        @Nullable TokenLogprob logprob) {

    /** A piece without a log-probability. */
    public OutputToken(int index, int id, String text, TokenKind kind, int round, int gamma) {
        this(index, id, text, kind, round, gamma, null);
    }

    /**
     * This token with {@code more} text after its own (a later piece of it joined to this
     * one: the log-probability stays this piece's).
     */
    public OutputToken extendedBy(String more) {
        return new OutputToken(index, id, text + more, kind, round, gamma, logprob);
    }

}
