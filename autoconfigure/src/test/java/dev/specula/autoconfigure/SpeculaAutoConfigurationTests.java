package dev.specula.autoconfigure;

import java.time.Duration;
import java.util.List;

import io.github.resilience4j.springboot.bulkhead.autoconfigure.BulkheadAutoConfiguration;
import io.github.resilience4j.springboot.circuitbreaker.autoconfigure.CircuitBreakerAutoConfiguration;
import io.github.resilience4j.springboot.timelimiter.autoconfigure.TimeLimiterAutoConfiguration;
import io.micrometer.core.instrument.MeterRegistry;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyValueException;
import org.springframework.boot.micrometer.metrics.autoconfigure.CompositeMeterRegistryAutoConfiguration;
import org.springframework.boot.micrometer.metrics.autoconfigure.MetricsAutoConfiguration;
import org.springframework.boot.micrometer.metrics.autoconfigure.export.simple.SimpleMetricsExportAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

import dev.specula.autoconfigure.SpeculaModelsAutoConfiguration.ModelLocationsResolved;
import dev.specula.chat.SpeculaChatModel;
import dev.specula.chat.SpeculaChatOptions;
import dev.specula.serving.GenerationService;
import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Conditions, back-off and property binding of {@link SpeculaModelsAutoConfiguration},
 * {@link SpeculaServingAutoConfiguration} and {@link SpeculaChatAutoConfiguration}, on
 * the embedded pair.
 */
class SpeculaAutoConfigurationTests {

    static final String PROMPT = "def add(a, b):";

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
        .withConfiguration(AutoConfigurations.of(TestModels.AUTO_CONFIGURATIONS))
        .withPropertyValues("specula.chat.options.max-tokens=16");

    @Test
    void zeroConfigurationServesTheEmbeddedPair() {
        runner.run((context) -> {
            assertThat(context).hasSingleBean(SpeculaChatModel.class).hasSingleBean(GenerationService.class);
            ModelLocationsResolved locations = context.getBean(ModelLocationsResolved.class);
            assertThat(locations.embedded()).isTrue();
            assertThat(locations.target()).isEqualTo(TestModels.pair().target());
            assertThat(locations.draft()).isEqualTo(TestModels.pair().draft());

            ChatResponse response = context.getBean(SpeculaChatModel.class).call(new Prompt(PROMPT));
            assertThat(response.getResult().getOutput().getText()).isNotEmpty();
            assertThat(response.getMetadata().getModel()).isEqualTo(SpeculaModelsAutoConfiguration.EMBEDDED_MODEL_NAME);
            assertThat((String) response.getMetadata().get(SpeculaChatModel.METADATA_POLICY)).isEqualTo("fixed");
            assertThat(response.getMetadata().getUsage().getCompletionTokens()).isBetween(1, 16);
        });
    }

    @Test
    void defaultsAreVisibleThroughTheDefaultOptions() {
        new ApplicationContextRunner().withConfiguration(AutoConfigurations.of(TestModels.AUTO_CONFIGURATIONS))
            .run((context) -> {
                SpeculaChatOptions options = (SpeculaChatOptions) context.getBean(SpeculaChatModel.class)
                    .getDefaultOptions();
                assertThat(options.getModel()).isEqualTo("specula-tiny");
                assertThat(options.getTemperature()).isEqualTo(0.0);
                assertThat(options.getTopP()).isEqualTo(1.0);
                assertThat(options.getTopK()).isEqualTo(0);
                assertThat(options.getMaxTokens()).isEqualTo(256);
                assertThat(options.getPolicy()).isEqualTo("fixed");
                assertThat(options.getGamma()).isEqualTo(4);
                assertThat(options.getSpeculation()).isTrue();
                GenerationService service = context.getBean(GenerationService.class);
                assertThat(service.responseCacheSettings().enabled()).isTrue();
                assertThat(service.responseCacheSettings().maximumSize()).isEqualTo(1000);
                assertThat(service.roundTimeLimit()).isEqualTo(Duration.ofSeconds(10));
                assertThat(service.batchingSettings().enabled()).isTrue();
                assertThat(service.bulkhead().getBulkheadConfig().getMaxConcurrentCalls()).as("8 + 64, derived")
                    .isEqualTo(72);
                assertThat(service.draftBreaker().getCircuitBreakerConfig().getSlidingWindowSize()).isEqualTo(20);
                assertThat(service.goodputBreaker()).isPresent();
            });
    }

    @Test
    void propertiesReachTheOptionsAndTheService() {
        runner.withPropertyValues("specula.chat.options.temperature=0.5", "specula.chat.options.top-p=0.9",
                "specula.chat.options.top-k=7", "specula.chat.options.max-tokens=12", "specula.chat.options.seed=42",
                "specula.chat.options.stop-sequences=###,return", "specula.chat.options.frequency-penalty=0.5",
                "specula.chat.options.repetition-penalty=1.1", "specula.policy.name=fixed", "specula.policy.gamma=3",
                "specula.cache.response.enabled=false", "specula.resilience.max-concurrent-generations=2",
                "specula.resilience.round-timeout=3s", "specula.resilience.draft-breaker.sliding-window-size=9",
                "specula.resilience.draft-breaker.failure-rate-threshold=25",
                "specula.resilience.goodput.enabled=false", "specula.model-name=my-coder")
            .run((context) -> {
                SpeculaChatModel chatModel = context.getBean(SpeculaChatModel.class);
                SpeculaChatOptions options = (SpeculaChatOptions) chatModel.getDefaultOptions();
                assertThat(options.getTemperature()).isEqualTo(0.5);
                assertThat(options.getTopP()).isEqualTo(0.9);
                assertThat(options.getTopK()).isEqualTo(7);
                assertThat(options.getMaxTokens()).isEqualTo(12);
                assertThat(options.getSeed()).isEqualTo(42L);
                assertThat(options.getStopSequences()).containsExactly("###", "return");
                assertThat(options.getFrequencyPenalty()).isEqualTo(0.5);
                assertThat(options.getPresencePenalty()).isEqualTo(0.0);
                assertThat(options.getRepetitionPenalty()).isEqualTo(1.1);
                assertThat(options.getPolicy()).isEqualTo("fixed");
                assertThat(options.getGamma()).isEqualTo(3);
                assertThat(options.getModel()).isEqualTo("my-coder");

                GenerationService service = context.getBean(GenerationService.class);
                assertThat(service.responseCacheSettings().enabled()).isFalse();
                assertThat(service.policySettings().name()).isEqualTo("fixed");
                assertThat(service.policySettings().gamma()).isEqualTo(3);
                assertThat(service.bulkhead().getBulkheadConfig().getMaxConcurrentCalls()).isEqualTo(2);
                assertThat(service.draftBreaker().getCircuitBreakerConfig().getSlidingWindowSize()).isEqualTo(9);
                assertThat(service.draftBreaker().getCircuitBreakerConfig().getFailureRateThreshold()).isEqualTo(25f);
                assertThat(service.roundTimeLimit()).isEqualTo(Duration.ofSeconds(3));
                assertThat(service.goodputBreaker()).isEmpty();

                ChatResponse first = chatModel.call(new Prompt(PROMPT));
                ChatResponse second = chatModel.call(new Prompt(PROMPT));
                assertThat(first.getMetadata().getUsage().getCompletionTokens()).isBetween(1, 12);
                assertThat((Boolean) second.getMetadata().get(SpeculaChatModel.METADATA_CACHED)).isFalse();
                assertThat(service.snapshot().cachedResponses()).isZero();
            });
    }

    @Test
    void draftTreesServeTheAnswerChainsServe() {
        String[] chainText = new String[1];
        runner.run((context) -> chainText[0] = context.getBean(SpeculaChatModel.class)
            .call(new Prompt(PROMPT))
            .getResult()
            .getOutput()
            .getText());
        runner.withPropertyValues("specula.policy.draft-shape=tree", "specula.policy.tree-nodes=6").run((context) -> {
            GenerationService service = context.getBean(GenerationService.class);
            assertThat(service.policySettings().tree()).hasToString("tree(width 3, nodes 6)");
            ChatResponse response = context.getBean(SpeculaChatModel.class).call(new Prompt(PROMPT));
            assertThat(response.getResult().getOutput().getText()).isEqualTo(chainText[0]);
        });
    }

    @Test
    void theResponseCacheAnswersARepeatedGreedyRequest() {
        runner.run((context) -> {
            SpeculaChatModel chatModel = context.getBean(SpeculaChatModel.class);
            String first = chatModel.call(new Prompt(PROMPT)).getResult().getOutput().getText();
            ChatResponse second = chatModel.call(new Prompt(PROMPT));
            assertThat(second.getResult().getOutput().getText()).isEqualTo(first);
            assertThat((Boolean) second.getMetadata().get(SpeculaChatModel.METADATA_CACHED)).isTrue();
        });
    }

    @Test
    void explicitLocationsAndNoDraft() {
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.draft.location=file:" + TestModels.pair().draft(), "specula.draft.enabled=false")
            .run((context) -> {
                ModelLocationsResolved locations = context.getBean(ModelLocationsResolved.class);
                assertThat(locations.embedded()).isFalse();
                assertThat(locations.draft()).isNull();
                // the directory is literally "target": named after its parent
                assertThat(locations.modelName())
                    .isEqualTo(TestModels.pair().target().getParent().getFileName().toString());
                assertThat(context.getBean(GenerationService.class).models().get().draft()).isEmpty();
                ChatResponse response = context.getBean(SpeculaChatModel.class).call(new Prompt(PROMPT));
                // without a draft, prompt lookup proposes
                assertThat((String) response.getMetadata().get(SpeculaChatModel.METADATA_POLICY)).isEqualTo("fixed");
                assertThat((String) response.getMetadata().get(SpeculaChatModel.METADATA_PROPOSER)).isEqualTo("ngram");
            });
    }

    @Test
    void classpathLocationsAreExtractedToFiles() {
        runner
            .withPropertyValues("specula.target.location=classpath:dev/specula/models/tiny/target",
                    "specula.draft.location=classpath:/dev/specula/models/tiny/draft/")
            .run((context) -> {
                ModelLocationsResolved locations = context.getBean(ModelLocationsResolved.class);
                assertThat(locations.target().resolve("model.onnx")).isRegularFile();
                assertThat(locations.draft().resolve("tokenizer.json")).isRegularFile();
                assertThat(context.getBean(GenerationService.class).models().get().draft()).isPresent();
            });
    }

    @Test
    void chatModelSelector() {
        runner.withPropertyValues("spring.ai.model.chat=none")
            .run((context) -> assertThat(context).doesNotHaveBean(SpeculaChatModel.class)
                .doesNotHaveBean(GenerationService.class)
                .doesNotHaveBean(ModelPairHandle.class));
        runner.withPropertyValues("spring.ai.model.chat=openai")
            .run((context) -> assertThat(context).doesNotHaveBean(SpeculaChatModel.class));
        runner.withPropertyValues("spring.ai.model.chat=specula")
            .run((context) -> assertThat(context).hasSingleBean(SpeculaChatModel.class));
    }

    @Test
    void backsOffForAUserSpeculaChatModel() {
        runner.withUserConfiguration(UserSpeculaChatModel.class).run((context) -> {
            assertThat(context).hasSingleBean(SpeculaChatModel.class).hasSingleBean(GenerationService.class);
            assertThat(context.getBean(SpeculaChatModel.class).getModelName()).isEqualTo("mine");
        });
    }

    @Test
    void keepsItsChatModelBesideAnotherProvidersChatModel() {
        // as Spring AI's providers do: each backs off for its own type only
        runner.withUserConfiguration(OtherChatModel.class).run((context) -> {
            assertThat(context).hasSingleBean(SpeculaChatModel.class);
            assertThat(context.getBeansOfType(ChatModel.class)).hasSize(2);
        });
    }

    @Test
    void backsOffForAUserGenerationService() {
        runner.withUserConfiguration(UserGenerationService.class).run((context) -> {
            assertThat(context).hasSingleBean(GenerationService.class).hasSingleBean(SpeculaChatModel.class);
            assertThat(context.getBean(GenerationService.class).modelsId()).isEqualTo("user");
            assertThat(context.getBean(SpeculaChatModel.class).getService())
                .isSameAs(context.getBean(GenerationService.class));
        });
    }

    @Test
    void resilience4jInstancesNamedSpeculaWinOverSpeculaResilienceProperties() {
        runner
            .withConfiguration(AutoConfigurations.of(CircuitBreakerAutoConfiguration.class,
                    TimeLimiterAutoConfiguration.class, BulkheadAutoConfiguration.class))
            .withPropertyValues("resilience4j.circuitbreaker.instances.specula.sliding-window-size=7",
                    "resilience4j.circuitbreaker.instances.specula-goodput.minimum-number-of-calls=3",
                    "resilience4j.timelimiter.instances.specula.timeout-duration=2s",
                    "resilience4j.bulkhead.instances.specula.max-concurrent-calls=3",
                    "specula.resilience.draft-breaker.sliding-window-size=11",
                    "specula.resilience.max-concurrent-generations=2")
            .run((context) -> {
                GenerationService service = context.getBean(GenerationService.class);
                assertThat(service.draftBreaker().getCircuitBreakerConfig().getSlidingWindowSize()).isEqualTo(7);
                assertThat(service.goodputBreaker().orElseThrow().getCircuitBreakerConfig().getMinimumNumberOfCalls())
                    .isEqualTo(3);
                assertThat(service.bulkhead().getBulkheadConfig().getMaxConcurrentCalls()).isEqualTo(3);
                assertThat(context.getBean(io.github.resilience4j.timelimiter.TimeLimiterRegistry.class)
                    .timeLimiter("specula")
                    .getTimeLimiterConfig()
                    .getTimeoutDuration()).isEqualTo(Duration.ofSeconds(2));
                assertThat(context.getBean(io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry.class)
                    .circuitBreaker("specula")).isSameAs(service.draftBreaker());
            });
    }

    @Test
    void withoutConfiguredInstancesTheRegistriesGetSpeculaResilienceSettings() {
        runner
            .withConfiguration(
                    AutoConfigurations.of(CircuitBreakerAutoConfiguration.class, BulkheadAutoConfiguration.class))
            .withPropertyValues("specula.resilience.draft-breaker.sliding-window-size=11",
                    "specula.resilience.max-concurrent-generations=2")
            .run((context) -> {
                GenerationService service = context.getBean(GenerationService.class);
                assertThat(service.draftBreaker().getCircuitBreakerConfig().getSlidingWindowSize()).isEqualTo(11);
                assertThat(service.bulkhead().getBulkheadConfig().getMaxConcurrentCalls()).isEqualTo(2);
                assertThat(context.getBean(io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry.class)
                    .find("specula")).containsSame(service.draftBreaker());
            });
    }

    @Test
    void metersReachTheBootManagedMeterRegistry() {
        runner
            .withConfiguration(AutoConfigurations.of(MetricsAutoConfiguration.class,
                    CompositeMeterRegistryAutoConfiguration.class, SimpleMetricsExportAutoConfiguration.class))
            .run((context) -> {
                assertThat(context).hasSingleBean(MeterRegistry.class);
                context.getBean(SpeculaChatModel.class).call(new Prompt(PROMPT));
                context.getBean(SpeculaChatModel.class).call(new Prompt(PROMPT));
                MeterRegistry registry = context.getBean(MeterRegistry.class);
                assertThat(registry.get("specula.generated.tokens").tag("policy", "fixed").counter().count())
                    .isPositive();
                assertThat(registry.get("specula.draft.tokens").tag("policy", "fixed").counter().count()).isPositive();
                assertThat(registry.get("specula.generation").timer().count()).isEqualTo(1);
                assertThat(registry.get("cache.gets")
                    .tag("cache", "specula.responses")
                    .tag("result", "hit")
                    .functionCounter()
                    .count()).isEqualTo(1);
            });
    }

    @Test
    void worksWithoutAMeterRegistry() {
        runner.run((context) -> {
            assertThat(context).doesNotHaveBean(MeterRegistry.class);
            assertThat(context.getBean(SpeculaChatModel.class).call(new Prompt(PROMPT)).getResult()).isNotNull();
        });
    }

    @Test
    void kvPropertiesBindFromDataSizesAndReachTheEngine() {
        runner.withPropertyValues("specula.kv.max-bytes=2MB", "specula.kv.max-wait=5s").run((context) -> {
            GenerationService service = context.getBean(GenerationService.class);
            assertThat(service.kvSettings().maxBytes()).isEqualTo(2L * 1024 * 1024);
            assertThat(service.kvSettings().maxWait()).isEqualTo(Duration.ofSeconds(5));
            assertThat(context.getBean(SpeculaChatModel.class).call(new Prompt(PROMPT)).getResult()).isNotNull();
            assertThat(service.kvMemory()).hasValueSatisfying((kv) -> {
                assertThat(kv.maxBytes()).isEqualTo(2L * 1024 * 1024);
                assertThat(kv.reservedBytes()).isZero();
            });
        });
        runner.run((context) -> assertThat(context.getBean(GenerationService.class).kvSettings())
            .isEqualTo(dev.specula.serving.KvSettings.defaults()));
    }

    @Test
    void maxConcurrentGenerationsIsDerivedFromBatchingWhenUnsetAndCheckedWhenSet() {
        runner.withPropertyValues("specula.batching.max-batch-size=4", "specula.batching.queue-capacity=12")
            .run((context) -> {
                GenerationService service = context.getBean(GenerationService.class);
                assertThat(service.bulkhead().getBulkheadConfig().getMaxConcurrentCalls()).isEqualTo(16);
            });
        runner.withPropertyValues("specula.batching.enabled=false")
            .run((context) -> assertThat(
                    context.getBean(GenerationService.class).bulkhead().getBulkheadConfig().getMaxConcurrentCalls())
                .isEqualTo(dev.specula.serving.ConcurrencySettings.DEFAULT_UNBATCHED_MAX_CONCURRENT_GENERATIONS));
        runner
            .withPropertyValues("specula.batching.max-batch-size=4", "specula.batching.queue-capacity=12",
                    "specula.resilience.max-concurrent-generations=17")
            .run((context) -> {
                assertThat(context).hasFailed();
                InvalidConfigurationPropertyValueException cause = SpeculaPropertiesValidationTests
                    .findCause(context.getStartupFailure(), InvalidConfigurationPropertyValueException.class);
                assertThat(cause.getName()).isEqualTo("specula.resilience.max-concurrent-generations");
                assertThat(cause.getValue()).isEqualTo(17);
                assertThat(cause.getReason())
                    .contains("at most specula.batching.max-batch-size + " + "specula.batching.queue-capacity (16)");
            });
    }

    @Test
    void aUserModelPairHandleIsLeftOpen() {
        ModelPairHandle mine = ModelPairHandle.ready(dev.specula.engine.ModelPair.load(TestModels.pair().target(),
                TestModels.pair().draft(), dev.specula.model.RuntimeOptions.defaults()));
        try {
            runner.withBean(ModelPairHandle.class, () -> mine, (definition) -> definition.setDestroyMethodName(""))
                .run((context) -> assertThat(context.getBean(GenerationService.class).models()).isSameAs(mine));
            // the service was closed with its context, the handle it was given was not
            assertThat(mine.state()).isEqualTo(ModelPairHandle.State.READY);
            GenerationService again = GenerationService.builder(mine)
                .batching(dev.specula.serving.BatchingSettings.disabled())
                .prefixCacheBytes(0)
                .build();
            try {
                assertThat(again
                    .generate(new dev.specula.serving.ServiceRequest(
                            mine.get().target().tokenizer().encode(PROMPT, true),
                            dev.specula.sampling.SamplingParams.GREEDY, 4, List.of(), null, null, true, null, null))
                    .generation()
                    .tokenIds()).isNotEmpty();
            }
            finally {
                again.close();
            }
        }
        finally {
            mine.close();
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class UserSpeculaChatModel {

        @Bean
        SpeculaChatModel mySpeculaChatModel(GenerationService service) {
            return SpeculaChatModel.builder().service(service).modelName("mine").build();
        }

    }

    @Configuration(proxyBeanMethods = false)
    static class OtherChatModel {

        @Bean
        ChatModel otherChatModel() {
            return (prompt) -> new ChatResponse(List.of());
        }

    }

    @Configuration(proxyBeanMethods = false)
    static class UserGenerationService {

        @Bean
        GenerationService myGenerationService(ModelPairHandle models) {
            return GenerationService.builder(models).modelsId("user").build();
        }

    }

}
