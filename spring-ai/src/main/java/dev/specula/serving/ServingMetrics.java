package dev.specula.serving;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;

import dev.specula.engine.EngineLoad;
import dev.specula.engine.FallbackReason;
import dev.specula.engine.GenerationResult;
import dev.specula.engine.GenerationStats;
import dev.specula.engine.KvMemory;
import dev.specula.kv.PrefixCache;
import dev.specula.kv.PrefixCacheListener;

/**
 * Micrometer meters of the service — counters, not rates (vLLM's spec-decode metrics:
 * publish counts, derive rates when asked) — and the live per-policy totals behind
 * {@code /actuator/specula}.
 *
 * <pre>
 * specula.draft.tokens{policy}             draft tokens proposed to the target
 * specula.accepted.tokens{policy}          draft tokens the target accepted
 * specula.accepted.tokens.position{position}  accepted draft tokens at draft position 0, 1, ...
 * specula.draft.tokens.position{position}  proposed draft tokens at draft position 0, 1, ...
 * specula.target.calls{policy}             target model calls
 * specula.verification.rounds{policy}      rounds (one target call that produced tokens)
 * specula.generated.tokens{policy}         tokens generated (timer specula.generation: per request)
 * specula.fallbacks{reason}                requests served plainly although they asked for speculation
 * specula.goodput.probes                   plain requests run to measure plain decoding
 * specula.requests.rejected                requests turned away by the bulkhead
 *
 * vLLM's and llama.cpp's speculative-decoding counters, under their names (Prometheus:
 * specula_spec_decode_num_drafts_total, ...; vllm:spec_decode_num_drafts_total there):
 * specula.spec_decode.num_drafts           rounds that verified a draft (a plain step is no draft)
 * specula.spec_decode.num_draft_tokens     draft tokens proposed (every node of a draft tree)
 * specula.spec_decode.num_accepted_tokens  draft tokens accepted
 * specula.spec_decode.num_accepted_tokens_per_pos{position}  accepted at draft position 0, 1, ...
 *
 * The engine's load, read when scraped (monitorLoad):
 * specula.queue.depth                      requests waiting for a place in the batch
 * specula.batch.size                       sequences of the latest batched step (+ unbatched runs)
 * specula.batch.steps                      batched steps; specula.batch.sequences / steps = mean batch size
 * specula.batch.sequences                  sequences over all batched steps
 * </pre>
 */
final class ServingMetrics {

    private final MeterRegistry registry;

    private final Map<String, GenerationStats> totalsByPolicy = new ConcurrentHashMap<>();

    private final Map<FallbackReason, Counter> fallbacks = new ConcurrentHashMap<>();

    private final Counter probes;

    private final Counter rejected;

    private final Counter numDrafts;

    private final Counter numDraftTokens;

    private final Counter numAcceptedTokens;

    ServingMetrics(MeterRegistry registry) {
        this.registry = registry;
        for (FallbackReason reason : FallbackReason.values()) {
            fallbacks.put(reason,
                    Counter.builder("specula.fallbacks")
                        .tag("reason", reason.tag())
                        .description("Requests served by plain decoding although they asked for speculation")
                        .register(registry));
        }
        this.probes = Counter.builder("specula.goodput.probes")
            .description("Plain requests run to measure plain decoding's speed")
            .register(registry);
        this.rejected = Counter.builder("specula.requests.rejected")
            .description("Requests turned away because every generation slot was in use")
            .register(registry);
        this.numDrafts = Counter.builder("specula.spec_decode.num_drafts")
            .description("Speculative rounds: target calls that verified a draft (vLLM's spec_decode_num_drafts)")
            .register(registry);
        this.numDraftTokens = Counter.builder("specula.spec_decode.num_draft_tokens")
            .description("Draft tokens proposed to the target (vLLM's spec_decode_num_draft_tokens)")
            .register(registry);
        this.numAcceptedTokens = Counter.builder("specula.spec_decode.num_accepted_tokens")
            .description("Draft tokens the target accepted (vLLM's spec_decode_num_accepted_tokens)")
            .register(registry);
    }

    /**
     * A prefix cache whose lookups and evictions become
     * {@code specula.prefix.tokens{result=hit|miss}}, {@code specula.prefix.evictions}
     * and whose size is the gauge {@code specula.prefix.bytes}.
     */
    static PrefixCache monitorPrefixCache(MeterRegistry registry, Function<PrefixCacheListener, PrefixCache> factory) {
        Counter hits = Counter.builder("specula.prefix.tokens")
            .tag("result", "hit")
            .description("Prompt tokens whose KV came from the prefix cache")
            .register(registry);
        Counter misses = Counter.builder("specula.prefix.tokens")
            .tag("result", "miss")
            .description("Prompt tokens that had to be prefilled")
            .register(registry);
        Counter evictions = Counter.builder("specula.prefix.evictions")
            .description("Prefix-cache blocks dropped to stay within the size limit")
            .register(registry);
        PrefixCache cache = factory.apply(new PrefixCacheListener() {
            @Override
            public void onLookup(int hitTokens, int missTokens) {
                hits.increment(hitTokens);
                misses.increment(missTokens);
            }

            @Override
            public void onEviction(long bytes) {
                evictions.increment();
            }
        });
        Gauge.builder("specula.prefix.bytes", cache, PrefixCache::bytes)
            .description("Bytes of prompt-prefix KV held for reuse")
            .baseUnit("bytes")
            .register(registry);
        return cache;
    }

    /**
     * Gauges of the KV memory: {@code specula.kv.reserved.bytes} (worst case of the
     * running requests) and {@code specula.kv.max.bytes} (the cap), read from
     * {@code service} (0 reserved until its engine starts).
     */
    static void monitorKv(MeterRegistry registry, GenerationService service) {
        Gauge
            .builder("specula.kv.reserved.bytes", service,
                    (monitored) -> monitored.kvMemory().map(KvMemory::reservedBytes).orElse(0L))
            .description("KV bytes reserved by running requests (their worst case), within specula.kv.max-bytes")
            .baseUnit("bytes")
            .register(registry);
        Gauge
            .builder("specula.kv.max.bytes", service,
                    (monitored) -> monitored.kvMemory()
                        .map(KvMemory::maxBytes)
                        .orElse(monitored.kvSettings().resolvedMaxBytes()))
            .description("Cap on the KV bytes of all requests together, prefix cache included (specula.kv.max-bytes)")
            .baseUnit("bytes")
            .register(registry);
    }

    /**
     * Gauges and counters of the engine's load ({@link EngineLoad}), read from
     * {@code service} when scraped; all 0 until its engine starts.
     */
    static void monitorLoad(MeterRegistry registry, GenerationService service) {
        Gauge.builder("specula.queue.depth", service, (monitored) -> monitored.load().queued())
            .description("Requests waiting for a place in the batch (queued, or first in line for KV memory)")
            .register(registry);
        Gauge.builder("specula.batch.size", service, (monitored) -> monitored.load().active())
            .description("Sequences decoded together in the latest step (0 when idle), plus unbatched generations")
            .register(registry);
        FunctionCounter.builder("specula.batch.steps", service, (monitored) -> monitored.load().steps())
            .description("Batched steps: one draft phase and one verification over every active sequence")
            .register(registry);
        FunctionCounter.builder("specula.batch.sequences", service, (monitored) -> monitored.load().steppedSequences())
            .description("Sequences over all batched steps; divided by specula.batch.steps, the mean batch size")
            .register(registry);
    }

    void recordGeneration(GenerationResult result) {
        String policy = result.policy();
        GenerationStats stats = result.stats();
        counter("specula.draft.tokens", policy, "Draft tokens proposed to the target").increment(stats.drafted());
        counter("specula.accepted.tokens", policy, "Draft tokens accepted by the target").increment(stats.accepted());
        counter("specula.target.calls", policy, "Target model calls").increment(stats.targetCalls());
        counter("specula.verification.rounds", policy, "Verification rounds").increment(stats.rounds());
        counter("specula.generated.tokens", policy, "Tokens generated").increment(stats.generatedTokens());
        long[] drafted = stats.draftedAtPosition();
        long[] accepted = stats.acceptedAtPosition();
        for (int position = 0; position < drafted.length; position++) {
            positionCounter("specula.draft.tokens.position", position, "Draft tokens proposed at this draft position")
                .increment(drafted[position]);
            positionCounter("specula.accepted.tokens.position", position,
                    "Draft tokens accepted at this draft position")
                .increment(position < accepted.length ? accepted[position] : 0);
        }
        recordSpecDecode(stats);
        Timer.builder("specula.generation")
            .tag("policy", policy)
            .description("Wall time of generations")
            .register(registry)
            .record(stats.wallNanos(), TimeUnit.NANOSECONDS);
        totalsByPolicy.computeIfAbsent(policy, (name) -> new GenerationStats()).addSynchronized(stats);
    }

    /**
     * vLLM's counters: a round drafted when its draft position 0 was proposed, so the
     * rounds that drafted are {@code draftedAtPosition[0]}.
     */
    private void recordSpecDecode(GenerationStats stats) {
        long[] drafted = stats.draftedAtPosition();
        numDrafts.increment(drafted.length == 0 ? 0 : drafted[0]);
        numDraftTokens.increment(stats.drafted());
        numAcceptedTokens.increment(stats.accepted());
        long[] accepted = stats.acceptedAtPosition();
        for (int position = 0; position < drafted.length; position++) {
            positionCounter("specula.spec_decode.num_accepted_tokens_per_pos", position,
                    "Draft tokens accepted at this draft position (vLLM's spec_decode_num_accepted_tokens_per_pos)")
                .increment(position < accepted.length ? accepted[position] : 0);
        }
    }

    void recordFallback(FallbackReason reason) {
        fallbacks.get(reason).increment();
    }

    void recordProbe() {
        probes.increment();
    }

    void recordRejected() {
        rejected.increment();
    }

    long fallbacks(FallbackReason reason) {
        return (long) fallbacks.get(reason).count();
    }

    /** A copy of the totals per policy name. */
    Map<String, GenerationStats> totalsByPolicy() {
        Map<String, GenerationStats> copy = new TreeMap<>();
        totalsByPolicy.forEach((policy, stats) -> copy.put(policy, stats.snapshot()));
        return copy;
    }

    private Counter counter(String name, String policy, String description) {
        return Counter.builder(name).tag("policy", policy).description(description).register(registry);
    }

    private Counter positionCounter(String name, int position, String description) {
        return Counter.builder(name)
            .tag("position", Integer.toString(position))
            .description(description)
            .register(registry);
    }

}
