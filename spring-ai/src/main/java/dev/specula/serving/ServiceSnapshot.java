package dev.specula.serving;

import java.util.Map;
import java.util.Optional;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;

import dev.specula.engine.GenerationStats;

/**
 * Live figures of a {@link GenerationService} (what {@code /actuator/specula} shows).
 *
 * @param models where model loading stands
 * @param totalsByPolicy counters summed over the requests each policy served
 * @param draftBreakerState state of the circuit breaker around the draft
 * @param goodputState state of the goodput switch's breaker; empty when the switch is
 * disabled
 * @param plainTokensPerSecond moving average of plain decoding's speed (after the prefill
 * round); NaN before the first measurement
 * @param speculativeTokensPerSecond the same for speculative requests
 * @param goodputProbes plain requests run to measure plain decoding
 * @param fallbacks fallbacks by reason tag
 * @param freeGenerationSlots bulkhead slots free now
 * @param generationSlots bulkhead size
 * @param cachedResponses answers in the response cache
 * @param cacheHits response cache hits
 * @param cacheMisses response cache misses
 */
public record ServiceSnapshot(ModelPairHandle.State models, Map<String, GenerationStats> totalsByPolicy,
        CircuitBreaker.State draftBreakerState, Optional<CircuitBreaker.State> goodputState,
        double plainTokensPerSecond, double speculativeTokensPerSecond, long goodputProbes, Map<String, Long> fallbacks,
        int freeGenerationSlots, int generationSlots, long cachedResponses, long cacheHits, long cacheMisses) {
}
