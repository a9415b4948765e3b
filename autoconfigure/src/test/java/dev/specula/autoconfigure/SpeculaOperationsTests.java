package dev.specula.autoconfigure;

import java.nio.file.Path;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.actuate.endpoint.SecurityContext;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.health.actuate.endpoint.CompositeHealthDescriptor;
import org.springframework.boot.health.actuate.endpoint.HealthDescriptor;
import org.springframework.boot.health.actuate.endpoint.HealthEndpoint;
import org.springframework.boot.health.actuate.endpoint.HealthEndpointGroup;
import org.springframework.boot.health.actuate.endpoint.HealthEndpointGroups;
import org.springframework.boot.health.actuate.endpoint.IndicatedHealthDescriptor;
import org.springframework.boot.health.autoconfigure.actuate.endpoint.HealthEndpointAutoConfiguration;
import org.springframework.boot.health.autoconfigure.contributor.HealthContributorAutoConfiguration;
import org.springframework.boot.health.autoconfigure.registry.HealthContributorRegistryAutoConfiguration;
import org.springframework.boot.logging.LogLevel;
import org.springframework.boot.logging.LoggingSystem;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Configuration;

import dev.specula.autoconfigure.actuate.SpeculaActuatorAutoConfiguration;
import dev.specula.autoconfigure.actuate.SpeculaEndpoint;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What an operator sees: the INFO line once the models are loaded, the served model's
 * default name, DJL's CUDA probe kept quiet, and the {@code specula} health component
 * with starter/README.md's snippet.
 */
@ExtendWith(OutputCaptureExtension.class)
class SpeculaOperationsTests {

    private static final String CUDA_PROBE = "ai.djl.util.cuda.CudaUtils";

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
        .withConfiguration(AutoConfigurations.of(TestModels.AUTO_CONFIGURATIONS));

    @Test
    void oneInfoLineSaysWhatWasLoaded(CapturedOutput output) {
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.draft.location=" + TestModels.pair().draft(), "specula.policy.name=gammatune",
                    "specula.batching.enabled=true", "specula.batching.path=auto")
            .run((context) -> {
                assertThat(context).hasNotFailed();
                String line = output.getOut()
                    .lines()
                    .filter((l) -> l.contains("Specula loaded its models"))
                    .findFirst()
                    .orElseThrow(() -> new AssertionError("no INFO line about the loaded models in:\n" + output));
                assertThat(line)
                    .contains("INFO", "target " + TestModels.pair().target().resolve("model_packed.onnx") + " (llama, ",
                            "draft " + TestModels.pair().draft(), " parameters, vocabulary ",
                            "policy gammatune (gamma 4)", "batching unpadded", "execution provider CPU")
                    .containsPattern("loaded its models in \\d+ ms")
                    .containsPattern("\\d+\\.\\dM parameters")
                    .containsPattern(
                            "(\\d+ (float32|4-bit|float32 and \\d+ 4-bit) MatMuls( and \\d+ attentions)? on Specula's kernels|ONNX Runtime's MatMul kernels)\\)");
                assertThat(output.getOut().lines().filter((l) -> l.contains("Specula loaded its models"))).hasSize(1);
            });
    }

    @Test
    void withoutBatchingTheModelsDecodeOnTheirPackedGraphsUnlessThePaddedPathIsSet() {
        for (String path : java.util.List.of("auto", "padded")) {
            runner
                .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                        "specula.draft.location=" + TestModels.pair().draft(), "specula.batching.enabled=false",
                        "specula.batching.path=" + path)
                .run((context) -> {
                    assertThat(context).hasNotFailed();
                    dev.specula.engine.ModelPair pair = context.getBean(dev.specula.serving.ModelPairHandle.class)
                        .get();
                    String graph = path.equals("padded") ? "model.onnx" : "model_packed.onnx";
                    assertThat(pair.target().files().model().getFileName()).hasToString(graph);
                    assertThat(pair.draft().orElseThrow().files().model().getFileName()).hasToString(graph);
                });
        }
    }

    @Test
    void loadingWarmsThePairUpUnderTheConfiguredPolicyAndSaysSo(CapturedOutput output) {
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.draft.location=" + TestModels.pair().draft(), "specula.policy.name=goodput",
                    "specula.batching.enabled=true", "specula.warm-up=300ms")
            .run((context) -> {
                assertThat(context).hasNotFailed();
                String line = output.getOut()
                    .lines()
                    .filter((l) -> l.contains("Specula warmed up"))
                    .findFirst()
                    .orElseThrow(() -> new AssertionError("no INFO line about the warm-up in:\n" + output));
                assertThat(line).contains("INFO", "(specula.warm-up)")
                    .containsPattern("warmed up in \\d+ ms: [1-9]\\d* plain and [1-9]\\d* speculative generations");
            });
        // off by default
        runner.withPropertyValues("specula.target.location=" + TestModels.pair().target())
            .run((context) -> assertThat(context).hasNotFailed());
        assertThat(output.getOut().lines().filter((l) -> l.contains("Specula warmed up"))).hasSize(1);
    }

    @Test
    void parametersAreTheInitializersElements() throws Exception {
        // the embedded target is a Llama with tied embeddings: its size from config.json
        Path target = TestModels.pair().target();
        JsonNode config = new ObjectMapper().readTree(target.resolve("config.json").toFile());
        long hidden = config.path("hidden_size").asLong();
        long heads = config.path("num_attention_heads").asLong();
        long kvHeads = config.path("num_key_value_heads").asLong();
        long headDim = config.path("head_dim").asLong(hidden / heads);
        long layer = 2 * hidden * heads * headDim + 2 * hidden * kvHeads * headDim
                + 3 * hidden * config.path("intermediate_size").asLong() + 2 * hidden;
        long expected = config.path("vocab_size").asLong() * hidden
                * (config.path("tie_word_embeddings").asBoolean() ? 1 : 2)
                + config.path("num_hidden_layers").asLong() * layer + hidden;
        long counted = OnnxParameters.count(target.resolve("model.onnx"));
        // the graph's few constants (shapes, rotary tables) aside
        assertThat(counted).isBetween(expected, expected + expected / 100);
        assertThat(OnnxParameters.count(target.resolve("model_packed.onnx"))).isBetween(expected,
                expected + expected / 100);
        assertThat(SpeculaModelsAutoConfiguration.parameters(target.resolve("model.onnx")))
            .isEqualTo(String.format(java.util.Locale.ROOT, "%.1fM", counted / 1e6));
    }

    @Test
    void aDirectoryNamedTargetIsNamedAfterItsParent(@TempDir Path temp) {
        Path target = TestModels.copy(TestModels.pair().target(), temp.resolve("qwen-coder").resolve("target"));
        assertThat(SpeculaModelsAutoConfiguration.defaultModelName(target)).isEqualTo("qwen-coder");
        assertThat(SpeculaModelsAutoConfiguration.defaultModelName(target.resolve("model.onnx")))
            .isEqualTo("qwen-coder");
        Path other = TestModels.copy(TestModels.pair().target(), temp.resolve("smollm2-1.7b"));
        assertThat(SpeculaModelsAutoConfiguration.defaultModelName(other)).isEqualTo("smollm2-1.7b");
    }

    @Test
    void configNameOrPathIsTheDefaultName(@TempDir Path temp) {
        Path hubId = TestModels.copy(TestModels.pair().target(), temp.resolve("a").resolve("target"));
        TestModels.editConfig(hubId, (config) -> config.put("_name_or_path", "Qwen/Qwen2.5-0.5B-Instruct"));
        assertThat(SpeculaModelsAutoConfiguration.defaultModelName(hubId)).isEqualTo("Qwen/Qwen2.5-0.5B-Instruct");
        Path localPath = TestModels.copy(TestModels.pair().target(), temp.resolve("b").resolve("target"));
        TestModels.editConfig(localPath, (config) -> config.put("_name_or_path", "/home/me/models/SmolLM2-135M/"));
        assertThat(SpeculaModelsAutoConfiguration.defaultModelName(localPath)).isEqualTo("SmolLM2-135M");
        runner.withPropertyValues("specula.target.location=" + hubId, "specula.draft.enabled=false")
            .run((context) -> assertThat(
                    context.getBean(SpeculaModelsAutoConfiguration.ModelLocationsResolved.class).modelName())
                .isEqualTo("Qwen/Qwen2.5-0.5B-Instruct"));
    }

    @Test
    void djlCudaProbeIsQuietUnlessTheUserSaysOtherwise() {
        try {
            try (ConfigurableApplicationContext context = start()) {
                assertThat(level(context)).isEqualTo(LogLevel.ERROR);
            }
            try (ConfigurableApplicationContext context = start("--logging.level." + CUDA_PROBE + "=warn")) {
                assertThat(level(context)).isEqualTo(LogLevel.WARN);
            }
        }
        finally {
            LoggingSystem.get(getClass().getClassLoader()).setLogLevel(CUDA_PROBE, null);
        }
    }

    @Test
    void healthShowsTheSpeculaComponentOnlyWithTheReadmeSnippet() {
        ApplicationContextRunner health = runner
            .withConfiguration(AutoConfigurations.of(HealthContributorAutoConfiguration.class,
                    HealthContributorRegistryAutoConfiguration.class, HealthEndpointAutoConfiguration.class,
                    SpeculaActuatorAutoConfiguration.class))
            .withPropertyValues("specula.chat.options.max-tokens=16");
        health.run((context) -> {
            // Boot's defaults: /actuator/health answers the status only
            HealthEndpointGroup primary = context.getBean(HealthEndpointGroups.class).getPrimary();
            assertThat(primary.showComponents(SecurityContext.NONE)).isFalse();
            assertThat(primary.showDetails(SecurityContext.NONE)).isFalse();
        });
        // starter/README.md, "Health"
        health
            .withPropertyValues("management.endpoint.health.show-components=always",
                    "management.endpoint.health.show-details=always",
                    "management.endpoints.web.exposure.include=health,specula")
            .run((context) -> {
                HealthEndpointGroup primary = context.getBean(HealthEndpointGroups.class).getPrimary();
                assertThat(primary.showComponents(SecurityContext.NONE)).isTrue();
                assertThat(primary.showDetails(SecurityContext.NONE)).isTrue();
                HealthDescriptor descriptor = context.getBean(HealthEndpoint.class).health();
                HealthDescriptor specula = ((CompositeHealthDescriptor) descriptor).getComponents().get("specula");
                assertThat(specula).isInstanceOf(IndicatedHealthDescriptor.class);
                assertThat(((IndicatedHealthDescriptor) specula).getDetails()).containsKey("models");
                assertThat(context).hasSingleBean(SpeculaEndpoint.class);
            });
    }

    private static ConfigurableApplicationContext start(String... args) {
        SpringApplication application = new SpringApplication(Empty.class);
        application.setWebApplicationType(WebApplicationType.NONE);
        return application.run(args);
    }

    private static LogLevel level(ConfigurableApplicationContext context) {
        return LoggingSystem.get(context.getClassLoader()).getLoggerConfiguration(CUDA_PROBE).getEffectiveLevel();
    }

    @Configuration(proxyBeanMethods = false)
    static class Empty {

    }

}
