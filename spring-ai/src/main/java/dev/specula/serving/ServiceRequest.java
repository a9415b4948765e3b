package dev.specula.serving;

import java.util.Arrays;
import java.util.List;

import dev.specula.engine.CancellationToken;
import dev.specula.engine.TokenStreamListener;
import dev.specula.request.InvalidRequestException;
import dev.specula.sampling.SamplingParams;

/**
 * One request to a {@link GenerationService}: the prompt and every option that decides
 * its output, plus how to speculate and where to stream.
 *
 * @param promptIds the prompt, tokenized (chat template applied)
 * @param sampling temperature / top-k / top-p / seed
 * @param maxNewTokens the most tokens to generate, >= 1
 * @param stopStrings texts that end the output
 * @param policy speculation policy, {@code name} or {@code name:γ}; null = the service's
 * default
 * @param gamma draft length γ for the policy; null = the policy's or the service's
 * default
 * @param speculation whether to speculate at all; false = plain target decoding
 * @param listener receives text as it is accepted; may be null
 * @param cancellation lets the caller stop the generation; may be null
 */
public record ServiceRequest(int[] promptIds, SamplingParams sampling, int maxNewTokens, List<String> stopStrings,
        String policy, Integer gamma, boolean speculation, TokenStreamListener listener,
        CancellationToken cancellation) {

    public ServiceRequest {
        if (promptIds == null || promptIds.length == 0) {
            throw new IllegalArgumentException("The prompt must have at least one token");
        }
        if (sampling == null) {
            throw new IllegalArgumentException("sampling must not be null");
        }
        if (maxNewTokens < 1) {
            throw new InvalidRequestException("maxNewTokens", "max tokens must be >= 1 but was " + maxNewTokens);
        }
        stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
        if (gamma != null && gamma < 1) {
            throw new InvalidRequestException("gamma", "gamma (draft length) must be >= 1 but was " + gamma);
        }
    }

    /**
     * Whether the output is a function of the request alone: greedy, or sampled with a
     * fixed seed.
     */
    public boolean isDeterministic() {
        return sampling.isGreedy() || sampling.seed() != null;
    }

    /**
     * This request streaming to {@code newListener} and cancelled by
     * {@code newCancellation}.
     */
    public ServiceRequest with(TokenStreamListener newListener, CancellationToken newCancellation) {
        return new ServiceRequest(promptIds, sampling, maxNewTokens, stopStrings, policy, gamma, speculation,
                newListener, newCancellation);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof ServiceRequest that && Arrays.equals(promptIds, that.promptIds)
                && sampling.equals(that.sampling) && maxNewTokens == that.maxNewTokens
                && stopStrings.equals(that.stopStrings) && java.util.Objects.equals(policy, that.policy)
                && java.util.Objects.equals(gamma, that.gamma) && speculation == that.speculation
                && listener == that.listener && cancellation == that.cancellation;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(promptIds) * 31 + sampling.hashCode();
    }

    @Override
    public String toString() {
        return "ServiceRequest[" + promptIds.length + " prompt tokens, " + sampling + ", maxNewTokens=" + maxNewTokens
                + ", policy=" + policy + ", gamma=" + gamma + ", speculation=" + speculation + "]";
    }
}
