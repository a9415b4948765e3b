package dev.specula.engine;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.kv.KvStore;
import dev.specula.kv.PrefixCache;
import dev.specula.kv.PrefixCacheListener;
import dev.specula.model.Decoder;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.RoundContext;
import dev.specula.policy.RoundOutcome;
import dev.specula.policy.SpeculationPolicy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

/**
 * {@code specula.kv.max-bytes} bounds the KV of all requests together, on the embedded
 * pair: requests that do not fit together take turns (and decode what they decode alone),
 * a request that could never fit is refused before any model call, naming the property,
 * and the prefix cache gives its room back to requests.
 */
class KvMemoryBoundTest {

    private static final List<String> PROMPTS = List.of("def read_config(path):\n    ",
            "def fibonacci(n):\n    if n < 2:\n        return n\n    ");

    private static final int MAX_TOKENS = 40;

    private static ModelPair models;

    private static SpeculativeDecoder alone;

    /** KV bytes of one token in the target, and in the draft. */
    private static long targetBytes;

    private static long draftBytes;

    @BeforeAll
    static void load() {
        models = Fixtures.embeddedModels();
        alone = new SpeculativeDecoder(models);
        targetBytes = bytesPerToken(models.target());
        draftBytes = bytesPerToken(models.draft().orElseThrow());
    }

    @AfterAll
    static void close() {
        models.close();
    }

    private static long bytesPerToken(Decoder model) {
        try (KvStore store = model.newStore()) {
            return store.kvLayout().bytesPerToken();
        }
    }

    private static int[] prompt(int index) {
        return models.target().tokenizer().encode(PROMPTS.get(index), true);
    }

    /**
     * Worst-case KV of a speculative request: (prompt + max new tokens) × both models.
     */
    private static long worstCase(int index) {
        return (prompt(index).length + MAX_TOKENS) * (targetBytes + draftBytes);
    }

    /** Room for the larger of the two requests, not for both. */
    private static long roomForOne() {
        return Math.max(worstCase(0), worstCase(1)) + Math.min(worstCase(0), worstCase(1)) / 2;
    }

    private static Engine engine(long kvMaxBytes) {
        return new Engine(models, new Engine.Settings(8, 16, Duration.ofMillis(2), Duration.ofSeconds(30), kvMaxBytes,
                Duration.ofSeconds(60)));
    }

    private static GenerationRequest.Builder request(int index) {
        return GenerationRequest.builder(prompt(index)).maxNewTokens(MAX_TOKENS).policy(() -> new FixedPolicy(3));
    }

    private static int[] plain(int index) {
        return alone
            .generate(
                    GenerationRequest.builder(prompt(index)).maxNewTokens(MAX_TOKENS).policy(PlainPolicy::new).build())
            .tokenIds();
    }

    /** Waits until {@code engine} has a request waiting for KV memory. */
    private static void awaitWaiting(Engine engine, long cap) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (engine.kvMemory().waiting() == 0) {
            assertThat(engine.kvMemory().reservedBytes()).isLessThanOrEqualTo(cap);
            if (System.nanoTime() > deadline) {
                fail("No request waited for KV memory although two did not fit " + cap + " bytes together: "
                        + engine.kvMemory());
            }
            Thread.sleep(1);
        }
    }

    /** Fixed γ = 3, 20 ms a round: keeps its request running while the test looks. */
    private static final class SlowPolicy implements SpeculationPolicy {

        private final FixedPolicy fixed = new FixedPolicy(3);

        @Override
        public String name() {
            return "slow";
        }

        @Override
        public int draftLength(RoundContext context) {
            try {
                Thread.sleep(20);
            }
            catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
            }
            return fixed.draftLength(context);
        }

        @Override
        public void observe(RoundOutcome outcome) {
            fixed.observe(outcome);
        }

    }

    @Test
    void batchedRequestsThatDoNotFitTogetherTakeTurnsAndDecodeAsAlone() throws Exception {
        long cap = roomForOne();
        try (Engine engine = engine(cap)) {
            CompletableFuture<GenerationResult> first = engine.submit(request(0).policy(SlowPolicy::new).build());
            CompletableFuture<GenerationResult> second = engine.submit(request(1).build());

            awaitWaiting(engine, cap);
            assertThat(second).isNotDone();

            assertThat(first.get(60, TimeUnit.SECONDS).tokenIds()).containsExactly(plain(0));
            assertThat(second.get(60, TimeUnit.SECONDS).tokenIds()).containsExactly(plain(1));
            assertThat(engine.kvMemory().reservedBytes()).isZero();
        }
    }

    @Test
    void directRequestsThatDoNotFitTogetherTakeTurnsAndDecodeAsAlone() throws Exception {
        long cap = roomForOne();
        ExecutorService callers = Executors.newFixedThreadPool(2);
        try (Engine engine = engine(cap)) {
            CountDownLatch firstText = new CountDownLatch(1);
            CountDownLatch secondWaits = new CountDownLatch(1);
            // the first caller's listener runs on its thread: it holds its request (and
            // its KV) until the second waits
            Future<GenerationResult> first = callers.submit(() -> engine.generate(request(0).listener((text) -> {
                firstText.countDown();
                await(secondWaits);
            }).build()));
            assertThat(firstText.await(20, TimeUnit.SECONDS)).isTrue();
            Future<GenerationResult> second = callers.submit(() -> engine.generate(request(1).build()));
            try {
                awaitWaiting(engine, cap);
                assertThat(second.isDone()).isFalse();
            }
            finally {
                secondWaits.countDown();
            }
            assertThat(first.get(60, TimeUnit.SECONDS).tokenIds()).containsExactly(plain(0));
            assertThat(second.get(60, TimeUnit.SECONDS).tokenIds()).containsExactly(plain(1));
            assertThat(engine.kvMemory().reservedBytes()).isZero();
        }
        finally {
            callers.shutdownNow();
        }
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await(20, TimeUnit.SECONDS);
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
        }
    }

    @Test
    void aRequestThatCanNeverFitIsRefusedBeforeAnyModelCallNamingTheProperty() {
        long plainNeed = (prompt(0).length + MAX_TOKENS) * targetBytes;
        long cap = plainNeed - 1;
        try (Engine engine = engine(cap)) {
            GenerationRequest tooLarge = request(0).listener((text) -> fail("no text may be generated")).build();
            // submit: the target's KV alone is over the cap; generate: target + draft
            // (the request speculates)
            for (Runnable call : List.<Runnable>of(() -> engine.submit(tooLarge), () -> engine.generate(tooLarge))) {
                long start = System.nanoTime();
                assertThatThrownBy(call::run).isInstanceOfSatisfying(KvCapacityExceededException.class, (ex) -> {
                    assertThat(ex.getNeededBytes()).isIn(plainNeed, worstCase(0));
                    assertThat(ex.getMaxBytes()).isEqualTo(cap);
                    assertThat(ex.getMessage()).contains("specula.kv.max-bytes")
                        .contains(ex.getNeededBytes() + " bytes")
                        .contains(cap + " bytes");
                });
                assertThat(System.nanoTime() - start).isLessThan(TimeUnit.SECONDS.toNanos(1));
            }
            assertThat(engine.kvMemory().reservedBytes()).isZero();
        }
        // the target's KV fits, the draft's on top does not: refused too, no model call
        try (Engine engine = engine(worstCase(0) - 1)) {
            GenerationRequest speculative = request(0).listener((text) -> fail("no text may be generated")).build();
            assertThatThrownBy(() -> engine.generate(speculative)).isInstanceOf(KvCapacityExceededException.class)
                .hasMessageContaining(worstCase(0) + " bytes");
            assertThatThrownBy(() -> engine.submit(speculative).get(20, TimeUnit.SECONDS))
                .hasCauseInstanceOf(KvCapacityExceededException.class);
            // a plain request of the same size runs
            assertThat(engine.generate(request(0).policy(PlainPolicy::new).build()).tokenIds())
                .containsExactly(plain(0));
        }
    }

    @Test
    void aPromptOverTheContextIsStillAContextErrorFirst() {
        try (Engine engine = engine(1)) {
            GenerationRequest tooLong = request(0).maxNewTokens(5000).build();
            assertThatThrownBy(() -> engine.generate(tooLong)).isInstanceOf(ContextLengthExceededException.class);
            assertThatThrownBy(() -> engine.submit(tooLong)).isInstanceOf(ContextLengthExceededException.class);
        }
    }

    @Test
    void thePrefixCacheCountsAgainstTheCapAndGivesItsRoomBackFirst() {
        long block = 16 * (targetBytes + draftBytes);
        long cap = worstCase(1) + block;
        AtomicLong evicted = new AtomicLong();
        PrefixCache prefixes = new PrefixCache(64L << 20, new PrefixCacheListener() {
            @Override
            public void onEviction(long bytes) {
                evicted.addAndGet(bytes);
            }
        });
        try (Engine engine = new Engine(models,
                new Engine.Settings(8, 16, Duration.ofMillis(2), Duration.ofSeconds(30), cap, Duration.ofSeconds(60)),
                prefixes)) {
            assertThat(engine.generate(request(1).build()).tokenIds()).containsExactly(plain(1));
            assertThat(prefixes.bytes()).as("the prompt's first block is kept").isEqualTo(block);
            assertThat(engine.kvMemory().prefixCacheBytes()).isEqualTo(block);
            assertThat(engine.kvMemory().reservedBytes()).isZero();

            // 16 tokens more: it needs the block's room, and the block makes way
            GenerationRequest longer = request(1).maxNewTokens(MAX_TOKENS + 16).build();
            int[] expected = alone.generate(GenerationRequest.builder(prompt(1)).maxNewTokens(MAX_TOKENS + 16).build())
                .tokenIds();
            assertThat(engine.generate(longer).tokenIds()).containsExactly(expected);
            assertThat(evicted.get()).isGreaterThanOrEqualTo(block);
            assertThat(engine.kvMemory().reservedBytes()).isZero();
            assertThat(engine.kvMemory().prefixCacheBytes()).isEqualTo(prefixes.bytes()).isLessThanOrEqualTo(cap);
        }
    }

}
