package dev.specula.engine;

/**
 * What a request produced.
 *
 * @param tokenIds the new tokens only (an end-of-sequence token included when it ended
 * the output)
 * @param text their text, special tokens skipped, cut before a stop string
 * @param finishReason why generation ended
 * @param promptTokens tokens in the prompt
 * @param policy the speculation policy that ran ("plain" without a draft)
 * @param stats counters and timings
 * @param fallback why speculation was switched off mid-generation
 * ({@link FallbackReason#DRAFT_ERROR} or {@link FallbackReason#DRAFT_TIMEOUT}: the rest
 * was decoded plainly, the output is unchanged); null if it was not
 */
public record GenerationResult(int[] tokenIds, String text, FinishReason finishReason, int promptTokens, String policy,
        GenerationStats stats, FallbackReason fallback) {

    public GenerationResult(int[] tokenIds, String text, FinishReason finishReason, int promptTokens, String policy,
            GenerationStats stats) {
        this(tokenIds, text, finishReason, promptTokens, policy, stats, null);
    }
}
