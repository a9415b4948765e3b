package dev.specula.serving;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.stats.CacheStats;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.cache.CaffeineCacheMetrics;

import dev.specula.engine.GenerationResult;
import dev.specula.sampling.SamplingParams;

/**
 * Answers of deterministic requests (greedy, or sampled with a fixed seed), keyed by
 * everything that decides the output: the model pair, the prompt tokens and the options.
 * A greedy output is the target's alone (speculation is lossless), so its key leaves the
 * policy out; a seeded sample depends on which random draws the policy makes, so its key
 * keeps it.
 */
final class ResponseCache {

    /** Name of the cache in Micrometer's {@code cache.*} meters. */
    static final String NAME = "specula.responses";

    record Key(String models, int[] promptIds, SamplingParams sampling, int maxNewTokens, List<String> stopStrings,
            String policy) {

        @Override
        public boolean equals(Object other) {
            return other instanceof Key that && models.equals(that.models) && Arrays.equals(promptIds, that.promptIds)
                    && sampling.equals(that.sampling) && maxNewTokens == that.maxNewTokens
                    && stopStrings.equals(that.stopStrings) && policy.equals(that.policy);
        }

        @Override
        public int hashCode() {
            return ((models.hashCode() * 31 + Arrays.hashCode(promptIds)) * 31 + sampling.hashCode()) * 31
                    + maxNewTokens;
        }
    }

    private final Cache<Key, GenerationResult> cache;

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
        return Optional.of(new Key(models, request.promptIds(), request.sampling(), request.maxNewTokens(),
                request.stopStrings(), policyPart));
    }

    Optional<GenerationResult> get(Key key) {
        return Optional.ofNullable(cache.getIfPresent(key));
    }

    void put(Key key, GenerationResult result) {
        cache.put(key, result);
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
