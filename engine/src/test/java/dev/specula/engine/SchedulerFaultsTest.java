package dev.specula.engine;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.RoundContext;
import dev.specula.policy.RoundOutcome;
import dev.specula.policy.SpeculationPolicy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The batch thread is no single point of failure: a sequence that throws fails alone, an
 * {@link Error} fails every request at once (and the scheduler says it is dead), a slow
 * client does not slow the others, and a slow target is not a reason to fail a batch.
 * Real models; faults come from test doubles of a policy, a listener and the target's
 * steps ({@link FaultyTarget}).
 */
class SchedulerFaultsTest {

    private static final List<String> PROMPTS = List.of("def read_config(path):\n    ", "import os\n",
            "def fibonacci(n):\n    if n < 2:\n        return n\n    ", "for line in open(name):\n    ",
            "def is_prime(n):\n    ");

    private static DecoderModel target;

    private static DecoderModel draft;

    private static SpeculativeDecoder alone;

    @BeforeAll
    static void load() {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        target = DecoderModel.load(pair.target(), RuntimeOptions.defaults());
        draft = DecoderModel.load(pair.draft(), RuntimeOptions.defaults());
        alone = new SpeculativeDecoder(new ModelPair(target, null));
    }

    @AfterAll
    static void close() {
        target.close();
        draft.close();
    }

    private static Engine scheduler(ModelPair models, int maxBatchSize, Duration timeLimit) {
        return new Engine(models, new Engine.Settings(maxBatchSize, 16, Duration.ofMillis(200), timeLimit));
    }

    private static GenerationRequest.Builder request(int index, int maxTokens) {
        return GenerationRequest.builder(target.tokenizer().encode(PROMPTS.get(index), true))
            .maxNewTokens(maxTokens)
            .policy(() -> new FixedPolicy(3));
    }

    private static int[] plain(int index, int maxTokens) {
        return alone.generate(request(index, maxTokens).policy(PlainPolicy::new).build()).tokenIds();
    }

    private static GenerationResult get(CompletableFuture<GenerationResult> future) throws Exception {
        return future.get(60, TimeUnit.SECONDS);
    }

    /** Fixed γ = 3 until its {@code failingCall}-th draftLength call, which throws. */
    private static final class ThrowingPolicy implements SpeculationPolicy {

        private final int failingCall;

        private int calls;

        ThrowingPolicy(int failingCall) {
            this.failingCall = failingCall;
        }

        @Override
        public String name() {
            return "throwing";
        }

        @Override
        public int draftLength(RoundContext context) {
            if (++calls == failingCall) {
                throw new IllegalStateException("policy failure injected by the test");
            }
            return 3;
        }

        @Override
        public void observe(RoundOutcome outcome) {
        }

    }

    @Test
    void aPolicyThatThrowsFailsOnlyItsOwnSequence() throws Exception {
        try (Engine batch = scheduler(new ModelPair(target, draft), 4, Duration.ofSeconds(30))) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                GenerationRequest.Builder request = request(i, 32);
                if (i == 1) {
                    request.policy(() -> new ThrowingPolicy(3));
                }
                futures.add(batch.submit(request.build()));
            }
            assertThatThrownBy(() -> get(futures.get(1))).isInstanceOf(ExecutionException.class)
                .hasRootCauseMessage("policy failure injected by the test");
            for (int i : new int[] { 0, 2 }) {
                assertThat(get(futures.get(i)).tokenIds()).as("request %d", i).containsExactly(plain(i, 32));
            }
        }
    }

    @Test
    void anErrorInAStepFailsEveryRequestPromptlyAndTheSchedulerReportsItselfDead() {
        FaultyTarget faulty = new FaultyTarget(target, FaultyTarget.Fault.ERROR, 3, 0);
        try (Engine batch = scheduler(faulty.pairWith(draft), 2, Duration.ofSeconds(30))) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                futures.add(batch.submit(request(i, 48).build()));
            }
            // 2 running, 3 queued: all of them end, none waits forever
            for (CompletableFuture<GenerationResult> future : futures) {
                assertThatThrownBy(() -> future.get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                    .hasRootCauseInstanceOf(OutOfMemoryError.class);
            }
            assertThat(batch.isAlive()).isFalse();
            assertThatThrownBy(() -> batch.submit(request(0, 8).build())).isInstanceOf(GenerationException.class)
                .hasMessageContaining("Direct buffer memory");
        }
    }

    @Test
    void aListenerThatBlocksDoesNotDelayTheOtherSequences() throws Exception {
        try (Engine batch = scheduler(new ModelPair(target, draft), 4, Duration.ofSeconds(30))) {
            get(batch.submit(request(0, 8).build())); // warm up the batch path
            StringBuilder slowText = new StringBuilder();
            int[] slowPieces = { 0 };
            CompletableFuture<GenerationResult> slow = batch.submit(request(0, 48).listener((text) -> {
                slowText.append(text);
                if (++slowPieces[0] == 3) {
                    sleep(2000);
                }
            }).build());
            List<List<Long>> arrivals = new ArrayList<>();
            List<CompletableFuture<GenerationResult>> others = new ArrayList<>();
            for (int i = 1; i < 3; i++) {
                List<Long> times = new ArrayList<>();
                times.add(System.nanoTime());
                arrivals.add(times);
                others.add(batch.submit(request(i, 64).listener((text) -> times.add(System.nanoTime())).build()));
            }
            for (int i = 0; i < others.size(); i++) {
                assertThat(get(others.get(i)).tokenIds()).containsExactly(plain(i + 1, 64));
                List<Long> times = arrivals.get(i);
                long longestGap = 0;
                for (int k = 1; k < times.size(); k++) {
                    longestGap = Math.max(longestGap, times.get(k) - times.get(k - 1));
                }
                assertThat(times).as("request %d streamed", i + 1).hasSizeGreaterThan(3);
                assertThat(Duration.ofNanos(longestGap)).as("longest wait for text of request %d", i + 1)
                    .isLessThan(Duration.ofSeconds(1));
            }
            GenerationResult slowResult = get(slow);
            // the result comes after the last text: everything was delivered
            assertThat(slowText.toString()).isEqualTo(slowResult.text());
            assertThat(slowResult.tokenIds()).containsExactly(plain(0, 48));
        }
    }

    @Test
    void aVerificationThatOverrunsTheTimeLimitDoesNotFailTheBatch() throws Exception {
        // the 3rd target call sleeps 1.5 s, five times the 300 ms limit
        FaultyTarget slowTarget = new FaultyTarget(target, FaultyTarget.Fault.SLOW, 3, 1500);
        try (Engine batch = scheduler(slowTarget.pairWith(draft), 4, Duration.ofMillis(300))) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                futures.add(batch.submit(request(i, 24).build()));
            }
            for (int i = 0; i < 3; i++) {
                GenerationResult result = get(futures.get(i));
                assertThat(result.tokenIds()).as("request %d", i).containsExactly(plain(i, 24));
                // a slow target is not a draft failure: speculation goes on
                assertThat(result.fallback()).isNull();
            }
            assertThat(slowTarget.calls()).isGreaterThan(3);
        }
    }

    @Test
    void closeWhileStepsRunEndsEveryRequestAndRefusesNewOnes() throws Exception {
        Engine batch = scheduler(new ModelPair(target, draft), 1, Duration.ofSeconds(30));
        CountDownLatch streaming = new CountDownLatch(1);
        List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
        futures.add(batch.submit(request(0, 400).listener((text) -> streaming.countDown()).build()));
        for (int i = 1; i < 5; i++) {
            futures.add(batch.submit(request(i, 400).build()));
        }
        assertThat(streaming.await(60, TimeUnit.SECONDS)).isTrue();
        batch.close();
        for (int i = 1; i < futures.size(); i++) {
            CompletableFuture<GenerationResult> queued = futures.get(i);
            assertThatThrownBy(() -> queued.get(10, TimeUnit.SECONDS)).as("queued request %d", i)
                .isInstanceOf(ExecutionException.class);
        }
        // the running one ends too: aborted inside ONNX Runtime, or finished just before
        assertThat(futures.get(0).handle((result, failure) -> true).get(10, TimeUnit.SECONDS)).isTrue();
        assertThat(batch.isAlive()).isFalse();
        assertThatThrownBy(() -> batch.submit(request(0, 8).build())).isInstanceOf(IllegalStateException.class);
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
        }
    }

}
