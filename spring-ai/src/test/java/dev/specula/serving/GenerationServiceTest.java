package dev.specula.serving;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.engine.Engine;
import dev.specula.engine.FallbackReason;
import dev.specula.engine.GenerationRequest;
import dev.specula.engine.ModelPair;
import dev.specula.engine.TokenStreamListener;
import dev.specula.kv.KvStore;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;
import dev.specula.policy.PlainPolicy;
import dev.specula.proposer.ProposerKind;
import dev.specula.request.InvalidRequestException;
import dev.specula.sampling.SamplingParams;
import dev.specula.sampling.TokenLogprob;
import dev.specula.sampling.TokenPenalties;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The service around the engine, on the embedded pair (real target; for fallbacks a real
 * draft wrapped in a test double that fails): fallback to plain decoding, the round time
 * limit, the goodput switch, the response cache and the bulkhead.
 */
class GenerationServiceTest {

    /**
     * The draft time limit of tests whose draft hangs: long enough that no healthy draft
     * phase reaches it on a loaded 2-core machine, short against the hang.
     */
    private static final Duration HANG_LIMIT = Duration.ofSeconds(2);

    private static final List<String> PROMPTS = List.of("def read_config(path):\n    ",
            "class Stack:\n    def push(self, item):\n        ", "import os\n\ndef list_files(directory):\n    ",
            "def fibonacci(n):\n    ", "for line in open(name):\n    ", "def __init__(self, name, value):\n        ",
            "try:\n    import json\nexcept ImportError:\n    ", "def is_prime(n):\n    ",
            "    return sorted(items, key=", "def main(argv):\n    parser = ");

    private static TinyModels.Pair paths;

    private static DecoderModel target;

    private static Engine plainDecoder;

    @BeforeAll
    static void loadTarget() {
        paths = Fixtures.embeddedPair();
        target = DecoderModel.load(paths.target(), RuntimeOptions.defaults());
        plainDecoder = new Engine(new ModelPair(target, null), Engine.Settings.defaults());
    }

    @AfterAll
    static void close() {
        plainDecoder.close();
        target.close();
    }

    private static int[] prompt(int index) {
        return target.tokenizer().encode(PROMPTS.get(index), true);
    }

    private static String plainText(int index, int maxTokens) {
        return plainDecoder
            .generate(GenerationRequest.builder(prompt(index)).maxNewTokens(maxTokens).policy(PlainPolicy::new).build())
            .text();
    }

    private static ServiceRequest greedy(int index, int maxTokens, StringBuilder stream) {
        return new ServiceRequest(prompt(index), SamplingParams.GREEDY, maxTokens, List.of(), "fixed:5", null, true,
                stream == null ? null : stream::append, null);
    }

    private static FaultyDraft draft(FaultyDraft.Fault fault, int healthyCalls, long slowMillis) {
        return new FaultyDraft(DecoderModel.load(paths.draft(), RuntimeOptions.defaults()), fault, healthyCalls,
                slowMillis);
    }

    /**
     * A service over the shared target and {@code draft}, unbatched and without prefix
     * cache unless {@code settings} say otherwise; closing it closes neither model (the
     * test closes its draft, the class the target).
     */
    private static GenerationService service(FaultyDraft draft, Consumer<GenerationService.Builder> settings,
            SimpleMeterRegistry registry, CircuitBreaker draftBreaker, CircuitBreaker goodputBreaker) {
        GenerationService.Builder builder = GenerationService
            .builder(ModelPairHandle.ready(new ModelPair(target, draft)))
            .batching(BatchingSettings.disabled())
            .prefixCacheBytes(0)
            .meterRegistry(registry);
        settings.accept(builder);
        if (draftBreaker != null) {
            builder.draftBreaker(draftBreaker);
        }
        if (goodputBreaker != null) {
            builder.goodputBreaker(goodputBreaker);
        }
        return builder.build();
    }

    private static Consumer<GenerationService.Builder> noCacheNoGoodput() {
        return (builder) -> builder.responseCache(ResponseCacheSettings.disabled()).goodput(GoodputSettings.disabled());
    }

    private static double fallbacks(SimpleMeterRegistry registry, String reason) {
        return registry.get("specula.fallbacks").tag("reason", reason).counter().count();
    }

    @Test
    void aDraftThatThrowsIsReplacedByPlainDecodingAndOpensTheBreaker() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        CircuitBreaker breaker = CircuitBreaker.of("specula",
                CircuitBreakerConfig.custom()
                    .slidingWindowSize(4)
                    .minimumNumberOfCalls(2)
                    .failureRateThreshold(50)
                    .waitDurationInOpenState(Duration.ofMinutes(5))
                    .build());
        FaultyDraft draft = draft(FaultyDraft.Fault.THROW, 7, 0);
        GenerationService service = service(draft, noCacheNoGoodput(), registry, breaker, null);

        List<ServiceResult> results = new ArrayList<>();
        List<String> streamed = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            StringBuilder stream = new StringBuilder();
            results.add(service.generate(greedy(i, 40, stream)));
            streamed.add(stream.toString());
        }

        for (int i = 0; i < 3; i++) {
            // the same output plain decoding gives, and the stream never repeats text the
            // failed attempt had sent
            assertThat(results.get(i).generation().text()).isEqualTo(plainText(i, 40));
            assertThat(streamed.get(i)).isEqualTo(results.get(i).generation().text());
        }
        // the first request failed after its first round: drafting was switched off,
        // plain steps went on in place
        assertThat(results.get(0).fallback()).contains(FallbackReason.DRAFT_ERROR);
        assertThat(results.get(0).generation().stats().drafted()).isPositive();
        assertThat(results.get(0).generation().stats().rounds()).isGreaterThan(1);
        assertThat(results.get(1).fallback()).contains(FallbackReason.DRAFT_ERROR);
        assertThat(breaker.getState()).isEqualTo(CircuitBreaker.State.OPEN);
        assertThat(results.get(2).fallback()).contains(FallbackReason.BREAKER_OPEN);
        assertThat(fallbacks(registry, "draft-error")).isEqualTo(2);
        assertThat(fallbacks(registry, "breaker-open")).isEqualTo(1);
        int callsWhenOpen = draft.calls();
        service.generate(greedy(3, 10, null));
        assertThat(draft.calls()).as("an open breaker keeps the draft out").isEqualTo(callsWhenOpen);
        service.close();
        draft.close();
    }

    @Test
    void aHungDraftIsStoppedByTheRoundTimeLimitAndPlainDecodingFinishes() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        FaultyDraft draft = draft(FaultyDraft.Fault.HANG, 12, 0);
        GenerationService service = service(draft,
                noCacheNoGoodput().andThen((builder) -> builder.roundTimeLimit(HANG_LIMIT)), registry, null, null);
        StringBuilder stream = new StringBuilder();

        ServiceResult result = service.generate(greedy(4, 48, stream));

        assertThat(result.fallback()).contains(FallbackReason.DRAFT_TIMEOUT);
        assertThat(draft.interruptions()).isEqualTo(1);
        assertThat(result.generation().text()).isEqualTo(plainText(4, 48));
        assertThat(stream.toString()).isEqualTo(result.generation().text());
        assertThat(fallbacks(registry, "timeout")).isEqualTo(1);
        assertThat(Thread.currentThread().isInterrupted()).as("the watchdog's interrupt does not leak").isFalse();
        service.close();
        draft.close();
    }

    @Test
    void speculationSlowerThanPlainDecodingIsSwitchedOff() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        // every draft step sleeps 8 ms: a round of 5 drafts costs more than the ~4 tokens
        // it wins
        FaultyDraft draft = draft(FaultyDraft.Fault.SLOW, 0, 8);
        CircuitBreaker goodputBreaker = CircuitBreaker.of("specula-goodput",
                CircuitBreakerConfig.custom()
                    .slidingWindowSize(3)
                    .minimumNumberOfCalls(3)
                    .failureRateThreshold(50)
                    .waitDurationInOpenState(Duration.ofMinutes(5))
                    .build());
        GenerationService service = service(draft,
                noCacheNoGoodput()
                    .andThen((builder) -> builder.goodput(GoodputSettings.builder().minTokens(4).build())),
                registry, null, goodputBreaker);

        List<ServiceResult> results = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            results.add(service.generate(greedy(i, 24, null)));
        }

        // 2 speculative requests, then a plain probe measures plain decoding, then 3
        // slower speculative ones open it
        assertThat(results.get(2).generation().policy()).isEqualTo("plain");
        assertThat(registry.get("specula.goodput.probes").counter().count()).isEqualTo(1);
        assertThat(goodputBreaker.getState()).isEqualTo(CircuitBreaker.State.OPEN);
        assertThat(results.get(6).fallback()).contains(FallbackReason.GOODPUT);
        assertThat(results.get(6).generation().text()).isEqualTo(plainText(6, 24));
        assertThat(fallbacks(registry, "goodput")).isEqualTo(1);
        ServiceSnapshot snapshot = service.snapshot();
        assertThat(snapshot.speculativeTokensPerSecond()).isLessThan(snapshot.plainTokensPerSecond());
        assertThat(snapshot.goodputState()).contains(CircuitBreaker.State.OPEN);
        service.close();
        draft.close();
    }

    @Test
    void theCacheKeepsApartAnswersThatTheOptionsChange() {
        FaultyDraft draft = draft(FaultyDraft.Fault.THROW, Integer.MAX_VALUE, 0);
        GenerationService service = service(draft, (builder) -> builder.goodput(GoodputSettings.disabled()),
                new SimpleMeterRegistry(), null, null);
        ServiceResult plain = service.generate(options(-1, -1, TokenPenalties.NONE, null));
        assertThat(service.generate(options(-1, -1, TokenPenalties.NONE, null)).cached()).isTrue();

        ServiceResult withLogprobs = service.generate(options(2, -1, TokenPenalties.NONE, null));
        assertThat(withLogprobs.cached()).isFalse();
        assertThat(withLogprobs.generation().logprobs()).hasSize(withLogprobs.generation().tokenIds().length);

        ServiceResult scored = service.generate(options(-1, 1, TokenPenalties.NONE, null));
        assertThat(scored.cached()).isFalse();
        assertThat(scored.generation().promptLogprobs()).hasSize(prompt(5).length - 1);
        // a replay tells a listener the prompt's log-probabilities, as the decoding did
        List<List<TokenLogprob>> heard = new ArrayList<>();
        TokenStreamListener listener = new TokenStreamListener() {
            @Override
            public void onText(String text) {
            }

            @Override
            public void onPromptLogprobs(List<TokenLogprob> logprobs) {
                heard.add(logprobs);
            }
        };
        ServiceResult replayed = service.generate(options(-1, 1, TokenPenalties.NONE, listener));
        assertThat(replayed.cached()).isTrue();
        assertThat(replayed.generation().promptLogprobs()).isEqualTo(scored.generation().promptLogprobs());
        assertThat(heard).containsExactly(scored.generation().promptLogprobs());

        ServiceResult penalized = service
            .generate(options(-1, -1, new TokenPenalties(1.5, 0, 1.3, java.util.Map.of()), null));
        assertThat(penalized.cached()).isFalse();
        assertThat(penalized.generation().text()).isNotEqualTo(plain.generation().text());
        service.close();
        draft.close();
    }

    /** Request 5, greedy, 24 tokens, with these log-probabilities and penalties. */
    private static ServiceRequest options(int logprobs, int promptLogprobs, TokenPenalties penalties,
            TokenStreamListener listener) {
        return new ServiceRequest(prompt(5), SamplingParams.GREEDY, 24, List.of(), "fixed:5", null, true, listener,
                null, null, null, penalties, logprobs, null, promptLogprobs);
    }

    @Test
    void aRepeatedDeterministicRequestIsServedFromTheCacheWithoutDecoding() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        FaultyDraft draft = draft(FaultyDraft.Fault.THROW, Integer.MAX_VALUE, 0);
        GenerationService service = service(draft, (builder) -> builder.goodput(GoodputSettings.disabled()), registry,
                null, null);

        ServiceResult first = service.generate(greedy(5, 32, null));
        double targetCalls = registry.get("specula.target.calls")
            .counters()
            .stream()
            .mapToDouble((c) -> c.count())
            .sum();
        StringBuilder replay = new StringBuilder();
        ServiceResult second = service.generate(greedy(5, 32, replay));

        assertThat(first.cached()).isFalse();
        assertThat(second.cached()).isTrue();
        assertThat(second.generation().text()).isEqualTo(first.generation().text());
        assertThat(replay.toString()).as("streaming a cached answer replays it").isEqualTo(first.generation().text());
        assertThat(registry.get("specula.target.calls").counters().stream().mapToDouble((c) -> c.count()).sum())
            .as("nothing was decoded")
            .isEqualTo(targetCalls);
        assertThat(registry.get("cache.gets")
            .tag("cache", "specula.responses")
            .tag("result", "hit")
            .functionCounter()
            .count()).isEqualTo(1);
        // greedy output does not depend on the policy (lossless), so another policy hits
        // the same entry
        ServiceRequest otherPolicy = new ServiceRequest(prompt(5), SamplingParams.GREEDY, 32, List.of(), "fixed:2",
                null, true, null, null);
        assertThat(service.generate(otherPolicy).cached()).isTrue();
        // unseeded sampling is never cached; seeded sampling is
        ServiceRequest unseeded = new ServiceRequest(prompt(5), new SamplingParams(0.8, 0, 1, null), 16, List.of(),
                null, null, true, null, null);
        service.generate(unseeded);
        assertThat(service.generate(unseeded).cached()).isFalse();
        ServiceRequest seeded = new ServiceRequest(prompt(5), new SamplingParams(0.8, 0, 1, 42L), 16, List.of(), null,
                null, true, null, null);
        String seededText = service.generate(seeded).generation().text();
        ServiceResult seededAgain = service.generate(seeded);
        assertThat(seededAgain.cached()).isTrue();
        assertThat(seededAgain.generation().text()).isEqualTo(seededText);
        service.close();
        draft.close();
    }

    @Test
    void theBulkheadTurnsAwayRequestsBeyondItsSlots() throws Exception {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        FaultyDraft draft = draft(FaultyDraft.Fault.THROW, Integer.MAX_VALUE, 0);
        GenerationService service = service(draft, noCacheNoGoodput().andThen(
                (builder) -> builder.concurrency(ConcurrencySettings.builder().maxConcurrentGenerations(1).build())),
                registry, null, null);
        CountDownLatch generating = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        ServiceRequest blocking = new ServiceRequest(prompt(7), SamplingParams.GREEDY, 16, List.of(), null, null, true,
                (text) -> {
                    generating.countDown();
                    await(release);
                }, null);
        ExecutorService executor = Executors.newSingleThreadExecutor();
        try {
            Future<ServiceResult> first = executor.submit(() -> service.generate(blocking));
            assertThat(generating.await(30, TimeUnit.SECONDS)).isTrue();

            assertThatThrownBy(() -> service.generate(greedy(8, 8, null))).isInstanceOf(ServiceBusyException.class)
                .hasMessageContaining("specula.resilience.max-concurrent-generations");
            assertThat(registry.get("specula.requests.rejected").counter().count()).isEqualTo(1);

            release.countDown();
            assertThat(first.get(30, TimeUnit.SECONDS).generation().text()).isNotEmpty();
            assertThat(service.generate(greedy(8, 8, null)).generation().tokenIds()).isNotEmpty();
        }
        finally {
            release.countDown();
            executor.shutdownNow();
            service.close();
            draft.close();
        }
    }

    @Test
    void liveFiguresArePerPolicy() {
        FaultyDraft draft = draft(FaultyDraft.Fault.THROW, Integer.MAX_VALUE, 0);
        GenerationService service = service(draft, noCacheNoGoodput(), new SimpleMeterRegistry(), null, null);
        service.generate(greedy(9, 24, null));
        service.generate(
                new ServiceRequest(prompt(9), SamplingParams.GREEDY, 24, List.of(), null, null, false, null, null));

        Map<String, dev.specula.engine.GenerationStats> totals = service.snapshot().totalsByPolicy();
        assertThat(totals).containsOnlyKeys("fixed", "plain");
        assertThat(totals.get("fixed").drafted()).isPositive();
        assertThat(totals.get("plain").drafted()).isZero();
        assertThat(totals.get("plain").generatedTokens()).isEqualTo(totals.get("fixed").generatedTokens());
        assertThatThrownBy(() -> service.generate(new ServiceRequest(prompt(9), SamplingParams.GREEDY, 8, List.of(),
                "no-such-policy", null, true, null, null)))
            .hasMessageContaining("no-such-policy");
        service.close();
        draft.close();
    }

    @Test
    void inABatchAFailingOrHungDraftIsSwitchedOffAndTheOutputIsUnchanged() throws Exception {
        for (FaultyDraft.Fault fault : new FaultyDraft.Fault[] { FaultyDraft.Fault.THROW, FaultyDraft.Fault.HANG }) {
            SimpleMeterRegistry registry = new SimpleMeterRegistry();
            FaultyDraft draft = draft(fault, 10, 0);
            // a target of its own, closed with its handle after the service
            ModelPairHandle models = ModelPairHandle
                .ready(new ModelPair(DecoderModel.load(paths.target(), RuntimeOptions.defaults()), draft));
            GenerationService.Builder builder = GenerationService.builder(models)
                // a loaded machine must not turn a healthy draft phase into a time-out
                .roundTimeLimit((fault == FaultyDraft.Fault.HANG) ? HANG_LIMIT : Duration.ofSeconds(30))
                .batching(BatchingSettings.builder()
                    .maxBatchSize(4)
                    .queueCapacity(16)
                    .maxWait(Duration.ofMillis(20))
                    .build())
                .concurrency(ConcurrencySettings.builder().maxConcurrentGenerations(8).build())
                .prefixCacheBytes(0)
                .meterRegistry(registry);
            noCacheNoGoodput().accept(builder);
            GenerationService service = builder.build();
            ExecutorService clients = Executors.newFixedThreadPool(3);
            try {
                List<Future<ServiceResult>> results = new ArrayList<>();
                List<StringBuilder> streams = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    StringBuilder stream = new StringBuilder();
                    streams.add(stream);
                    int prompt = i;
                    results.add(clients.submit(() -> service.generate(greedy(prompt, 32, stream))));
                }
                FallbackReason reason = fault == FaultyDraft.Fault.THROW ? FallbackReason.DRAFT_ERROR
                        : FallbackReason.DRAFT_TIMEOUT;
                for (int i = 0; i < 3; i++) {
                    ServiceResult result = results.get(i).get(60, TimeUnit.SECONDS);
                    assertThat(result.generation().text()).as("%s, request %d", fault, i).isEqualTo(plainText(i, 32));
                    assertThat(streams.get(i).toString()).isEqualTo(result.generation().text());
                    assertThat(result.fallback()).contains(reason);
                }
                assertThat(fallbacks(registry, reason.tag())).isEqualTo(3);
                assertThat(service.batchLayout()).contains(KvStore.Layout.PADDED);
            }
            finally {
                clients.shutdownNow();
                service.close();
                models.close();
            }
        }
    }

    @Test
    void closingTheServiceLeavesTheModelsToWhoeverCreatedThem() {
        ModelPair pair = new ModelPair(DecoderModel.load(paths.target(), RuntimeOptions.defaults()),
                DecoderModel.load(paths.draft(), RuntimeOptions.defaults()));
        try (ModelPairHandle models = ModelPairHandle.ready(pair)) {
            GenerationService service = GenerationService.builder(models)
                .batching(BatchingSettings.disabled())
                .prefixCacheBytes(0)
                .responseCache(ResponseCacheSettings.disabled())
                .build();
            service.generate(greedy(0, 8, null));
            service.close();

            // the handle and its models are still the caller's: another service (or
            // anything else) can use them
            assertThat(models.state()).isEqualTo(ModelPairHandle.State.READY);
            try (GenerationService next = GenerationService.builder(models)
                .batching(BatchingSettings.disabled())
                .prefixCacheBytes(0)
                .build()) {
                assertThat(next.generate(greedy(0, 8, null)).generation().tokenIds()).isNotEmpty();
            }
        }
    }

    @Test
    void maxConcurrentGenerationsIsDerivedFromBatchingOrChecked() {
        try (GenerationService batched = GenerationService.builder(ModelPairHandle.ready(new ModelPair(target, null)))
            .batching(BatchingSettings.builder().maxBatchSize(4).queueCapacity(12).build())
            .prefixCacheBytes(0)
            .build();
                GenerationService unbatched = GenerationService
                    .builder(ModelPairHandle.ready(new ModelPair(target, null)))
                    .batching(BatchingSettings.disabled())
                    .prefixCacheBytes(0)
                    .build()) {
            assertThat(batched.bulkhead().getBulkheadConfig().getMaxConcurrentCalls()).isEqualTo(16);
            assertThat(unbatched.bulkhead().getBulkheadConfig().getMaxConcurrentCalls())
                .isEqualTo(ConcurrencySettings.DEFAULT_UNBATCHED_MAX_CONCURRENT_GENERATIONS);
        }
        assertThatThrownBy(() -> GenerationService.builder(ModelPairHandle.ready(new ModelPair(target, null)))
            .batching(BatchingSettings.builder().maxBatchSize(4).queueCapacity(12).build())
            .concurrency(ConcurrencySettings.builder().maxConcurrentGenerations(17).build())
            .build())
            .hasMessageContaining("maxConcurrentGenerations must be at most maxBatchSize + queueCapacity (16)");
    }

    @Test
    void resultsSayWhichPolicyWasAskedForWhichRanAndWhy() {
        FaultyDraft draft = draft(FaultyDraft.Fault.THROW, Integer.MAX_VALUE, 0);
        // goodput on: the third speculative-eligible request is a plain probe
        GenerationService service = service(draft, (builder) -> builder.goodput(GoodputSettings.defaults()),
                new SimpleMeterRegistry(), null, null);
        CircuitBreaker open = CircuitBreaker.ofDefaults("open-for-test");
        open.transitionToForcedOpenState();
        GenerationService broken = service(draft, noCacheNoGoodput(), new SimpleMeterRegistry(), open, null);
        GenerationService noDraft = GenerationService.builder(ModelPairHandle.ready(new ModelPair(target, null)))
            .batching(BatchingSettings.disabled())
            .prefixCacheBytes(0)
            .responseCache(ResponseCacheSettings.disabled())
            .build();
        try {
            ServiceResult normal = service.generate(greedy(0, 12, null));
            service.generate(greedy(1, 12, null));
            ServiceResult probe = service.generate(greedy(2, 12, null));
            ServiceResult hit = service.generate(greedy(0, 12, null));
            ServiceResult plain = service.generate(
                    new ServiceRequest(prompt(3), SamplingParams.GREEDY, 12, List.of(), null, null, false, null, null));
            ServiceResult breakerOpen = broken.generate(greedy(4, 12, null));
            ServiceResult withoutDraft = noDraft.generate(greedy(5, 12, null));

            assertPolicies(normal, "fixed", "fixed", null);
            assertPolicies(probe, "fixed", "plain", ServiceResult.Reason.PROBE);
            assertPolicies(hit, "fixed", "cache", ServiceResult.Reason.CACHE);
            assertThat(hit.cached()).isTrue();
            assertThat(hit.generation().stats().drafted()).as("a cache hit decodes nothing").isZero();
            assertThat(hit.generation().stats().targetCalls()).isZero();
            assertThat(hit.generation().text()).isEqualTo(normal.generation().text());
            assertPolicies(plain, "plain", "plain", null);
            assertPolicies(breakerOpen, "fixed", "plain", ServiceResult.Reason.BREAKER_OPEN);
            assertThat(breakerOpen.fallback()).contains(FallbackReason.BREAKER_OPEN);
            // without a draft, prompt lookup proposes
            assertPolicies(withoutDraft, "fixed", "fixed", null);
            assertThat(withoutDraft.generation().proposer()).isEqualTo("ngram");
            assertThat(normal.generation().proposer()).isEqualTo("model");
            assertThat(ServiceResult.Reason.PROBE.tag()).isEqualTo("probe");
            assertThat(ServiceResult.Reason.BREAKER_OPEN.tag()).isEqualTo("breaker-open");
            assertThat(ServiceResult.Reason.CACHE.tag()).isEqualTo("cache");
        }
        finally {
            service.close();
            broken.close();
            noDraft.close();
            draft.close();
        }
    }

    @Test
    void theProposerGriffinNeedsAFeatureHead() {
        GenerationService byRequest = withoutDrafters(PolicySettings.defaults());
        GenerationService configured = withoutDrafters(PolicySettings.builder().proposer(ProposerKind.GRIFFIN).build());
        try {
            assertThatThrownBy(() -> byRequest.generate(greedy(0, 4, null).withProposer(ProposerKind.GRIFFIN)))
                .isInstanceOfSatisfying(InvalidRequestException.class,
                        (ex) -> assertThat(ex.getField()).isEqualTo("speculation.proposer"))
                .hasMessageContaining("specula.griffin.location");
            // the server's setting, not the caller's mistake
            assertThatThrownBy(() -> configured.generate(greedy(0, 4, null))).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("specula.griffin.location");
        }
        finally {
            byRequest.close();
            configured.close();
        }
    }

    /** A service over the target alone: neither a draft model nor a feature head. */
    private static GenerationService withoutDrafters(PolicySettings policy) {
        return GenerationService.builder(ModelPairHandle.ready(new ModelPair(target, null)))
            .policy(policy)
            .batching(BatchingSettings.disabled())
            .prefixCacheBytes(0)
            .responseCache(ResponseCacheSettings.disabled())
            .build();
    }

    private static void assertPolicies(ServiceResult result, String requested, String effective,
            ServiceResult.Reason reason) {
        assertThat(result.requestedPolicy()).as("requested policy").isEqualTo(requested);
        assertThat(result.policy()).as("effective policy").isEqualTo(effective);
        assertThat(result.reason()).as("reason").isEqualTo(java.util.Optional.ofNullable(reason));
    }

    @Test
    void aCachedAnswerIsReplayedInTheChunksItWasGeneratedIn() {
        FaultyDraft draft = draft(FaultyDraft.Fault.THROW, Integer.MAX_VALUE, 0);
        GenerationService service = service(draft, (builder) -> builder.goodput(GoodputSettings.disabled()),
                new SimpleMeterRegistry(), null, null);
        GenerationService uncached = service(draft, noCacheNoGoodput(), new SimpleMeterRegistry(), null, null);
        try {
            List<String> first = new ArrayList<>();
            List<String> second = new ArrayList<>();
            service.generate(streaming(6, first));
            ServiceResult replayed = service.generate(streaming(6, second));

            assertThat(replayed.cached()).isTrue();
            assertThat(first).hasSizeGreaterThan(1);
            assertThat(second).as("the cached answer streams in the chunks it was generated in").isEqualTo(first);

            // an answer cached by a request that did not stream replays as a stream would
            // have sent it
            service.generate(greedy(7, 32, null));
            List<String> afterCall = new ArrayList<>();
            assertThat(service.generate(streaming(7, afterCall)).cached()).isTrue();
            List<String> live = new ArrayList<>();
            uncached.generate(streaming(7, live));
            assertThat(live).hasSizeGreaterThan(1);
            assertThat(afterCall).isEqualTo(live);
        }
        finally {
            service.close();
            uncached.close();
            draft.close();
        }
    }

    private static ServiceRequest streaming(int index, List<String> chunks) {
        return new ServiceRequest(prompt(index), SamplingParams.GREEDY, 32, List.of(), "fixed:5", null, true,
                chunks::add, null);
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await(30, TimeUnit.SECONDS);
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
        }
    }

}
