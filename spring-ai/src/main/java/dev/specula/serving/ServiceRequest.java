package dev.specula.serving;

import java.util.Arrays;
import java.util.List;

import org.jspecify.annotations.Nullable;

import dev.specula.engine.CancellationToken;
import dev.specula.engine.TokenStreamListener;
import dev.specula.grammar.Grammar;
import dev.specula.proposer.ProposerKind;
import dev.specula.request.InvalidRequestException;
import dev.specula.sampling.SamplingParams;
import dev.specula.sampling.TokenLogprob;
import dev.specula.sampling.TokenPenalties;

/**
 * One request to a {@link GenerationService}: the prompt and every option that decides
 * its output, plus how to speculate and where to stream.
 *
 * @param promptIds the prompt, tokenized (chat template applied)
 * @param sampling temperature / top-k / top-p / seed
 * @param maxNewTokens the most tokens to generate, >= 1; 0 only with
 * {@code promptLogprobs} (the prompt is scored, nothing generated)
 * @param stopStrings texts that end the output
 * @param policy speculation policy, {@code name} or {@code name:γ}; null = the service's
 * default
 * @param gamma draft length γ for the policy; null = the policy's or the service's
 * default
 * @param speculation whether to speculate at all; false = plain target decoding
 * @param listener receives text as it is accepted; may be null
 * @param cancellation lets the caller stop the generation; may be null
 * @param proposer what proposes the drafts; null = the service's default
 * @param prediction the caller's predicted output, tokenized without special tokens
 * (OpenAI's Predicted Outputs): the draft of the {@code prediction} proposer; null = none
 * @param penalties frequency, presence and repetition penalties and a logit bias (part of
 * the target's distribution, which speculation reproduces)
 * @param logprobs how many most likely tokens to report with each output token's
 * log-probability; -1 = no log-probabilities
 * @param grammar what the output must match (a JSON schema, JSON, a tool-call format);
 * null = unconstrained
 * @param promptLogprobs how many most likely tokens to report with each prompt token's
 * log-probability (the first's excepted); -1 = none
 */
public record ServiceRequest(int[] promptIds, SamplingParams sampling, int maxNewTokens, List<String> stopStrings,
        String policy, Integer gamma, boolean speculation, TokenStreamListener listener, CancellationToken cancellation,
        @Nullable ProposerKind proposer, int @Nullable [] prediction, TokenPenalties penalties, int logprobs,
        @Nullable Grammar grammar, int promptLogprobs) {

    /** A request that does not score its prompt. */
    public ServiceRequest(int[] promptIds, SamplingParams sampling, int maxNewTokens, List<String> stopStrings,
            String policy, Integer gamma, boolean speculation, TokenStreamListener listener,
            CancellationToken cancellation, @Nullable ProposerKind proposer, int @Nullable [] prediction,
            TokenPenalties penalties, int logprobs, @Nullable Grammar grammar) {
        this(promptIds, sampling, maxNewTokens, stopStrings, policy, gamma, speculation, listener, cancellation,
                proposer, prediction, penalties, logprobs, grammar, -1);
    }

    /** A request without a grammar. */
    public ServiceRequest(int[] promptIds, SamplingParams sampling, int maxNewTokens, List<String> stopStrings,
            String policy, Integer gamma, boolean speculation, TokenStreamListener listener,
            CancellationToken cancellation, @Nullable ProposerKind proposer, int @Nullable [] prediction,
            TokenPenalties penalties, int logprobs) {
        this(promptIds, sampling, maxNewTokens, stopStrings, policy, gamma, speculation, listener, cancellation,
                proposer, prediction, penalties, logprobs, null);
    }

    /**
     * A request with no penalty and no log-probabilities.
     */
    public ServiceRequest(int[] promptIds, SamplingParams sampling, int maxNewTokens, List<String> stopStrings,
            String policy, Integer gamma, boolean speculation, TokenStreamListener listener,
            CancellationToken cancellation, @Nullable ProposerKind proposer, int @Nullable [] prediction) {
        this(promptIds, sampling, maxNewTokens, stopStrings, policy, gamma, speculation, listener, cancellation,
                proposer, prediction, TokenPenalties.NONE, -1);
    }

    /** A request with the service's default proposer. */
    public ServiceRequest(int[] promptIds, SamplingParams sampling, int maxNewTokens, List<String> stopStrings,
            String policy, Integer gamma, boolean speculation, TokenStreamListener listener,
            CancellationToken cancellation) {
        this(promptIds, sampling, maxNewTokens, stopStrings, policy, gamma, speculation, listener, cancellation, null,
                null);
    }

    public ServiceRequest {
        if (promptIds == null || promptIds.length == 0) {
            throw new IllegalArgumentException("The prompt must have at least one token");
        }
        if (sampling == null) {
            throw new IllegalArgumentException("sampling must not be null");
        }
        if (promptLogprobs < -1 || promptLogprobs > TokenLogprob.MAX_TOP) {
            throw new InvalidRequestException("promptLogprobs",
                    "promptLogprobs must be in [0, " + TokenLogprob.MAX_TOP + "] but was " + promptLogprobs);
        }
        if (maxNewTokens < 1 && !(maxNewTokens == 0 && promptLogprobs >= 0)) {
            throw new InvalidRequestException("maxNewTokens", "max tokens must be >= 1 but was " + maxNewTokens
                    + " (0 only scores the prompt: ask for promptLogprobs with it)");
        }
        stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
        if (gamma != null && gamma < 1) {
            throw new InvalidRequestException("gamma", "gamma (draft length) must be >= 1 but was " + gamma);
        }
        if (prediction != null && prediction.length == 0) {
            throw new InvalidRequestException("prediction", "The prediction must have at least one token");
        }
        if (prediction != null && !speculation) {
            throw new InvalidRequestException("prediction",
                    "A prediction is drafted by speculation, which the request turned off: drop one of them");
        }
        if (penalties == null) {
            penalties = TokenPenalties.NONE;
        }
        if (logprobs < -1 || logprobs > TokenLogprob.MAX_TOP) {
            throw new InvalidRequestException("topLogprobs",
                    "top_logprobs must be in [0, " + TokenLogprob.MAX_TOP + "] but was " + logprobs);
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
                newListener, newCancellation, proposer, prediction, penalties, logprobs, grammar, promptLogprobs);
    }

    /** This request with {@code newProposer} (null: the default). */
    public ServiceRequest withProposer(@Nullable ProposerKind newProposer) {
        return new ServiceRequest(promptIds, sampling, maxNewTokens, stopStrings, policy, gamma, speculation, listener,
                cancellation, newProposer, prediction, penalties, logprobs, grammar, promptLogprobs);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof ServiceRequest that && Arrays.equals(promptIds, that.promptIds)
                && sampling.equals(that.sampling) && maxNewTokens == that.maxNewTokens
                && stopStrings.equals(that.stopStrings) && java.util.Objects.equals(policy, that.policy)
                && java.util.Objects.equals(gamma, that.gamma) && speculation == that.speculation
                && proposer == that.proposer && Arrays.equals(prediction, that.prediction)
                && penalties.equals(that.penalties) && logprobs == that.logprobs
                && java.util.Objects.equals(grammar, that.grammar) && promptLogprobs == that.promptLogprobs
                && listener == that.listener && cancellation == that.cancellation;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(promptIds) * 31 + sampling.hashCode();
    }

    @Override
    public String toString() {
        return "ServiceRequest[" + promptIds.length + " prompt tokens, " + sampling + ", maxNewTokens=" + maxNewTokens
                + ", policy=" + policy + ", gamma=" + gamma + ", speculation=" + speculation + ", proposer=" + proposer
                + (penalties.isNone() ? "" : ", " + penalties) + (logprobs < 0 ? "" : ", logprobs=" + logprobs)
                + (promptLogprobs < 0 ? "" : ", promptLogprobs=" + promptLogprobs)
                + (grammar == null ? "" : ", grammar") + "]";
    }
}
