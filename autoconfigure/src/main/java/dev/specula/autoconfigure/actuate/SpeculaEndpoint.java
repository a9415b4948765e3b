package dev.specula.autoconfigure.actuate;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.springframework.boot.actuate.endpoint.annotation.DeleteOperation;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.actuate.endpoint.annotation.ReadOperation;

import dev.specula.engine.GenerationStats;
import dev.specula.serving.GenerationService;
import dev.specula.serving.ServiceSnapshot;

/**
 * {@code /actuator/specula}: the live figures of the {@link GenerationService} — per
 * policy totals (requests, tokens, speed, mean accepted length, acceptance per draft
 * position), breaker states, fallbacks by reason, goodput measurements, free generation
 * slots, the response cache and the KV memory (cap, reserved, prefix cache). Rates are
 * derived from the counters when read; a rate with nothing measured yet is {@code null},
 * never NaN. {@code DELETE} empties the response cache.
 */
@Endpoint(id = SpeculaEndpoint.ID)
public class SpeculaEndpoint {

    /** Endpoint id (and path segment under the actuator base path). */
    public static final String ID = "specula";

    private final GenerationService service;

    private final String modelName;

    /**
     * An endpoint over the service.
     * @param service the service reported on
     * @param modelName the served model's name, or null
     */
    public SpeculaEndpoint(GenerationService service, String modelName) {
        if (service == null) {
            throw new IllegalArgumentException("service must not be null");
        }
        this.service = service;
        this.modelName = modelName;
    }

    @ReadOperation
    public SpeculaDescriptor figures() {
        ServiceSnapshot snapshot = service.snapshot();
        Map<String, PolicyFigures> policies = new LinkedHashMap<>();
        snapshot.totalsByPolicy().forEach((policy, stats) -> policies.put(policy, PolicyFigures.of(stats)));
        return new SpeculaDescriptor(snapshot.models().name(), modelName, policies,
                new Breakers(snapshot.draftBreakerState().name(),
                        snapshot.goodputState().map(Enum::name).orElse("DISABLED")),
                snapshot.fallbacks(),
                new Goodput(finite(snapshot.plainTokensPerSecond()), finite(snapshot.speculativeTokensPerSecond()),
                        snapshot.goodputProbes()),
                new Slots(snapshot.freeGenerationSlots(), snapshot.generationSlots()),
                new CacheFigures(snapshot.cachedResponses(), snapshot.cacheHits(), snapshot.cacheMisses()),
                service.kvMemory()
                    .map((kv) -> new KvFigures(kv.maxBytes(), kv.reservedBytes(), kv.prefixCacheBytes(), kv.waiting()))
                    .orElse(new KvFigures(service.kvSettings().resolvedMaxBytes(), 0, 0, 0)));
    }

    /** Empties the response cache; answers with how many entries it held. */
    @DeleteOperation
    public CacheCleared clearCache() {
        long entries = service.snapshot().cachedResponses();
        service.clearCache();
        return new CacheCleared(entries);
    }

    /** NaN and infinities (nothing measured yet) as null, which JSON can carry. */
    static Double finite(double value) {
        return Double.isFinite(value) ? value : null;
    }

    /**
     * Everything {@code GET /actuator/specula} returns.
     *
     * @param models LOADING, READY or FAILED
     * @param model served model name (null when unknown)
     * @param policies totals per policy name ("plain" for requests decoded without a
     * draft)
     * @param breakers circuit breaker states
     * @param fallbacks requests served plainly although they asked for speculation, by
     * reason
     * @param goodput goodput switch measurements
     * @param generationSlots the bulkhead
     * @param cache the response cache
     * @param kv the KV memory
     */
    public record SpeculaDescriptor(String models, String model, Map<String, PolicyFigures> policies, Breakers breakers,
            Map<String, Long> fallbacks, Goodput goodput, Slots generationSlots, CacheFigures cache, KvFigures kv) {
    }

    /**
     * Totals of the requests one policy served.
     *
     * @param requests generations counted
     * @param generatedTokens tokens generated
     * @param tokensPerSecond generated tokens over wall time (prefill included)
     * @param decodeTokensPerSecond tokens per second after each request's first round
     * (null with too few tokens)
     * @param meanAcceptedLength tokens per target call: (accepted + rounds) / rounds
     * @param acceptanceRate accepted / drafted
     * @param drafted draft tokens proposed to the target
     * @param accepted draft tokens the target accepted
     * @param draftedPerPosition proposed draft tokens at draft position 0, 1, ...
     * @param acceptedPerPosition accepted draft tokens at draft position 0, 1, ...
     * @param targetCalls target model calls
     * @param draftCalls draft model calls
     * @param rounds verification rounds
     */
    public record PolicyFigures(long requests, long generatedTokens, Double tokensPerSecond,
            Double decodeTokensPerSecond, Double meanAcceptedLength, Double acceptanceRate, long drafted, long accepted,
            List<Long> draftedPerPosition, List<Long> acceptedPerPosition, long targetCalls, long draftCalls,
            long rounds) {

        static PolicyFigures of(GenerationStats stats) {
            return new PolicyFigures(stats.requests(), stats.generatedTokens(), finite(stats.tokensPerSecond()),
                    finite(stats.decodeTokensPerSecond()), finite(stats.meanAcceptedLength()),
                    finite(stats.acceptanceRate()), stats.drafted(), stats.accepted(), list(stats.draftedAtPosition()),
                    list(stats.acceptedAtPosition()), stats.targetCalls(), stats.draftCalls(), stats.rounds());
        }

        private static List<Long> list(long[] counts) {
            return Arrays.stream(counts).boxed().toList();
        }
    }

    /**
     * The breakers' states.
     *
     * @param draft state of the circuit breaker around the draft (CLOSED, OPEN,
     * HALF_OPEN, ...)
     * @param goodput state of the goodput switch's breaker, or DISABLED
     */
    public record Breakers(String draft, String goodput) {
    }

    /**
     * The goodput switch's measurements.
     *
     * @param plainTokensPerSecond moving average of plain decoding's speed; null before
     * the first measurement
     * @param speculativeTokensPerSecond the same for speculative requests
     * @param probes plain requests run to measure plain decoding
     */
    public record Goodput(Double plainTokensPerSecond, Double speculativeTokensPerSecond, long probes) {
    }

    /**
     * The bulkhead's slots.
     *
     * @param free generation slots free now
     * @param total generations that may run at once
     */
    public record Slots(int free, int total) {
    }

    /**
     * The response cache's figures.
     *
     * @param size answers cached
     * @param hits requests answered from the cache
     * @param misses cacheable requests that were generated
     */
    public record CacheFigures(long size, long hits, long misses) {
    }

    /**
     * The KV memory ({@code specula.kv.*}).
     *
     * @param maxBytes the cap, specula.kv.max-bytes
     * @param reservedBytes worst-case KV reserved by the running requests
     * @param prefixCacheBytes KV kept by the prefix cache (evicted first when a request
     * needs the room)
     * @param waiting requests first in line for KV memory
     */
    public record KvFigures(long maxBytes, long reservedBytes, long prefixCacheBytes, int waiting) {
    }

    /**
     * What emptying the cache dropped.
     *
     * @param entries answers the cache held before it was emptied
     */
    public record CacheCleared(long entries) {
    }

}
