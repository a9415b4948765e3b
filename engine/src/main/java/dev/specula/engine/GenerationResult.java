package dev.specula.engine;

import java.util.List;

import org.jspecify.annotations.Nullable;

import dev.specula.sampling.TokenLogprob;

/**
 * What a request produced.
 *
 * @param tokenIds the new tokens only (an end-of-sequence token included when it ended
 * the output)
 * @param text their text, special tokens skipped, cut before a stop string
 * @param finishReason why generation ended
 * @param promptTokens tokens in the prompt
 * @param policy the speculation policy that ran ("plain" when nothing was proposed)
 * @param stats counters and timings
 * @param fallback why speculation was switched off mid-generation
 * ({@link FallbackReason#DRAFT_ERROR} or {@link FallbackReason#DRAFT_TIMEOUT}: the rest
 * was decoded plainly, the output is unchanged); null if it was not
 * @param proposer what proposed the drafts ({@code model}, {@code ngram},
 * {@code model+ngram}); null when the request decoded plainly
 * @param logprobs the log-probability of each of {@code tokenIds}, in order, when the
 * request asked for them; empty otherwise
 * @param promptLogprobs the log-probability of each prompt token after the first (the
 * first has nothing before it), in order: entry i is prompt token i + 1's, computed by
 * the target from the prompt before it; empty unless the request asked for them
 */
public record GenerationResult(int[] tokenIds, String text, FinishReason finishReason, int promptTokens, String policy,
        GenerationStats stats, @Nullable FallbackReason fallback, @Nullable String proposer,
        List<TokenLogprob> logprobs, List<TokenLogprob> promptLogprobs) {

    public GenerationResult {
        logprobs = logprobs == null ? List.of() : List.copyOf(logprobs);
        promptLogprobs = promptLogprobs == null ? List.of() : List.copyOf(promptLogprobs);
    }

    /** A result without prompt log-probabilities. */
    public GenerationResult(int[] tokenIds, String text, FinishReason finishReason, int promptTokens, String policy,
            GenerationStats stats, @Nullable FallbackReason fallback, @Nullable String proposer,
            List<TokenLogprob> logprobs) {
        this(tokenIds, text, finishReason, promptTokens, policy, stats, fallback, proposer, logprobs, List.of());
    }

    public GenerationResult(int[] tokenIds, String text, FinishReason finishReason, int promptTokens, String policy,
            GenerationStats stats) {
        this(tokenIds, text, finishReason, promptTokens, policy, stats, null, null, List.of(), List.of());
    }
}
