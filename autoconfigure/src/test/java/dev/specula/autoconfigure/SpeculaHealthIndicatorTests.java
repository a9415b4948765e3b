package dev.specula.autoconfigure;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;

import dev.specula.ForwardingDecoder;
import dev.specula.autoconfigure.actuate.SpeculaHealthIndicator;
import dev.specula.engine.GenerationException;
import dev.specula.engine.ModelPair;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.sampling.SamplingParams;
import dev.specula.serving.BatchingSettings;
import dev.specula.serving.ConcurrencySettings;
import dev.specula.serving.GenerationService;
import dev.specula.serving.GoodputSettings;
import dev.specula.serving.ModelPairHandle;
import dev.specula.serving.ResponseCacheSettings;
import dev.specula.serving.ServiceRequest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Health reports DOWN when an {@link Error} killed the engine thread: every request would
 * fail.
 */
class SpeculaHealthIndicatorTests {

    @Test
    void anEngineThreadKilledByAnErrorIsDown() throws Exception {
        DecoderModel target = DecoderModel.load(TestModels.pair().target(), RuntimeOptions.defaults());
        DecoderModel draft = DecoderModel.load(TestModels.pair().draft(), RuntimeOptions.defaults());
        // the test created the handle, so it closes it (after the service)
        try (ModelPairHandle models = ModelPairHandle.ready(new ModelPair(target, new ErrorDraft(draft, 4)));
                GenerationService service = GenerationService.builder(models)
                    .responseCache(ResponseCacheSettings.disabled())
                    .goodput(GoodputSettings.disabled())
                    .prefixCacheBytes(0)
                    .batching(BatchingSettings.builder()
                        .maxBatchSize(4)
                        .queueCapacity(16)
                        .maxWait(Duration.ofMillis(20))
                        .build())
                    .concurrency(ConcurrencySettings.builder().maxConcurrentGenerations(8).build())
                    .build()) {
            SpeculaHealthIndicator health = new SpeculaHealthIndicator(service, "tiny");
            assertThat(health.health().getStatus()).isEqualTo(Status.UP);
            int[] prompt = target.tokenizer().encode("def read_config(path):\n    ", true);
            ServiceRequest request = new ServiceRequest(prompt, SamplingParams.GREEDY, 48, List.of(), "fixed:3", null,
                    true, null, null);
            ExecutorService clients = Executors.newFixedThreadPool(3);
            try {
                List<Future<?>> running = List.of(clients.submit(() -> service.generate(request)),
                        clients.submit(() -> service.generate(request)),
                        clients.submit(() -> service.generate(request)));
                for (Future<?> call : running) {
                    // every request fails, promptly, none waits forever on a dead thread
                    assertThatThrownBy(() -> call.get(10, TimeUnit.SECONDS))
                        .hasRootCauseInstanceOf(OutOfMemoryError.class);
                }
            }
            finally {
                clients.shutdownNow();
            }
            assertThat(service.isEngineAlive()).isFalse();
            assertThatThrownBy(() -> service.generate(request)).isInstanceOf(GenerationException.class)
                .hasMessageContaining("died");
            Health down = health.health();
            assertThat(down.getStatus()).isEqualTo(Status.DOWN);
            assertThat(down.getDetails()).containsEntry("engine", "dead");
            assertThat(service.bulkhead().getMetrics().getAvailableConcurrentCalls()).as("no permit leaked")
                .isEqualTo(8);
        }
    }

    /**
     * A real draft whose forward calls throw an {@link Error} after {@code healthyCalls}.
     */
    private static final class ErrorDraft extends ForwardingDecoder {

        private final DecoderModel real;

        private final int healthyCalls;

        private final AtomicInteger calls = new AtomicInteger();

        ErrorDraft(DecoderModel real, int healthyCalls) {
            super(real);
            this.real = real;
            this.healthyCalls = healthyCalls;
        }

        @Override
        public List<StepOutput> forward(List<StepInput> batch) throws ai.onnxruntime.OrtException {
            if (calls.incrementAndGet() > healthyCalls) {
                throw new OutOfMemoryError("Direct buffer memory (injected by the test)");
            }
            return real.forward(batch);
        }

    }

}
