package dev.specula.autoconfigure;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;
import org.springframework.boot.test.context.FilteredClassLoader;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import tools.jackson.databind.json.JsonMapper;

import dev.specula.autoconfigure.actuate.SpeculaActuatorAutoConfiguration;
import dev.specula.autoconfigure.actuate.SpeculaEndpoint;
import dev.specula.autoconfigure.actuate.SpeculaHealthIndicator;
import dev.specula.chat.SpeculaChatModel;
import dev.specula.engine.ModelPair;
import dev.specula.model.RuntimeOptions;
import dev.specula.serving.GenerationService;
import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * The {@code specula} health indicator and {@code /actuator/specula} endpoint over the
 * embedded pair.
 */
class SpeculaActuatorAutoConfigurationTests {

    private static final Prompt PROMPT = new Prompt(SpeculaAutoConfigurationTests.PROMPT);

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
        .withConfiguration(AutoConfigurations.of(TestModels.autoConfigurations(SpeculaActuatorAutoConfiguration.class)))
        .withPropertyValues("specula.chat.options.max-tokens=16",
                "management.endpoints.web.exposure.include=health,specula");

    @Test
    void healthIsUpWithModelsAndBreakers() {
        runner.run((context) -> {
            context.getBean(SpeculaChatModel.class).call(PROMPT);
            Health health = context.getBean(SpeculaHealthIndicator.class).health();
            assertThat(health.getStatus()).isEqualTo(Status.UP);
            assertThat(health.getDetails()).containsEntry("models", "ready")
                .containsEntry("model", "specula-tiny")
                .containsEntry("target", TestModels.pair().target().toString())
                .containsEntry("draft", TestModels.pair().draft().toString())
                .containsEntry("griffin", TestModels.pair().head().map(Path::toString).orElse("none"))
                .containsEntry("speculation", "on")
                .containsEntry("draftBreaker", "CLOSED")
                .containsEntry("goodput", "CLOSED");
            assertThat(context.getBeanNamesForType(SpeculaHealthIndicator.class))
                .containsExactly("speculaHealthIndicator");
        });
    }

    @Test
    void aFeatureHeadAloneSpeculates(@TempDir Path temp) {
        Path head = TestModels.featureHead(temp);
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.griffin.location=" + head)
            .run((context) -> {
                Health health = context.getBean(SpeculaHealthIndicator.class).health();
                assertThat(health.getStatus()).isEqualTo(Status.UP);
                assertThat(health.getDetails()).containsEntry("draft", "none")
                    .containsEntry("griffin", head.toString())
                    .containsEntry("speculation", "on");
            });
    }

    @Test
    void anOpenDraftBreakerKeepsHealthUp() {
        runner.run((context) -> {
            GenerationService service = context.getBean(GenerationService.class);
            service.draftBreaker().transitionToOpenState();
            Health health = context.getBean(SpeculaHealthIndicator.class).health();
            assertThat(health.getStatus()).isEqualTo(Status.UP);
            assertThat(health.getDetails()).containsEntry("draftBreaker", "OPEN");
            assertThat((String) health.getDetails().get("speculation"))
                .startsWith("off: the draft circuit breaker is open");
            // still served, plainly
            assertThat((String) context.getBean(SpeculaChatModel.class)
                .call(PROMPT)
                .getMetadata()
                .get(SpeculaChatModel.METADATA_FALLBACK_REASON)).isEqualTo("breaker-open");
        });
    }

    @Test
    void healthIndicatorCanBeSwitchedOffAndNeedsTheHealthModule() {
        runner.withPropertyValues("management.health.specula.enabled=false")
            .run((context) -> assertThat(context).doesNotHaveBean(SpeculaHealthIndicator.class));
        runner.withClassLoader(new FilteredClassLoader("org.springframework.boot.health"))
            .run((context) -> assertThat(context).hasNotFailed()
                .doesNotHaveBean(SpeculaHealthIndicator.class)
                .hasSingleBean(SpeculaEndpoint.class));
        runner.withClassLoader(new FilteredClassLoader("org.springframework.boot.actuate"))
            .run((context) -> assertThat(context).hasNotFailed()
                .doesNotHaveBean(SpeculaEndpoint.class)
                .hasSingleBean(SpeculaHealthIndicator.class));
    }

    @Test
    void backgroundLoadingStartsAtOnceAndBecomesUp() {
        runner.withPropertyValues("specula.load-mode=background").run((context) -> {
            assertThat(context).hasNotFailed();
            ModelPairHandle models = context.getBean(ModelPairHandle.class);
            await().atMost(Duration.ofSeconds(30)).until(() -> models.state() == ModelPairHandle.State.READY);
            Health health = context.getBean(SpeculaHealthIndicator.class).health();
            assertThat(health.getStatus()).isEqualTo(Status.UP);
            assertThat(context.getBean(SpeculaChatModel.class).call(PROMPT).getResult().getOutput().getText())
                .isNotEmpty();
        });
    }

    @Test
    void healthIsOutOfServiceWhileLoading() {
        CountDownLatch release = new CountDownLatch(1);
        runner.withBean(ModelPairHandle.class, () -> ModelPairHandle.loading(() -> {
            try {
                release.await(30, TimeUnit.SECONDS);
            }
            catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
            }
            return ModelPair.load(TestModels.pair().target(), TestModels.pair().draft(), RuntimeOptions.defaults());
        }, (task) -> new Thread(task, "test-loader").start())).run((context) -> {
            SpeculaHealthIndicator indicator = context.getBean(SpeculaHealthIndicator.class);
            Health loading = indicator.health();
            assertThat(loading.getStatus()).isEqualTo(Status.OUT_OF_SERVICE);
            assertThat(loading.getDetails()).containsEntry("models", "loading");
            assertThat(context.getBean(SpeculaEndpoint.class).figures().models()).isEqualTo("LOADING");
            release.countDown();
            context.getBean(ModelPairHandle.class).await();
            assertThat(indicator.health().getStatus()).isEqualTo(Status.UP);
        });
    }

    @Test
    void backgroundLoadingFailureIsDown(@TempDir Path temp) {
        Path corrupt = TestModels.corruptTarget(temp);
        runner.withPropertyValues("specula.load-mode=background", "specula.target.location=" + corrupt)
            .run((context) -> {
                assertThat(context).hasNotFailed();
                ModelPairHandle models = context.getBean(ModelPairHandle.class);
                models.await();
                Health health = context.getBean(SpeculaHealthIndicator.class).health();
                assertThat(health.getStatus()).isEqualTo(Status.DOWN);
                assertThat(health.getDetails()).containsEntry("models", "failed");
                assertThat((String) health.getDetails().get("error"))
                    .contains(ConfiguredModelLoadException.class.getName(), corrupt.resolve("model.onnx").toString());
            });
    }

    @Test
    void endpointReportsLiveFiguresAsJson() {
        runner.run((context) -> {
            SpeculaChatModel chatModel = context.getBean(SpeculaChatModel.class);
            chatModel.call(PROMPT);
            chatModel.call(PROMPT); // from the response cache

            SpeculaEndpoint.SpeculaDescriptor figures = context.getBean(SpeculaEndpoint.class).figures();
            assertThat(figures.models()).isEqualTo("READY");
            assertThat(figures.model()).isEqualTo("specula-tiny");
            assertThat(figures.policies()).containsOnlyKeys("fixed");
            SpeculaEndpoint.PolicyFigures fixed = figures.policies().get("fixed");
            assertThat(fixed.requests()).isEqualTo(1);
            assertThat(fixed.generatedTokens()).isBetween(1L, 16L);
            assertThat(fixed.targetCalls()).isPositive();
            assertThat(fixed.drafted()).isPositive();
            assertThat(fixed.meanAcceptedLength()).isGreaterThanOrEqualTo(1.0);
            assertThat(fixed.acceptanceRate()).isBetween(0.0, 1.0);
            assertThat(fixed.tokensPerSecond()).isPositive();
            assertThat(fixed.draftedPerPosition()).isNotEmpty();
            assertThat(fixed.draftedPerPosition().get(0))
                .isGreaterThanOrEqualTo(fixed.acceptedPerPosition().isEmpty() ? 0 : fixed.acceptedPerPosition().get(0));
            assertThat(figures.breakers().draft()).isEqualTo("CLOSED");
            assertThat(figures.breakers().goodput()).isEqualTo("CLOSED");
            assertThat(figures.fallbacks()).containsOnlyKeys("draft-error", "timeout", "breaker-open", "goodput")
                .allSatisfy((reason, count) -> assertThat(count).isZero());
            // nothing measured yet: null, not NaN
            assertThat(figures.goodput().plainTokensPerSecond()).isNull();
            assertThat(figures.generationSlots().free()).isEqualTo(72);
            assertThat(figures.generationSlots().total()).isEqualTo(72);
            assertThat(figures.cache().size()).isEqualTo(1);
            assertThat(figures.cache().hits()).isEqualTo(1);
            assertThat(figures.cache().misses()).isEqualTo(1);
            assertThat(figures.kv().maxBytes()).isPositive();
            assertThat(figures.kv().reservedBytes()).as("nothing running").isZero();
            assertThat(figures.kv().prefixCacheBytes()).isNotNegative();

            String json = JsonMapper.builder().build().writeValueAsString(figures);
            assertThat(json).doesNotContain("NaN", "Infinity")
                .contains("\"plainTokensPerSecond\":null", "\"meanAcceptedLength\":", "\"draftedPerPosition\":[");

            assertThat(context.getBean(SpeculaEndpoint.class).clearCache().entries()).isEqualTo(1);
            assertThat(context.getBean(SpeculaEndpoint.class).figures().cache().size()).isZero();
        });
    }

    @Test
    void endpointNeedsToBeExposed() {
        new ApplicationContextRunner()
            .withConfiguration(
                    AutoConfigurations.of(TestModels.autoConfigurations(SpeculaActuatorAutoConfiguration.class)))
            .run((context) -> assertThat(context).doesNotHaveBean(SpeculaEndpoint.class)
                .hasSingleBean(SpeculaHealthIndicator.class));
    }

    @Test
    void backsOffForUserBeansAndWithoutAService() {
        runner.withUserConfiguration(UserActuatorBeans.class).run((context) -> {
            assertThat(context).hasSingleBean(SpeculaEndpoint.class).hasSingleBean(SpeculaHealthIndicator.class);
            assertThat(context.getBean(SpeculaEndpoint.class).figures().model()).isEqualTo("user");
        });
        runner.withPropertyValues("spring.ai.model.chat=none")
            .run((context) -> assertThat(context).doesNotHaveBean(SpeculaEndpoint.class)
                .doesNotHaveBean(SpeculaHealthIndicator.class));
    }

    @Configuration(proxyBeanMethods = false)
    static class UserActuatorBeans {

        @Bean
        SpeculaEndpoint mySpeculaEndpoint(GenerationService service) {
            return new SpeculaEndpoint(service, "user");
        }

        @Bean
        SpeculaHealthIndicator speculaHealthIndicator(GenerationService service) {
            return new SpeculaHealthIndicator(service, "user");
        }

    }

}
