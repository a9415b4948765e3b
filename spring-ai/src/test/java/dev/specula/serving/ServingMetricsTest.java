package dev.specula.serving;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.engine.GenerationStats;
import dev.specula.engine.ModelPair;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;
import dev.specula.sampling.SamplingParams;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The meters every service publishes, on the embedded pair: vLLM's spec-decode counters
 * fed from each generation's statistics, and the engine's load (queue depth, batch size,
 * batched steps).
 */
class ServingMetricsTest {

    private static TinyModels.Pair paths;

    private static DecoderModel target;

    private static DecoderModel draft;

    @BeforeAll
    static void load() {
        paths = Fixtures.embeddedPair();
        target = DecoderModel.load(paths.target(), RuntimeOptions.defaults());
        draft = DecoderModel.load(paths.draft(), RuntimeOptions.defaults());
    }

    @AfterAll
    static void close() {
        draft.close();
        target.close();
    }

    private static ServiceRequest request(String prompt, int maxTokens, boolean speculate,
            dev.specula.engine.TokenStreamListener listener) {
        return new ServiceRequest(target.tokenizer().encode(prompt, true), SamplingParams.GREEDY, maxTokens, List.of(),
                speculate ? "fixed:4" : null, null, speculate, listener, null);
    }

    private static double count(SimpleMeterRegistry registry, String name) {
        return registry.get(name).counter().count();
    }

    @Test
    void specDecodeCountersAddUpEachGenerationsStatistics() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (GenerationService service = GenerationService.builder(ModelPairHandle.ready(new ModelPair(target, draft)))
            .batching(BatchingSettings.disabled())
            .prefixCacheBytes(0)
            .responseCache(ResponseCacheSettings.disabled())
            .goodput(GoodputSettings.disabled())
            .meterRegistry(registry)
            .build()) {
            AtomicInteger activeWhileStreaming = new AtomicInteger(-1);
            GenerationStats total = new GenerationStats();
            for (String prompt : List.of("def fibonacci(n):\n    ",
                    "class Stack:\n    def push(self, item):\n        ")) {
                // unbatched, text reaches the listener on the generating thread, inside
                // the run
                ServiceResult result = service.generate(request(prompt, 48, true,
                        (text) -> activeWhileStreaming.compareAndSet(-1, service.load().active())));
                total.add(result.generation().stats());
            }

            assertThat(total.drafted()).isPositive();
            assertThat(count(registry, "specula.spec_decode.num_draft_tokens")).isEqualTo(total.drafted());
            assertThat(count(registry, "specula.spec_decode.num_accepted_tokens")).isEqualTo(total.accepted())
                .isLessThanOrEqualTo(total.drafted());
            double drafts = count(registry, "specula.spec_decode.num_drafts");
            assertThat(drafts).isEqualTo(total.draftedAtPosition()[0]).isBetween(1.0, (double) total.rounds());
            double acceptedSum = 0;
            double previous = Double.MAX_VALUE;
            for (int position = 0; position < total.draftedAtPosition().length; position++) {
                double accepted = registry.get("specula.spec_decode.num_accepted_tokens_per_pos")
                    .tag("position", Integer.toString(position))
                    .counter()
                    .count();
                // a draft token is accepted only after every token before it was
                assertThat(accepted).as("position %d", position).isLessThanOrEqualTo(previous);
                previous = accepted;
                acceptedSum += accepted;
            }
            assertThat(acceptedSum).isEqualTo(total.accepted());
            assertThat(activeWhileStreaming.get()).as("an unbatched run counts in the batch size").isEqualTo(1);

            service.generate(request("def is_prime(n):\n    ", 16, false, null));

            assertThat(count(registry, "specula.spec_decode.num_drafts")).as("a plain request drafts nothing")
                .isEqualTo(drafts);
            assertThat(registry.get("specula.batch.size").gauge().value()).isZero();
        }
    }

    @Test
    void queueDepthAndBatchSizeFollowTheBatch() throws Exception {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        // a slow draft (15 ms a step) keeps the first request running while the others
        // wait their turn in a batch of one
        FaultyDraft slow = new FaultyDraft(DecoderModel.load(paths.draft(), RuntimeOptions.defaults()),
                FaultyDraft.Fault.SLOW, 0, 15);
        ModelPairHandle models = ModelPairHandle
            .ready(new ModelPair(DecoderModel.load(paths.target(), RuntimeOptions.defaults()), slow));
        GenerationService service = GenerationService.builder(models)
            .batching(BatchingSettings.builder().maxBatchSize(1).queueCapacity(8).build())
            .roundTimeLimit(Duration.ofSeconds(30))
            .prefixCacheBytes(0)
            .responseCache(ResponseCacheSettings.disabled())
            .goodput(GoodputSettings.disabled())
            .meterRegistry(registry)
            .build();
        ExecutorService clients = Executors.newFixedThreadPool(3);
        try {
            assertThat(registry.get("specula.queue.depth").gauge().value()).as("no engine yet").isZero();
            List<Future<ServiceResult>> results = new ArrayList<>();
            for (String prompt : List.of("def fibonacci(n):\n    ", "def is_prime(n):\n    ",
                    "def main(argv):\n    parser = ")) {
                results.add(clients.submit(() -> service.generate(request(prompt, 32, true, null))));
            }

            assertThat(within(Duration.ofSeconds(30),
                    () -> registry.get("specula.queue.depth").gauge().value() >= 1
                            && registry.get("specula.batch.size").gauge().value() == 1))
                .as("a request waits while another runs")
                .isTrue();
            long rounds = 0;
            for (Future<ServiceResult> result : results) {
                rounds += result.get(120, TimeUnit.SECONDS).generation().stats().rounds();
            }

            assertThat(
                    within(Duration.ofSeconds(10),
                            () -> registry.get("specula.queue.depth").gauge().value() == 0
                                    && registry.get("specula.batch.size").gauge().value() == 0))
                .as("idle again")
                .isTrue();
            double steps = registry.get("specula.batch.steps").functionCounter().count();
            assertThat(steps).as("one step per round").isEqualTo(rounds);
            assertThat(registry.get("specula.batch.sequences").functionCounter().count()).as("batches of one")
                .isEqualTo(steps);
            Counter drafts = registry.get("specula.spec_decode.num_drafts").counter();
            assertThat(drafts.count()).isPositive();
        }
        finally {
            clients.shutdownNow();
            service.close();
            models.close();
        }
    }

    private static boolean within(Duration timeout, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (condition.getAsBoolean()) {
                return true;
            }
            Thread.sleep(5);
        }
        return condition.getAsBoolean();
    }

}
