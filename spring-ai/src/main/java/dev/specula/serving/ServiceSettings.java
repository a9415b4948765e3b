package dev.specula.serving;

import dev.specula.policy.PolicyParameters;

import java.time.Duration;
import java.util.Map;

/**
 * How a {@link GenerationService} serves: the default policy, the response cache, the time limit of
 * speculative rounds, the goodput switch and the bulkhead. Resilience4j objects passed to the builder win
 * over the matching settings here (that is how {@code resilience4j.*} properties reach the service).
 *
 * @param defaultPolicy policy of requests that name none, {@code name} or {@code name:γ}
 * @param policyParameters default γ and policy options
 * @param cacheEnabled whether deterministic answers are cached
 * @param cacheMaximumSize most cached answers
 * @param cacheTimeToLive how long an answer stays cached
 * @param roundTimeout longest a speculative round may run before speculation is stopped and the request goes on plainly
 * @param goodputEnabled whether speculation is switched off while it decodes slower than plain decoding
 * @param goodputProbeInterval speculative requests between two plain probes of plain decoding's speed
 * @param goodputMinTokens shortest output (tokens) whose speed is measured
 * @param maxConcurrentGenerations generations running at once; more get {@link ServiceBusyException}
 * @param maxWaitForSlot how long a request waits for a free slot before it is turned away
 * @param batching whether concurrent requests are stepped together by a {@link dev.specula.engine.Engine#submit}
 * @param maxBatchSize requests stepped together
 * @param queueCapacity requests waiting for a place in the batch
 * @param maxBatchWait how long a first request waits for others to start with it
 * @param prefixCacheBytes bytes of prompt-prefix KV kept for reuse across requests; 0 = no prefix cache
 */
public record ServiceSettings(String defaultPolicy, PolicyParameters policyParameters, boolean cacheEnabled,
        long cacheMaximumSize, Duration cacheTimeToLive, Duration roundTimeout, boolean goodputEnabled,
        int goodputProbeInterval, int goodputMinTokens, int maxConcurrentGenerations, Duration maxWaitForSlot,
        boolean batching, int maxBatchSize, int queueCapacity, Duration maxBatchWait, long prefixCacheBytes) {

    public static ServiceSettings defaults() {
        return new ServiceSettings("fixed", new PolicyParameters(5, Map.of()), true, 1000, Duration.ofMinutes(10),
                Duration.ofSeconds(10), true, 50, 8, 4, Duration.ZERO, false, 8, 64, Duration.ofMillis(2), 0);
    }

    public ServiceSettings {
        if (defaultPolicy == null || defaultPolicy.isBlank()) {
            throw new IllegalArgumentException("defaultPolicy must not be blank");
        }
        if (cacheMaximumSize < 0) {
            throw new IllegalArgumentException("cacheMaximumSize must be >= 0 but was " + cacheMaximumSize);
        }
        if (roundTimeout.isNegative() || roundTimeout.isZero()) {
            throw new IllegalArgumentException("roundTimeout must be > 0 but was " + roundTimeout);
        }
        if (goodputProbeInterval < 1) {
            throw new IllegalArgumentException("goodputProbeInterval must be >= 1 but was " + goodputProbeInterval);
        }
        if (maxConcurrentGenerations < 1) {
            throw new IllegalArgumentException("maxConcurrentGenerations must be >= 1 but was " + maxConcurrentGenerations);
        }
    }

    public ServiceSettings withBatching(boolean enabled, int batchSize, int queue, Duration wait) {
        return new ServiceSettings(defaultPolicy, policyParameters, cacheEnabled, cacheMaximumSize, cacheTimeToLive,
                roundTimeout, goodputEnabled, goodputProbeInterval, goodputMinTokens, maxConcurrentGenerations, maxWaitForSlot,
                enabled, batchSize, queue, wait, prefixCacheBytes);
    }

    public ServiceSettings withPrefixCache(long bytes) {
        return new ServiceSettings(defaultPolicy, policyParameters, cacheEnabled, cacheMaximumSize, cacheTimeToLive,
                roundTimeout, goodputEnabled, goodputProbeInterval, goodputMinTokens, maxConcurrentGenerations, maxWaitForSlot,
                batching, maxBatchSize, queueCapacity, maxBatchWait, bytes);
    }

    public ServiceSettings withDefaultPolicy(String policy, PolicyParameters parameters) {
        return new ServiceSettings(policy, parameters, cacheEnabled, cacheMaximumSize, cacheTimeToLive, roundTimeout,
                goodputEnabled, goodputProbeInterval, goodputMinTokens, maxConcurrentGenerations, maxWaitForSlot, batching,
                maxBatchSize, queueCapacity, maxBatchWait, prefixCacheBytes);
    }

    public ServiceSettings withCache(boolean enabled, long maximumSize, Duration timeToLive) {
        return new ServiceSettings(defaultPolicy, policyParameters, enabled, maximumSize, timeToLive, roundTimeout,
                goodputEnabled, goodputProbeInterval, goodputMinTokens, maxConcurrentGenerations, maxWaitForSlot, batching,
                maxBatchSize, queueCapacity, maxBatchWait, prefixCacheBytes);
    }

    public ServiceSettings withRoundTimeout(Duration timeout) {
        return new ServiceSettings(defaultPolicy, policyParameters, cacheEnabled, cacheMaximumSize, cacheTimeToLive, timeout,
                goodputEnabled, goodputProbeInterval, goodputMinTokens, maxConcurrentGenerations, maxWaitForSlot, batching,
                maxBatchSize, queueCapacity, maxBatchWait, prefixCacheBytes);
    }

    public ServiceSettings withGoodput(boolean enabled, int probeInterval, int minTokens) {
        return new ServiceSettings(defaultPolicy, policyParameters, cacheEnabled, cacheMaximumSize, cacheTimeToLive,
                roundTimeout, enabled, probeInterval, minTokens, maxConcurrentGenerations, maxWaitForSlot, batching, maxBatchSize,
                queueCapacity, maxBatchWait, prefixCacheBytes);
    }

    public ServiceSettings withConcurrency(int maxConcurrent, Duration maxWait) {
        return new ServiceSettings(defaultPolicy, policyParameters, cacheEnabled, cacheMaximumSize, cacheTimeToLive,
                roundTimeout, goodputEnabled, goodputProbeInterval, goodputMinTokens, maxConcurrent, maxWait, batching,
                maxBatchSize, queueCapacity, maxBatchWait, prefixCacheBytes);
    }
}
