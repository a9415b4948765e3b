package dev.specula.engine;

import java.util.List;

import dev.specula.sampling.TokenLogprob;

/**
 * Receives the output as soon as the target has accepted it. Text that a later round
 * could take back is never sent: a possible start of a stop string and an incomplete
 * UTF-8 character are held until settled.
 *
 * <p>
 * A listener that {@link #wantsTokens() wants tokens} hears, instead of bare text, the
 * text with the tokens it is made of and how each was made ({@link TokenKind}), aligned
 * with the text actually sent; when the request asks for log-probabilities, each token's
 * comes with the first piece of its text ({@link OutputToken#logprob()}).
 *
 * <p>
 * A request that scores its prompt ({@link GenerationRequest#promptLogprobs()}) tells its
 * listener the prompt's log-probabilities once, before any text
 * ({@link #onPromptLogprobs}).
 */
@FunctionalInterface
public interface TokenStreamListener {

    /** New text, in order; the concatenation of all calls is the final text. */
    void onText(String text);

    /**
     * Whether {@link #onTokens} is to be called instead of {@link #onText}; asked once,
     * when the generation starts. Default false: tracking the tokens costs a decode per
     * token.
     */
    default boolean wantsTokens() {
        return false;
    }

    /**
     * New text and the pieces it is made of, in order: their texts concatenate to
     * {@code text}, and every output token comes at least once (in two pieces when a
     * possible stop string held back part of it; a cancelled output drops the tokens
     * whose text it never sent). {@code text} may be empty when only tokens without text
     * are new (end of sequence). Called only when {@link #wantsTokens()}; by default
     * passes non-empty text to {@link #onText}.
     */
    default void onTokens(String text, List<OutputToken> tokens) {
        if (!text.isEmpty()) {
            onText(text);
        }
    }

    /**
     * The prompt's log-probabilities, prompt tokens 1.. in order (as
     * {@link GenerationResult#promptLogprobs()}): called once, when the prefill has
     * scored the prompt and before any text, for a request that asks for them. By default
     * ignored.
     */
    default void onPromptLogprobs(List<TokenLogprob> logprobs) {
    }

}
