package dev.specula.serving;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.stats.CacheStats;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.cache.CaffeineCacheMetrics;
import org.jspecify.annotations.Nullable;

import dev.specula.engine.GenerationResult;
import dev.specula.engine.GenerationStats;
import dev.specula.engine.TokenStreamListener;
import dev.specula.grammar.Grammar;
import dev.specula.sampling.SamplingParams;
import dev.specula.sampling.TokenLogprob;
import dev.specula.sampling.TokenPenalties;

/**
 * Answers of deterministic requests (greedy, or sampled with a fixed seed), keyed by
 * everything that decides the answer: the model pair, the prompt tokens and the options
 * (sampling, length, stop strings, penalties, grammar, and the log-probabilities asked
 * for, of the output and of the prompt). A greedy output is the target's alone
 * (speculation is lossless), so its key leaves the policy out; a seeded sample depends on
 * which random draws the policy makes, so its key keeps it. Each answer keeps the chunks
 * it streamed in, so that replaying it to a stream looks as the first run did.
 */
final class ResponseCache {

    /** Name of the cache in Micrometer's {@code cache.*} meters. */
    static final String NAME = "specula.responses";

    record Key(String models, int[] promptIds, SamplingParams sampling, int maxNewTokens, List<String> stopStrings,
            String policy, TokenPenalties penalties, @Nullable Grammar grammar, int logprobs, int promptLogprobs) {

        @Override
        public boolean equals(Object other) {
            return other instanceof Key that && models.equals(that.models) && Arrays.equals(promptIds, that.promptIds)
                    && sampling.equals(that.sampling) && maxNewTokens == that.maxNewTokens
                    && stopStrings.equals(that.stopStrings) && policy.equals(that.policy)
                    && penalties.equals(that.penalties) && Objects.equals(grammar, that.grammar)
                    && logprobs == that.logprobs && promptLogprobs == that.promptLogprobs;
        }

        @Override
        public int hashCode() {
            return ((models.hashCode() * 31 + Arrays.hashCode(promptIds)) * 31 + sampling.hashCode()) * 31
                    + maxNewTokens;
        }
    }

    /**
     * A cached answer and where the chunks it streamed in ended.
     *
     * @param generation the answer as it was generated
     * @param chunkEnds offsets into its text where each streamed chunk ended, in order
     * @param promptScored whether the request asked for the prompt's log-probabilities (a
     * replay then tells its listener)
     */
    record Entry(GenerationResult generation, int[] chunkEnds, boolean promptScored) {

        /**
         * Sends the text to {@code listener} in the chunks it was generated in, after the
         * prompt's log-probabilities when the answer has them.
         */
        void replay(TokenStreamListener listener) {
            if (promptScored) {
                listener.onPromptLogprobs(generation.promptLogprobs());
            }
            String text = generation.text();
            int start = 0;
            for (int end : chunkEnds) {
                listener.onText(text.substring(start, end));
                start = end;
            }
            if (start < text.length()) {
                listener.onText(text.substring(start));
            }
        }

        /**
         * The answer as a replay reports it: the same output, no statistics (nothing was
         * decoded), policy {@link ServiceResult#CACHE}.
         */
        GenerationResult replayed() {
            return new GenerationResult(generation.tokenIds(), generation.text(), generation.finishReason(),
                    generation.promptTokens(), ServiceResult.CACHE, new GenerationStats(), null, null,
                    generation.logprobs(), generation.promptLogprobs());
        }

    }

    /**
     * Passes streamed text on (to the request's listener, if any) and notes where each
     * chunk ends. Text may arrive on an engine output thread.
     */
    static final class ChunkRecorder implements TokenStreamListener {

        private final @Nullable TokenStreamListener next;

        private int[] ends = new int[16];

        private int chunks;

        private int length;

        ChunkRecorder(@Nullable TokenStreamListener next) {
            this.next = next;
        }

        @Override
        public void onText(String text) {
            synchronized (this) {
                length += text.length();
                if (chunks == ends.length) {
                    ends = Arrays.copyOf(ends, chunks * 2);
                }
                ends[chunks++] = length;
            }
            if (next != null) {
                next.onText(text);
            }
        }

        @Override
        public void onPromptLogprobs(List<TokenLogprob> logprobs) {
            if (next != null) {
                next.onPromptLogprobs(logprobs);
            }
        }

        synchronized int[] ends() {
            return Arrays.copyOf(ends, chunks);
        }

    }

    private final Cache<Key, Entry> cache;

    ResponseCache(long maximumSize, Duration timeToLive, MeterRegistry registry) {
        this.cache = Caffeine.newBuilder().maximumSize(maximumSize).expireAfterWrite(timeToLive).recordStats().build();
        CaffeineCacheMetrics.monitor(registry, cache, NAME);
    }

    /**
     * The key of a request, or empty when its output is not a function of the request
     * (unseeded sampling).
     */
    static Optional<Key> keyOf(String models, ServiceRequest request, String policy) {
        if (!request.isDeterministic()) {
            return Optional.empty();
        }
        String policyPart = request.sampling().isGreedy() ? "" : policy;
        return Optional
            .of(new Key(models, request.promptIds(), request.sampling(), request.maxNewTokens(), request.stopStrings(),
                    policyPart, request.penalties(), request.grammar(), request.logprobs(), request.promptLogprobs()));
    }

    Optional<Entry> get(Key key) {
        return Optional.ofNullable(cache.getIfPresent(key));
    }

    void put(Key key, Entry entry) {
        cache.put(key, entry);
    }

    long size() {
        return cache.estimatedSize();
    }

    CacheStats stats() {
        return cache.stats();
    }

    void clear() {
        cache.invalidateAll();
    }

}
