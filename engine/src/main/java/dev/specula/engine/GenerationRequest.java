package dev.specula.engine;

import java.util.List;
import java.util.function.Supplier;

import org.jspecify.annotations.Nullable;

import dev.specula.grammar.CompiledGrammar;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.PromptLookup;
import dev.specula.proposer.ProposerKind;
import dev.specula.proposer.TreeShape;
import dev.specula.request.InvalidRequestException;
import dev.specula.sampling.SamplingParams;
import dev.specula.sampling.TokenLogprob;
import dev.specula.sampling.TokenPenalties;

/**
 * One generation: prompt ids, how to sample, when to stop, how to speculate.
 *
 * @param promptIds the prompt, already tokenized (chat template applied, if any)
 * @param sampling temperature / top-k / top-p / seed
 * @param maxNewTokens the most tokens to generate, >= 1; 0 only with
 * {@code promptLogprobs}: the prompt is scored and nothing generated
 * @param stopStrings texts that end the output (not included in it); may be empty
 * @param policy makes the speculation policy of this request; {@link PlainPolicy} =
 * target only
 * @param listener receives text as it is accepted; may be null
 * @param cancellation lets the caller stop the generation; may be null
 * @param ignoreEos whether to go on past end-of-sequence tokens (fixed-length benchmarks,
 * as vLLM's ignore_eos)
 * @param proposer what proposes the drafts; null: the default ({@code model} with a
 * draft, {@code ngram} without one)
 * @param promptLookup the n-gram lengths prompt lookup searches for (when the proposer
 * uses it)
 * @param prediction the caller's predicted output, tokenized without special tokens
 * (OpenAI's Predicted Outputs), proposed by the {@code prediction} proposer; null: none
 * @param penalties frequency, presence and repetition penalties and a logit bias: part of
 * the target's distribution, which speculation reproduces
 * @param logprobs how many most likely tokens to report with each output token's
 * log-probability (0 to {@value TokenLogprob#MAX_TOP}); -1: no log-probabilities
 * @param grammar what the output must match (a JSON schema, JSON, a tool-call format),
 * compiled for the target's vocabulary: the constrained target is what speculation
 * reproduces; null: unconstrained
 * @param tree the draft model's proposals as a tree of this shape, verified in one call;
 * null: a chain. Rounds proposed without the model (prompt lookup, a prediction) are
 * chains either way
 * @param promptLogprobs how many most likely tokens to report with each prompt token's
 * log-probability (0 to {@value TokenLogprob#MAX_TOP}), computed by the target during the
 * prefill (vLLM's {@code prompt_logprobs}); -1: none. Such a request never reads the
 * prefix cache: a cached prefix would skip the rows of its tokens
 * @throws InvalidRequestException for an empty prompt, max new tokens < 1 (0 without
 * prompt log-probabilities), an empty stop string or a top count out of range, naming the
 * component
 */
public record GenerationRequest(int[] promptIds, SamplingParams sampling, int maxNewTokens, List<String> stopStrings,
        Supplier<? extends SpeculationPolicy> policy, @Nullable TokenStreamListener listener,
        @Nullable CancellationToken cancellation, boolean ignoreEos, @Nullable ProposerKind proposer,
        PromptLookup promptLookup, int @Nullable [] prediction, TokenPenalties penalties, int logprobs,
        @Nullable CompiledGrammar grammar, @Nullable TreeShape tree, int promptLogprobs) {

    public GenerationRequest {
        if (promptIds == null || promptIds.length == 0) {
            throw new InvalidRequestException("promptIds", "The prompt must have at least one token");
        }
        if (sampling == null) {
            throw new IllegalArgumentException("sampling must not be null");
        }
        if (promptLogprobs < -1 || promptLogprobs > TokenLogprob.MAX_TOP) {
            throw new InvalidRequestException("promptLogprobs",
                    "promptLogprobs (the most likely tokens to report at each prompt position) must be in [0, "
                            + TokenLogprob.MAX_TOP + "], or -1 for none, but was " + promptLogprobs);
        }
        if (maxNewTokens < 1 && !(maxNewTokens == 0 && promptLogprobs >= 0)) {
            throw new InvalidRequestException("maxNewTokens", "max new tokens must be >= 1 but was " + maxNewTokens
                    + " (0 only scores the prompt: ask for promptLogprobs with it)");
        }
        stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
        for (String stop : stopStrings) {
            if (stop.isEmpty()) {
                throw new InvalidRequestException("stopStrings", "Stop strings must not be empty");
            }
        }
        if (policy == null) {
            policy = PlainPolicy::new;
        }
        if (promptLookup == null) {
            promptLookup = PromptLookup.DEFAULT;
        }
        if (prediction != null && prediction.length == 0) {
            throw new InvalidRequestException("prediction", "The prediction must have at least one token");
        }
        if (penalties == null) {
            penalties = TokenPenalties.NONE;
        }
        if (logprobs < -1 || logprobs > TokenLogprob.MAX_TOP) {
            throw new InvalidRequestException("topLogprobs",
                    "top_logprobs must be in [0, " + TokenLogprob.MAX_TOP + "] but was " + logprobs);
        }
        if (grammar != null && ignoreEos) {
            throw new InvalidRequestException("ignoreEos",
                    "A grammar ends the output with an end-of-sequence token: ignoreEos cannot be combined with it");
        }
    }

    /** Whether the output tokens' log-probabilities are asked for. */
    public boolean wantsLogprobs() {
        return logprobs >= 0;
    }

    /** Whether the prompt tokens' log-probabilities are asked for. */
    public boolean wantsPromptLogprobs() {
        return promptLogprobs >= 0;
    }

    /**
     * The most tokens its sequence holds: the prompt and all it may generate, as the KV
     * budget counts them (at least 1).
     */
    int maxTokens() {
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, (long) promptIds.length + maxNewTokens));
    }

    /** This request with another policy supplier (the same in every other respect). */
    GenerationRequest withPolicy(Supplier<? extends SpeculationPolicy> policy) {
        return new GenerationRequest(promptIds, sampling, maxNewTokens, stopStrings, policy, listener, cancellation,
                ignoreEos, proposer, promptLookup, prediction, penalties, logprobs, grammar, tree, promptLogprobs);
    }

    public static Builder builder(int[] promptIds) {
        return new Builder(promptIds);
    }

    /**
     * Most new tokens of a request that sets none: the serving layer's and the
     * properties' default too.
     */
    public static final int DEFAULT_MAX_NEW_TOKENS = 256;

    /**
     * Builds a request; defaults: greedy, {@value #DEFAULT_MAX_NEW_TOKENS} new tokens, no
     * stop strings, plain decoding.
     */
    public static final class Builder {

        private final int[] promptIds;

        private SamplingParams sampling = SamplingParams.GREEDY;

        private int maxNewTokens = DEFAULT_MAX_NEW_TOKENS;

        private List<String> stopStrings = List.of();

        private Supplier<? extends SpeculationPolicy> policy = PlainPolicy::new;

        private @Nullable TokenStreamListener listener;

        private @Nullable CancellationToken cancellation;

        private boolean ignoreEos;

        private @Nullable ProposerKind proposer;

        private PromptLookup promptLookup = PromptLookup.DEFAULT;

        private @Nullable TreeShape tree;

        private int @Nullable [] prediction;

        private TokenPenalties penalties = TokenPenalties.NONE;

        private int logprobs = -1;

        private @Nullable CompiledGrammar grammar;

        private int promptLogprobs = -1;

        private Builder(int[] promptIds) {
            this.promptIds = promptIds;
        }

        public Builder sampling(SamplingParams sampling) {
            this.sampling = sampling;
            return this;
        }

        public Builder maxNewTokens(int maxNewTokens) {
            this.maxNewTokens = maxNewTokens;
            return this;
        }

        public Builder stopStrings(List<String> stopStrings) {
            this.stopStrings = stopStrings;
            return this;
        }

        public Builder policy(Supplier<? extends SpeculationPolicy> policy) {
            this.policy = policy;
            return this;
        }

        public Builder listener(@Nullable TokenStreamListener listener) {
            this.listener = listener;
            return this;
        }

        public Builder cancellation(@Nullable CancellationToken cancellation) {
            this.cancellation = cancellation;
            return this;
        }

        public Builder ignoreEos(boolean ignoreEos) {
            this.ignoreEos = ignoreEos;
            return this;
        }

        /** What proposes the drafts; null: the default for the models loaded. */
        public Builder proposer(@Nullable ProposerKind proposer) {
            this.proposer = proposer;
            return this;
        }

        public Builder promptLookup(PromptLookup promptLookup) {
            this.promptLookup = promptLookup;
            return this;
        }

        /**
         * The caller's predicted output, tokenized without special tokens; null: none.
         */
        public Builder prediction(int @Nullable [] prediction) {
            this.prediction = prediction;
            return this;
        }

        public Builder penalties(TokenPenalties penalties) {
            this.penalties = penalties;
            return this;
        }

        /**
         * Report each output token's log-probability and its {@code top} most likely
         * alternatives; -1: none.
         */
        public Builder logprobs(int top) {
            this.logprobs = top;
            return this;
        }

        /** What the output must match; null: unconstrained. */
        public Builder grammar(@Nullable CompiledGrammar grammar) {
            this.grammar = grammar;
            return this;
        }

        /**
         * Drafts trees of this shape with the draft model (null: chains).
         */
        public Builder tree(@Nullable TreeShape tree) {
            this.tree = tree;
            return this;
        }

        /**
         * Report each prompt token's log-probability (the first's excepted: nothing
         * precedes it) and its {@code top} most likely alternatives; -1: none.
         */
        public Builder promptLogprobs(int top) {
            this.promptLogprobs = top;
            return this;
        }

        public GenerationRequest build() {
            return new GenerationRequest(promptIds, sampling, maxNewTokens, stopStrings, policy, listener, cancellation,
                    ignoreEos, proposer, promptLookup, prediction, penalties, logprobs, grammar, tree, promptLogprobs);
        }

    }
}
