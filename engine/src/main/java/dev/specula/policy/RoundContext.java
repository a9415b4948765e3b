package dev.specula.policy;

import org.jspecify.annotations.Nullable;

/**
 * What a policy may look at before a round.
 *
 * @param generated tokens generated so far
 * @param remaining tokens still allowed (max new tokens − generated)
 * @param lastToken the last committed token id
 * @param targetHiddenState the target's {@code last_hidden_state} at the position that
 * predicted {@code lastToken}, when the target exports it and the policy asked for it;
 * else null
 * @param proposer what proposes this round's drafts ({@code model}, {@code ngram},
 * {@code suffix}, {@code prediction}, ...: a proposer kind's id): the request's proposer,
 * or for one that drafts with the model unless its lookup matches ({@code model+ngram},
 * {@code model+suffix}) the lookup's id when it matches the tokens so far, else
 * {@code model}; null when unknown
 */
public record RoundContext(int generated, int remaining, int lastToken, float @Nullable [] targetHiddenState,
        @Nullable String proposer) {

    /** A context that does not say what proposes. */
    public RoundContext(int generated, int remaining, int lastToken, float @Nullable [] targetHiddenState) {
        this(generated, remaining, lastToken, targetHiddenState, null);
    }

}
