package dev.specula.serving;

import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;

import io.github.resilience4j.bulkhead.Bulkhead;
import io.github.resilience4j.bulkhead.BulkheadConfig;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.timelimiter.TimeLimiter;
import io.github.resilience4j.timelimiter.TimeLimiterConfig;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;

import dev.specula.engine.BatchQueueFullException;
import dev.specula.engine.Engine;
import dev.specula.engine.EngineLoad;
import dev.specula.engine.FallbackReason;
import dev.specula.engine.FinishReason;
import dev.specula.engine.GenerationException;
import dev.specula.engine.GenerationRequest;
import dev.specula.engine.GenerationResult;
import dev.specula.engine.KvCapacityExceededException;
import dev.specula.engine.KvMemory;
import dev.specula.engine.KvWaitTimeoutException;
import dev.specula.engine.ModelPair;
import dev.specula.grammar.GrammarCache;
import dev.specula.grammar.TokenVocabulary;
import dev.specula.kv.KvStore;
import dev.specula.model.DecoderModel;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.PolicyParameters;
import dev.specula.policy.PolicyResources;
import dev.specula.policy.PolicySpec;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.ProposerKind;
import dev.specula.request.InvalidRequestException;

/**
 * The thread-safe front door of the engine for applications: every request passes
 *
 * <pre>
 * response cache      deterministic requests answered before (replayed, to a stream in the chunks they were
 *                     generated in); never for a listener that wants tokens (it needs a decoding)
 * bulkhead            at most N generations at once; beyond it ServiceBusyException
 * goodput switch      speculation off while it decodes slower than plain (GoodputMonitor)
 * KV bound            the request's worst-case KV reserved within specula.kv.max-bytes: it waits in line up to
 *                     max-wait (then ServiceBusyException), or is refused at once when it could never fit
 *                     (KvCapacityExceededException)
 * circuit breaker     speculation off after repeated draft failures
 * engine              batched (Engine.submit) or a batch of one (Engine.generate): the same step, with a time
 *                     limit on each round's draft phase
 *   └ on draft error or time-out: drafting is switched off in place, the request goes on plainly
 * metrics             counters per policy, fallbacks by reason
 * </pre>
 *
 * A fallback never changes what the request returns: the tokens committed before it are
 * exactly the target's, and plain steps continue from them in the same sequence; streamed
 * text is never sent twice. Each result says which policy was asked for, which ran, and
 * why they differ ({@link ServiceResult}).
 */
public final class GenerationService implements AutoCloseable {

    /**
     * Name of the Resilience4j instances (circuit breaker, time limiter, bulkhead) the
     * service uses.
     */
    public static final String RESILIENCE_NAME = "specula";

    /** Name of the goodput switch's circuit breaker. */
    public static final String GOODPUT_NAME = "specula-goodput";

    /**
     * Prompt-prefix KV kept for reuse across requests, when the builder sets nothing: 64
     * MiB.
     */
    public static final long DEFAULT_PREFIX_CACHE_BYTES = 64L << 20;

    /** Longest a speculative round may run, when the builder sets nothing. */
    public static final Duration DEFAULT_ROUND_TIME_LIMIT = Engine.Settings.DEFAULT_DRAFT_TIME_LIMIT;

    /**
     * Compiled grammars kept: each holds its mask cache (at most 16 MiB), so 16 of them
     * hold at most 256 MiB outside the KV budget.
     */
    private static final int GRAMMAR_CACHE_ENTRIES = 16;

    private final ModelPairHandle models;

    private final String modelsId;

    private final PolicySettings policySettings;

    private final ResponseCacheSettings responseCacheSettings;

    private final BatchingSettings batching;

    private final KvSettings kv;

    /**
     * What the policies of this service share (ldlp sessions, goodput estimates); created
     * and closed here.
     */
    private final PolicyResources policyResources = new PolicyResources();

    private final CircuitBreaker draftBreaker;

    private final TimeLimiter timeLimiter;

    private final Bulkhead bulkhead;

    private final GoodputMonitor goodput;

    private final ResponseCache cache;

    private final ServingMetrics metrics;

    private final Map<String, Supplier<SpeculationPolicy>> policies = new ConcurrentHashMap<>();

    /**
     * Grammars compiled for the target's vocabulary, by their key; made on the first
     * constrained request (reading the vocabulary's token bytes once).
     */
    private volatile GrammarCache grammars;

    /**
     * The engine over the loaded pair, made on first use (models may load in the
     * background); guarded by this.
     */
    private Engine engine;

    private final dev.specula.kv.PrefixCache prefixCache;

    private GenerationService(Builder builder) {
        this.models = builder.models;
        this.modelsId = builder.modelsId;
        this.policySettings = builder.policy;
        this.responseCacheSettings = builder.responseCache;
        this.batching = builder.batching;
        this.kv = builder.kv;
        int maxConcurrentGenerations = builder.concurrency.resolve(batching);
        try {
            // the default policy is created once now, so a bad option fails here and not
            // on the first request
            if (models.state() == ModelPairHandle.State.READY) {
                policyFactory(policySettings.name(), null);
            }
            else {
                SpeculationPolicies.requireKnown(policySettings.name());
            }
        }
        catch (RuntimeException ex) {
            policyResources.close();
            throw ex;
        }
        this.draftBreaker = builder.draftBreaker != null ? builder.draftBreaker
                : CircuitBreaker.of(RESILIENCE_NAME, builder.draftBreakerSettings.toConfig());
        this.timeLimiter = builder.timeLimiter != null ? builder.timeLimiter : TimeLimiter.of(RESILIENCE_NAME,
                TimeLimiterConfig.custom().timeoutDuration(builder.roundTimeLimit).build());
        this.bulkhead = builder.bulkhead != null ? builder.bulkhead
                : Bulkhead.of(RESILIENCE_NAME,
                        BulkheadConfig.custom()
                            .maxConcurrentCalls(maxConcurrentGenerations)
                            .maxWaitDuration(builder.concurrency.maxWaitForSlot())
                            .build());
        GoodputSettings goodputSettings = builder.goodput;
        CircuitBreaker goodputBreaker = builder.goodputBreaker != null ? builder.goodputBreaker
                : CircuitBreaker.of(GOODPUT_NAME, goodputSettings.breaker().toConfig());
        this.goodput = goodputSettings.enabled()
                ? new GoodputMonitor(goodputBreaker, goodputSettings.probeInterval(), goodputSettings.minTokens())
                : null;
        MeterRegistry registry = builder.meterRegistry != null ? builder.meterRegistry : new SimpleMeterRegistry();
        this.cache = responseCacheSettings.active()
                ? new ResponseCache(responseCacheSettings.maximumSize(), responseCacheSettings.timeToLive(), registry)
                : null;
        this.metrics = new ServingMetrics(registry);
        long prefixCacheBytes = builder.prefixCacheBytes;
        this.prefixCache = prefixCacheBytes > 0 ? ServingMetrics.monitorPrefixCache(registry,
                (listener) -> new dev.specula.kv.PrefixCache(prefixCacheBytes, listener)) : null;
        ServingMetrics.monitorKv(registry, this);
        ServingMetrics.monitorLoad(registry, this);
    }

    public static Builder builder(ModelPairHandle models) {
        return new Builder(models);
    }

    /**
     * Generates the answer to one request on the caller's thread.
     * @throws ServiceBusyException when every generation slot is taken
     * @throws ModelsNotReadyException while the models load, or when they failed to
     * @throws InvalidRequestException for an unknown policy or a bad γ or option of the
     * request, naming it
     * @throws KvCapacityExceededException when the request's worst-case KV exceeds
     * {@code specula.kv.max-bytes} (before any work)
     * @throws ServiceBusyException also when the request waited longer than
     * {@code specula.kv.max-wait} for KV memory
     */
    public ServiceResult generate(ServiceRequest request) {
        ModelPair pair = models.get();
        // without a draft the default proposer is prompt lookup: a request speculates
        // whenever it asks to
        boolean speculate = request.speculation();
        ProposerKind proposer = speculate ? proposerOf(request, pair) : null;
        String policySpec = request.policy() != null ? request.policy() : policySettings.name();
        String requested = request.speculation() ? PolicySpec.nameOf(policySpec) : PlainPolicy.NAME;
        Supplier<SpeculationPolicy> policy = speculate ? policyFactory(policySpec, request.gamma()) : PlainPolicy::new;
        if (speculate && PlainPolicy.NAME.equals(policy.get().name())) {
            speculate = false;
            requested = PlainPolicy.NAME;
        }
        // sampled output depends on what proposed (the random draws differ), greedy
        // output
        // does not. A listener that wants to hear how each token was made needs a
        // decoding: a replay has none to tell
        boolean tracesTokens = request.listener() != null && request.listener().wantsTokens();
        Optional<ResponseCache.Key> key = cache == null
                || tracesTokens
                        ? Optional.empty()
                        : ResponseCache
                            .keyOf(modelsId, request,
                                    speculate
                                            ? policySpec + "/" + request.gamma() + "/" + proposer + "/"
                                                    + java.util.Arrays.hashCode(request.prediction())
                                            : PlainPolicy.NAME);
        if (key.isPresent()) {
            Optional<ResponseCache.Entry> hit = cache.get(key.get());
            if (hit.isPresent()) {
                if (request.listener() != null) {
                    hit.get().replay(request.listener());
                }
                return new ServiceResult(hit.get().replayed(), requested, ServiceResult.CACHE,
                        Optional.of(ServiceResult.Reason.CACHE));
            }
        }
        if (!bulkhead.tryAcquirePermission()) {
            metrics.recordRejected();
            throw new ServiceBusyException(bulkhead.getBulkheadConfig().getMaxConcurrentCalls());
        }
        try {
            // a cacheable answer keeps the chunks it streams in (also when nobody
            // listens),
            // so that a replay streams as this run does
            ResponseCache.ChunkRecorder chunks = key.isPresent() ? new ResponseCache.ChunkRecorder(request.listener())
                    : null;
            ServiceRequest running = (chunks == null ? request : request.with(chunks, request.cancellation()))
                .withProposer(proposer);
            Engine engine = engine(pair);
            Runner decoder = batching.enabled() ? (generation) -> await(engine, generation)
                    : (generation) -> generateAlone(engine, generation);
            ServiceResult result;
            if (speculate) {
                result = serveSpeculatively(decoder, running, policy, requested);
            }
            else {
                result = servePlainly(decoder, running, requested, Optional.empty());
            }
            metrics.recordGeneration(result.generation());
            if (chunks != null && result.generation().finishReason() != FinishReason.CANCELLED) {
                cache.put(key.get(),
                        new ResponseCache.Entry(result.generation(), chunks.ends(), request.promptLogprobs() >= 0));
            }
            return result;
        }
        finally {
            bulkhead.onComplete();
        }
    }

    private ServiceResult servePlainly(Runner decoder, ServiceRequest request, String requested,
            Optional<ServiceResult.Reason> reason) {
        GenerationResult result = decoder.run(plainRequest(request));
        if (goodput != null) {
            goodput.recordPlain(result.stats());
        }
        return new ServiceResult(result, requested, result.policy(), reason);
    }

    /**
     * A speculative attempt. The engine handles draft failures and time-outs itself:
     * drafting is switched off in place, the request goes on plainly, and the result says
     * why ({@link GenerationResult#fallback()}).
     */
    private ServiceResult serveSpeculatively(Runner decoder, ServiceRequest request, Supplier<SpeculationPolicy> policy,
            String requested) {
        Optional<ServiceResult> refused = refuseSpeculation(decoder, request, requested);
        if (refused.isPresent()) {
            return refused.get();
        }
        long start = System.nanoTime();
        GenerationResult result;
        try {
            result = decoder.run(engineRequest(request, policy));
        }
        catch (RuntimeException ex) {
            draftBreaker.releasePermission();
            releaseGoodput();
            throw ex;
        }
        long nanos = System.nanoTime() - start;
        FallbackReason reason = result.fallback();
        if (reason == null) {
            return succeeded(result, nanos, requested);
        }
        Exception error;
        if (reason == FallbackReason.DRAFT_TIMEOUT) {
            error = new TimeoutException("A round's drafts ran longer than " + draftTimeLimit());
            timeLimiter.onError(error);
        }
        else {
            error = new IllegalStateException("The draft model failed");
        }
        draftBreaker.onError(nanos, TimeUnit.NANOSECONDS, error);
        releaseGoodput();
        metrics.recordFallback(reason);
        return new ServiceResult(result, requested, result.policy(), Optional.of(ServiceResult.Reason.of(reason)));
    }

    /**
     * The gates before a speculative attempt: a due plain probe, the goodput switch, the
     * circuit breaker. Empty when speculation may run (holding a permission of each
     * breaker); else the request served plainly.
     */
    private Optional<ServiceResult> refuseSpeculation(Runner decoder, ServiceRequest request, String requested) {
        if (goodput != null && goodput.takeProbe()) {
            metrics.recordProbe();
            return Optional.of(servePlainly(decoder, request, requested, Optional.of(ServiceResult.Reason.PROBE)));
        }
        if (goodput != null && !goodput.tryAcquire()) {
            return Optional.of(fallBack(decoder, request, FallbackReason.GOODPUT, requested));
        }
        if (!draftBreaker.tryAcquirePermission()) {
            releaseGoodput();
            return Optional.of(fallBack(decoder, request, FallbackReason.BREAKER_OPEN, requested));
        }
        return Optional.empty();
    }

    /**
     * A speculative attempt that ran to its end: both breakers and the time limiter hear
     * of it.
     */
    private ServiceResult succeeded(GenerationResult result, long nanos, String requested) {
        timeLimiter.onSuccess();
        draftBreaker.onSuccess(nanos, TimeUnit.NANOSECONDS);
        if (goodput != null) {
            if (result.finishReason() == FinishReason.CANCELLED) {
                goodput.release();
            }
            else {
                goodput.recordSpeculative(result.stats());
            }
        }
        return new ServiceResult(result, requested, result.policy(), Optional.empty());
    }

    /** Runs one engine request: on the caller's thread, or in the batch. */
    @FunctionalInterface
    private interface Runner {

        GenerationResult run(GenerationRequest request);

    }

    /**
     * The engine over the loaded pair, made on first use: models may load in the
     * background.
     */
    private synchronized Engine engine(ModelPair pair) {
        if (engine == null) {
            engine = new Engine(pair, new Engine.Settings(batching.maxBatchSize(), batching.queueCapacity(),
                    batching.maxWait(), draftTimeLimit(), kv.resolvedMaxBytes(), kv.maxWait()), prefixCache);
        }
        return engine;
    }

    private Duration draftTimeLimit() {
        return timeLimiter.getTimeLimiterConfig().getTimeoutDuration();
    }

    private static GenerationResult await(Engine engine, GenerationRequest request) {
        try {
            return engine.submit(request).join();
        }
        catch (BatchQueueFullException ex) {
            throw new ServiceBusyException(ex.getMessage());
        }
        catch (CompletionException ex) {
            if (ex.getCause() instanceof KvWaitTimeoutException busy) {
                throw new ServiceBusyException(busy.getMessage());
            }
            if (ex.getCause() instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw new GenerationException("Batched generation failed: " + ex.getCause(), ex.getCause());
        }
    }

    /**
     * A request on the caller's thread: a KV wait that timed out is busy, as in the
     * batch.
     */
    private static GenerationResult generateAlone(Engine engine, GenerationRequest request) {
        try {
            return engine.generate(request);
        }
        catch (KvWaitTimeoutException ex) {
            throw new ServiceBusyException(ex.getMessage());
        }
    }

    /** Plain decoding of a request the gates kept from speculating. */
    private ServiceResult fallBack(Runner decoder, ServiceRequest request, FallbackReason reason, String requested) {
        metrics.recordFallback(reason);
        if (request.cancellation() != null && request.cancellation().isCancelled()) {
            throw new CancellationException("The request was cancelled");
        }
        GenerationResult result = decoder.run(plainRequest(request));
        if (goodput != null) {
            goodput.recordPlain(result.stats());
        }
        return new ServiceResult(result, requested, result.policy(), Optional.of(ServiceResult.Reason.of(reason)));
    }

    private void releaseGoodput() {
        if (goodput != null) {
            goodput.release();
        }
    }

    /**
     * The proposer a speculative request runs: its own, the configured default
     * ({@code specula.policy.proposer}), or the engine's default for the models.
     * @throws InvalidRequestException naming {@code speculation.proposer} when the
     * request asks for the draft model or the feature head and none is loaded
     * @throws IllegalStateException when the configured default needs a draft model or a
     * feature head and none is loaded (the server's fault, not the caller's)
     */
    private ProposerKind proposerOf(ServiceRequest request, ModelPair pair) {
        boolean hasDraft = pair.draft().isPresent();
        boolean hasHead = pair.head().isPresent();
        boolean hasPrediction = request.prediction() != null;
        if (request.proposer() != null || hasPrediction) {
            return ProposerKind.resolve(request.proposer(), hasDraft, hasHead, hasPrediction, "speculation.proposer",
                    "prediction");
        }
        ProposerKind configured = policySettings.proposer();
        if (configured != null && configured.usesModel() && !hasDraft) {
            throw new IllegalStateException("specula.policy.proposer is '" + configured.id()
                    + "', which needs a draft model, and none is loaded: set specula.draft.location or set "
                    + "specula.policy.proposer to ngram");
        }
        if (configured != null && configured.usesHead() && !hasHead) {
            throw new IllegalStateException("specula.policy.proposer is '" + configured.id()
                    + "', which needs a GRIFFIN feature head, and none is loaded: set specula.griffin.location or "
                    + "choose another specula.policy.proposer");
        }
        return ProposerKind.resolve(configured, hasDraft, hasHead, "speculation.proposer");
    }

    /**
     * The engine's request, speculating under {@code policy} with the request's proposer.
     */
    private GenerationRequest engineRequest(ServiceRequest request, Supplier<? extends SpeculationPolicy> policy) {
        ProposerKind proposer = request.proposer();
        return requestBuilder(request).policy(policy)
            .proposer(proposer)
            .tree(proposer != null && proposer.usesDrafter() ? policySettings.tree() : null)
            .prediction(request.prediction())
            .promptLookup(policySettings.promptLookup())
            .build();
    }

    /**
     * The engine's request served plainly (a probe, a fallback): nothing is proposed, so
     * it carries no proposer and no prediction, and the result says why.
     */
    private GenerationRequest plainRequest(ServiceRequest request) {
        return requestBuilder(request).policy(PlainPolicy::new).build();
    }

    private GenerationRequest.Builder requestBuilder(ServiceRequest request) {
        return GenerationRequest.builder(request.promptIds())
            .grammar(request.grammar() == null ? null : grammars().get(request.grammar()))
            .sampling(request.sampling())
            .maxNewTokens(request.maxNewTokens())
            .stopStrings(request.stopStrings())
            .listener(request.listener())
            .cancellation(request.cancellation())
            .penalties(request.penalties())
            .logprobs(request.logprobs())
            .promptLogprobs(request.promptLogprobs());
    }

    private GrammarCache grammars() {
        GrammarCache cache = grammars;
        if (cache == null) {
            synchronized (this) {
                cache = grammars;
                if (cache == null) {
                    DecoderModel target = models.get().target();
                    int[] endIds = target.config().eosTokenIds().stream().mapToInt(Integer::intValue).toArray();
                    cache = new GrammarCache(TokenVocabulary.read(target.tokenizer().file()), endIds,
                            GRAMMAR_CACHE_ENTRIES);
                    grammars = cache;
                }
            }
        }
        return cache;
    }

    /** A policy factory for {@code spec}, validated once and kept. */
    private Supplier<SpeculationPolicy> policyFactory(String spec, Integer gamma) {
        String key = spec + "/" + gamma;
        Supplier<SpeculationPolicy> factory = policies.get(key);
        if (factory == null) {
            PolicyParameters defaults = policySettings.parameters().withResources(policyResources);
            PolicyParameters parameters = (gamma == null ? defaults : defaults.withGamma(gamma))
                .withModelDirectory(models.get().target().files().directory());
            try {
                factory = SpeculationPolicies.factory(spec, parameters);
            }
            catch (IllegalArgumentException ex) {
                if (spec.equals(policySettings.name()) && gamma == null) {
                    throw ex; // the service's own setting: not the caller's mistake
                }
                throw new InvalidRequestException(gamma != null && spec.indexOf(':') < 0 ? "gamma" : "policy", null,
                        ex.getMessage(), ex);
            }
            if (policies.size() < 256) {
                policies.put(key, factory);
            }
        }
        return factory;
    }

    /**
     * The live figures: totals per policy, breaker states, cache, goodput measurements.
     */
    public ServiceSnapshot snapshot() {
        return new ServiceSnapshot(models.state(), metrics.totalsByPolicy(), draftBreaker.getState(),
                goodput == null ? Optional.empty() : Optional.of(goodput.breaker().getState()),
                goodput == null ? Double.NaN : goodput.plainTokensPerSecond(),
                goodput == null ? Double.NaN : goodput.speculativeTokensPerSecond(),
                goodput == null ? 0 : goodput.probes(), fallbackCounts(),
                bulkhead.getMetrics().getAvailableConcurrentCalls(),
                bulkhead.getBulkheadConfig().getMaxConcurrentCalls(), cache == null ? 0 : cache.size(),
                cache == null ? 0 : cache.stats().hitCount(), cache == null ? 0 : cache.stats().missCount());
    }

    private Map<String, Long> fallbackCounts() {
        Map<String, Long> counts = new java.util.LinkedHashMap<>();
        for (FallbackReason reason : FallbackReason.values()) {
            counts.put(reason.tag(), metrics.fallbacks(reason));
        }
        return counts;
    }

    public ModelPairHandle models() {
        return models;
    }

    /** Identifies the model pair (part of every cache key). */
    public String modelsId() {
        return modelsId;
    }

    /** The policy of requests that name none. */
    public PolicySettings policySettings() {
        return policySettings;
    }

    public ResponseCacheSettings responseCacheSettings() {
        return responseCacheSettings;
    }

    public BatchingSettings batchingSettings() {
        return batching;
    }

    /** The bound on KV memory, as configured. */
    public KvSettings kvSettings() {
        return kv;
    }

    /**
     * The KV memory now: cap, reserved by running requests, held by the prefix cache;
     * empty until the first request starts the engine.
     */
    public Optional<KvMemory> kvMemory() {
        synchronized (this) {
            return engine == null ? Optional.empty() : Optional.of(engine.kvMemory());
        }
    }

    /**
     * How busy the engine is now: requests queued for the batch, sequences decoding,
     * batched steps taken; {@link EngineLoad#IDLE} until the first request starts the
     * engine.
     */
    public EngineLoad load() {
        synchronized (this) {
            return engine == null ? EngineLoad.IDLE : engine.load();
        }
    }

    /** Longest a speculative round may run before the request goes on plainly. */
    public Duration roundTimeLimit() {
        return draftTimeLimit();
    }

    public CircuitBreaker draftBreaker() {
        return draftBreaker;
    }

    public Optional<CircuitBreaker> goodputBreaker() {
        return goodput == null ? Optional.empty() : Optional.of(goodput.breaker());
    }

    public Bulkhead bulkhead() {
        return bulkhead;
    }

    /** Empties the response cache. */
    public void clearCache() {
        if (cache != null) {
            cache.clear();
        }
    }

    /**
     * The batch layout requests are stepped in (empty until the first batched request
     * starts the engine thread).
     */
    public Optional<KvStore.Layout> batchLayout() {
        synchronized (this) {
            return engine == null ? Optional.empty() : engine.layout();
        }
    }

    /**
     * Whether the engine can serve: false once an {@link Error} killed its thread (every
     * request then fails).
     */
    public boolean isEngineAlive() {
        synchronized (this) {
            return engine == null || engine.isAlive();
        }
    }

    /** What killed the engine thread, if something did. */
    public Optional<Throwable> engineFailure() {
        synchronized (this) {
            return engine == null ? Optional.empty() : engine.failure();
        }
    }

    /**
     * Stops the engine (pending requests fail) and releases what the service created
     * (prefix cache, policy resources). The models are not closed: whoever created the
     * {@link ModelPairHandle} closes it, after this.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (engine != null) {
                engine.close();
            }
        }
        if (prefixCache != null) {
            prefixCache.clear();
        }
        policyResources.close();
    }

    /**
     * Builds a service; each setting has a documented default (see its record), and
     * Resilience4j instances given here win over the settings of the same concern (draft
     * breaker, goodput breaker, round time limit, bulkhead).
     */
    public static final class Builder {

        private final ModelPairHandle models;

        private String modelsId = "models";

        private PolicySettings policy = PolicySettings.defaults();

        private ResponseCacheSettings responseCache = ResponseCacheSettings.defaults();

        private ConcurrencySettings concurrency = ConcurrencySettings.defaults();

        private GoodputSettings goodput = GoodputSettings.defaults();

        private BatchingSettings batching = BatchingSettings.defaults();

        private KvSettings kv = KvSettings.defaults();

        private CircuitBreakerSettings draftBreakerSettings = CircuitBreakerSettings.DRAFT_DEFAULTS;

        private long prefixCacheBytes = DEFAULT_PREFIX_CACHE_BYTES;

        private Duration roundTimeLimit = DEFAULT_ROUND_TIME_LIMIT;

        private CircuitBreaker draftBreaker;

        private CircuitBreaker goodputBreaker;

        private TimeLimiter timeLimiter;

        private Bulkhead bulkhead;

        private MeterRegistry meterRegistry;

        private Builder(ModelPairHandle models) {
            if (models == null) {
                throw new IllegalArgumentException("models must not be null");
            }
            this.models = models;
        }

        /** Identifies the model pair in cache keys (e.g. the two model locations). */
        public Builder modelsId(String modelsId) {
            this.modelsId = modelsId;
            return this;
        }

        /**
         * Policy of requests that name none; default {@link PolicySettings#defaults()}.
         */
        public Builder policy(PolicySettings policy) {
            this.policy = requireNonNull(policy, "policy");
            return this;
        }

        /** Default {@link ResponseCacheSettings#defaults()}. */
        public Builder responseCache(ResponseCacheSettings responseCache) {
            this.responseCache = requireNonNull(responseCache, "responseCache");
            return this;
        }

        /**
         * Default {@link ConcurrencySettings#defaults()} (derived from the batching
         * settings).
         */
        public Builder concurrency(ConcurrencySettings concurrency) {
            this.concurrency = requireNonNull(concurrency, "concurrency");
            return this;
        }

        /**
         * Default {@link GoodputSettings#defaults()}; a
         * {@link #goodputBreaker(CircuitBreaker)} wins over its breaker.
         */
        public Builder goodput(GoodputSettings goodput) {
            this.goodput = requireNonNull(goodput, "goodput");
            return this;
        }

        /**
         * Default {@link BatchingSettings#defaults()} (on);
         * {@link BatchingSettings#disabled()} turns it off.
         */
        public Builder batching(BatchingSettings batching) {
            this.batching = requireNonNull(batching, "batching");
            return this;
        }

        /** Default {@link KvSettings#defaults()} (a cap derived from the machine). */
        public Builder kv(KvSettings kv) {
            this.kv = requireNonNull(kv, "kv");
            return this;
        }

        /**
         * Default {@link CircuitBreakerSettings#DRAFT_DEFAULTS}; a
         * {@link #draftBreaker(CircuitBreaker)} wins.
         */
        public Builder draftBreakerSettings(CircuitBreakerSettings draftBreakerSettings) {
            this.draftBreakerSettings = requireNonNull(draftBreakerSettings, "draftBreakerSettings");
            return this;
        }

        /**
         * Bytes of prompt-prefix KV kept for reuse; 0 = no prefix cache. Default
         * {@link GenerationService#DEFAULT_PREFIX_CACHE_BYTES}.
         */
        public Builder prefixCacheBytes(long prefixCacheBytes) {
            if (prefixCacheBytes < 0) {
                throw new IllegalArgumentException("prefixCacheBytes must be >= 0 but was " + prefixCacheBytes);
            }
            this.prefixCacheBytes = prefixCacheBytes;
            return this;
        }

        /**
         * Longest a speculative round may run before speculation stops and the request
         * goes on plainly; default {@link GenerationService#DEFAULT_ROUND_TIME_LIMIT}. A
         * {@link #timeLimiter(TimeLimiter)} wins.
         */
        public Builder roundTimeLimit(Duration roundTimeLimit) {
            if (roundTimeLimit == null || roundTimeLimit.isNegative() || roundTimeLimit.isZero()) {
                throw new IllegalArgumentException("roundTimeLimit must be > 0 but was " + roundTimeLimit);
            }
            this.roundTimeLimit = roundTimeLimit;
            return this;
        }

        private static <T> T requireNonNull(T value, String name) {
            if (value == null) {
                throw new IllegalArgumentException(name + " must not be null");
            }
            return value;
        }

        /**
         * Opens after repeated draft failures or time-outs; speculation is skipped while
         * it is open.
         */
        public Builder draftBreaker(CircuitBreaker draftBreaker) {
            this.draftBreaker = draftBreaker;
            return this;
        }

        /** Opens while speculation decodes slower than plain decoding. */
        public Builder goodputBreaker(CircuitBreaker goodputBreaker) {
            this.goodputBreaker = goodputBreaker;
            return this;
        }

        /** Its timeout is the time limit of one speculative round. */
        public Builder timeLimiter(TimeLimiter timeLimiter) {
            this.timeLimiter = timeLimiter;
            return this;
        }

        public Builder bulkhead(Bulkhead bulkhead) {
            this.bulkhead = bulkhead;
            return this;
        }

        public Builder meterRegistry(MeterRegistry meterRegistry) {
            this.meterRegistry = meterRegistry;
            return this;
        }

        public GenerationService build() {
            return new GenerationService(this);
        }

    }

}
