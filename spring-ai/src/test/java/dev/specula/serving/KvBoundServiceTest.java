package dev.specula.serving;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.engine.KvCapacityExceededException;
import dev.specula.engine.ModelPair;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.sampling.SamplingParams;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The service under {@code specula.kv.*} (KvSettings), on the embedded target alone (6
 * KiB of KV per token): a request that could never fit is refused with the engine's
 * {@link KvCapacityExceededException} (the gateway's 429 kv_capacity_exceeded), batched
 * or not; one that waited past max-wait for memory is busy, like a full bulkhead.
 */
class KvBoundServiceTest {

    private static final long BYTES_PER_TOKEN = 6 * 1024;

    private static DecoderModel target;

    @BeforeAll
    static void load() {
        target = DecoderModel.load(Fixtures.embeddedPair().target(), RuntimeOptions.defaults());
    }

    @AfterAll
    static void close() {
        target.close();
    }

    private static ServiceRequest request(int maxTokens, dev.specula.engine.TokenStreamListener listener) {
        return new ServiceRequest(target.tokenizer().encode("def read_config(path):\n    ", true),
                SamplingParams.GREEDY, maxTokens, List.of(), null, null, false, listener, null);
    }

    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();

    private GenerationService service(BatchingSettings batching, long maxBytes, Duration maxWait) {
        return GenerationService.builder(ModelPairHandle.ready(new ModelPair(target, null)))
            .meterRegistry(registry)
            .batching(batching)
            .prefixCacheBytes(0)
            .responseCache(ResponseCacheSettings.disabled())
            .kv(new KvSettings(maxBytes, maxWait))
            .build();
    }

    @Test
    void aRequestThatCanNeverFitIsRefusedNamingTheProperty() {
        for (BatchingSettings batching : List.of(BatchingSettings.defaults(), BatchingSettings.disabled())) {
            try (GenerationService service = service(batching, 100 * BYTES_PER_TOKEN, Duration.ofSeconds(30))) {
                assertThatThrownBy(() -> service.generate(request(200, null)))
                    .isInstanceOf(KvCapacityExceededException.class)
                    .hasMessageContaining("specula.kv.max-bytes")
                    .hasMessageContaining((100 * BYTES_PER_TOKEN) + " bytes");
                assertThat(service.generate(request(16, null)).generation().tokenIds()).isNotEmpty();
            }
        }
    }

    @Test
    void aWaitForKvMemoryPastMaxWaitIsBusy() throws Exception {
        try (GenerationService service = service(BatchingSettings.disabled(), 100 * BYTES_PER_TOKEN,
                Duration.ofMillis(200))) {
            CountDownLatch holding = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            // unbatched: the listener runs on the request's thread and holds its KV
            CompletableFuture<ServiceResult> first = CompletableFuture
                .supplyAsync(() -> service.generate(request(64, (text) -> {
                    holding.countDown();
                    try {
                        release.await(20, TimeUnit.SECONDS);
                    }
                    catch (InterruptedException ex) {
                        Thread.currentThread().interrupt();
                    }
                })));
            try {
                assertThat(holding.await(20, TimeUnit.SECONDS)).isTrue();
                assertThatThrownBy(() -> service.generate(request(64, null))).isInstanceOf(ServiceBusyException.class)
                    .hasMessageContaining("specula.kv.max-wait");
            }
            finally {
                release.countDown();
            }
            assertThat(first.get(60, TimeUnit.SECONDS).generation().tokenIds()).isNotEmpty();
            assertThat(service.kvMemory()).hasValueSatisfying((kv) -> assertThat(kv.reservedBytes()).isZero());
            assertThat(registry.get("specula.kv.reserved.bytes").gauge().value()).isZero();
            assertThat(registry.get("specula.kv.max.bytes").gauge().value()).isEqualTo(100.0 * BYTES_PER_TOKEN);
        }
    }

}
