package dev.specula.autoconfigure;

import java.net.URL;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyValueException;
import org.springframework.boot.diagnostics.FailureAnalysis;
import org.springframework.boot.diagnostics.FailureAnalyzer;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.io.UrlResource;
import org.springframework.core.io.support.PropertiesLoaderUtils;

import dev.specula.autoconfigure.diagnostics.ExecutionProviderUnavailableFailureAnalyzer;
import dev.specula.autoconfigure.diagnostics.ModelLoadFailureAnalyzer;
import dev.specula.autoconfigure.diagnostics.UnknownPolicyFailureAnalyzer;
import dev.specula.autoconfigure.diagnostics.VocabularyMismatchFailureAnalyzer;
import dev.specula.engine.VocabularyMismatchException;
import dev.specula.model.ExecutionProviderUnavailableException;
import dev.specula.model.ModelLoadException;
import dev.specula.policy.SpeculationPolicies;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Every user mistake stops startup with a description and an action: contexts that really
 * fail (missing or corrupt model, vocabulary mismatch, CUDA without the GPU runtime, bad
 * values), analysed as Spring Boot does.
 */
@ExtendWith(OutputCaptureExtension.class)
class SpeculaFailureAnalyzersTests {

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
        .withConfiguration(AutoConfigurations.of(TestModels.AUTO_CONFIGURATIONS));

    @Test
    void missingTargetDirectory() {
        runner.withPropertyValues("specula.target.location=/nonexistent").run((context) -> {
            assertThat(context).hasFailed();
            FailureAnalysis analysis = new ModelLoadFailureAnalyzer().analyze(context.getStartupFailure());
            print("missing target", analysis);
            assertThat(analysis.getDescription()).contains("Property: specula.target.location", "Path: /nonexistent",
                    "does not exist");
            assertThat(analysis.getAction()).contains("Point specula.target.location at",
                    "python -m specula_tools export HF_MODEL_DIR OUT_DIR", "tools/ directory of the Specula repository",
                    "specula.target.location=OUT_DIR");
            // a Maven user has no checkout: no bare repository paths
            assertThat(analysis.getAction()).doesNotContain("docs/", "README");
        });
    }

    @Test
    void missingDraftFile(@TempDir Path temp) {
        Path draft = TestModels.copy(TestModels.pair().draft(), temp.resolve("draft-without-tokenizer"));
        draft.resolve("tokenizer.json").toFile().delete();
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.draft.location=" + draft)
            .run((context) -> {
                assertThat(context).hasFailed();
                FailureAnalysis analysis = new ModelLoadFailureAnalyzer().analyze(context.getStartupFailure());
                print("missing draft tokenizer", analysis);
                assertThat(analysis.getDescription()).contains("Property: specula.draft.location",
                        draft.resolve("tokenizer.json").toString());
                assertThat(analysis.getAction()).contains("Point specula.draft.location at");
            });
    }

    @Test
    void corruptTargetModel(@TempDir Path temp) {
        Path target = TestModels.corruptTarget(temp);
        runner
            .withPropertyValues("specula.target.location=" + target,
                    "specula.draft.location=" + TestModels.pair().draft())
            .run((context) -> {
                assertThat(context).hasFailed();
                ModelLoadException cause = SpeculaPropertiesValidationTests.findCause(context.getStartupFailure(),
                        ModelLoadException.class);
                assertThat(cause).isInstanceOf(ConfiguredModelLoadException.class);
                FailureAnalysis analysis = new ModelLoadFailureAnalyzer().analyze(context.getStartupFailure());
                print("corrupt target", analysis);
                assertThat(analysis.getDescription()).contains("Property: specula.target.location",
                        target.resolve("model.onnx").toString(), "corrupt");
                assertThat(analysis.getAction()).contains("python -m specula_tools export");
            });
    }

    @Test
    void draftWithAnotherVocabulary(@TempDir Path temp) {
        Path draft = TestModels.draftWithExtraToken(temp);
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.draft.location=" + draft)
            .run((context) -> {
                assertThat(context).hasFailed();
                VocabularyMismatchException cause = SpeculaPropertiesValidationTests
                    .findCause(context.getStartupFailure(), VocabularyMismatchException.class);
                assertThat(cause).isNotNull();
                FailureAnalysis analysis = new VocabularyMismatchFailureAnalyzer().analyze(context.getStartupFailure());
                print("vocabulary mismatch", analysis);
                assertThat(analysis.getDescription()).contains(
                        "Target: " + TestModels.pair().target() + " (" + cause.getTargetVocabularySize() + " tokens",
                        "Draft:  " + draft + " (" + (cause.getTargetVocabularySize() + 1) + " tokens");
                assertThat(analysis.getAction()).contains("same tokenizer", "specula.draft.location",
                        "specula.draft.enabled=false");
            });
    }

    @Test
    void missingGriffinDirectory() {
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.griffin.location=/nonexistent/griffin")
            .run((context) -> {
                assertThat(context).hasFailed();
                FailureAnalysis analysis = new ModelLoadFailureAnalyzer().analyze(context.getStartupFailure());
                print("missing feature head", analysis);
                assertThat(analysis.getDescription()).contains("Property: specula.griffin.location",
                        "Path: /nonexistent/griffin", "does not exist");
                assertThat(analysis.getAction()).contains("Point specula.griffin.location at a GRIFFIN feature head",
                        "python -m specula_tools train-griffin", "specula.griffin.enabled=false");
            });
    }

    @ParameterizedTest(name = "draft too: {0}")
    @ValueSource(booleans = { false, true })
    void aDraftModelAsTheFeatureHead(boolean alsoTheDraft) {
        // with the draft's own directory given for both, the head is still the one at
        // fault
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.griffin.location=" + TestModels.pair().draft())
            .withPropertyValues(
                    alsoTheDraft ? "specula.draft.location=" + TestModels.pair().draft() : "specula.draft.enabled=true")
            .run((context) -> {
                assertThat(context).hasFailed();
                FailureAnalysis analysis = new ModelLoadFailureAnalyzer().analyze(context.getStartupFailure());
                print("draft as feature head", analysis);
                assertThat(analysis.getDescription()).contains("Property: specula.griffin.location",
                        TestModels.pair().draft().toString(), "is not a feature head");
                assertThat(analysis.getAction()).contains("python -m specula_tools train-griffin");
            });
    }

    @Test
    void aFeatureHeadWithAnotherVocabulary(@TempDir Path temp) throws Exception {
        Path head = TestModels.featureHead(temp);
        java.nio.file.Files.copy(TestModels.draftWithExtraToken(temp).resolve("tokenizer.json"),
                head.resolve("tokenizer.json"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.griffin.location=" + head)
            .run((context) -> {
                assertThat(context).hasFailed();
                // the draft's analyzer, which names specula.draft.location, does not
                // claim it
                assertThat(new VocabularyMismatchFailureAnalyzer().analyze(context.getStartupFailure())).isNull();
                FailureAnalysis analysis = new ModelLoadFailureAnalyzer().analyze(context.getStartupFailure());
                print("feature head with another vocabulary", analysis);
                assertThat(analysis.getDescription()).contains("Property: specula.griffin.location",
                        head.resolve("tokenizer.json").toString(), "does not share the target's vocabulary");
            });
    }

    @Test
    void aFeatureHeadAsTheDraftOrTheTarget(@TempDir Path temp) {
        Path head = TestModels.featureHead(temp);
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.draft.location=" + head, "specula.griffin.location=" + head)
            .run((context) -> {
                assertThat(context).hasFailed();
                FailureAnalysis analysis = new ModelLoadFailureAnalyzer().analyze(context.getStartupFailure());
                print("feature head as draft", analysis);
                assertThat(analysis.getDescription()).contains("Property: specula.draft.location", "is a feature head",
                        "load it as the head (specula.griffin.location");
            });
        runner.withPropertyValues("specula.target.location=" + head).run((context) -> {
            assertThat(context).hasFailed();
            FailureAnalysis analysis = new ModelLoadFailureAnalyzer().analyze(context.getStartupFailure());
            assertThat(analysis.getDescription()).contains("Property: specula.target.location", "is a feature head");
        });
    }

    @Test
    void aFeatureHeadOfAnotherWidth(@TempDir Path temp) {
        Path head = TestModels.featureHead(temp.resolve("narrow-griffin"), 256);
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.griffin.location=" + head)
            .run((context) -> {
                assertThat(context).hasFailed();
                FailureAnalysis analysis = new ModelLoadFailureAnalyzer().analyze(context.getStartupFailure());
                print("feature head of another width", analysis);
                assertThat(analysis.getDescription()).contains("Property: specula.griffin.location",
                        "hidden states of width 256", "width 384", "train the head on this target");
            });
    }

    @Test
    void cudaWithoutTheGpuRuntime() {
        runner.withPropertyValues("specula.runtime.provider=CUDA").run((context) -> {
            assertThat(context).hasFailed();
            assertThat(SpeculaPropertiesValidationTests.findCause(context.getStartupFailure(),
                    ExecutionProviderUnavailableException.class))
                .isNotNull();
            FailureAnalysis analysis = new ExecutionProviderUnavailableFailureAnalyzer()
                .analyze(context.getStartupFailure());
            print("CUDA unavailable", analysis);
            assertThat(analysis.getDescription()).contains("CUDA execution provider is not available",
                    "specula.runtime.provider=CUDA");
            assertThat(analysis.getAction()).contains("com.microsoft.onnxruntime:onnxruntime_gpu:1.29.0",
                    "specula.runtime.provider=CPU");
        });
    }

    @Test
    void invalidValue() {
        runner.withPropertyValues("specula.policy.gamma=0").run((context) -> {
            assertThat(context).hasFailed();
            InvalidConfigurationPropertyValueException cause = SpeculaPropertiesValidationTests
                .findCause(context.getStartupFailure(), InvalidConfigurationPropertyValueException.class);
            assertThat(cause.getName()).isEqualTo("specula.policy.gamma");
            assertThat(cause.getValue()).isEqualTo(0);
            assertThat(cause.getReason()).isEqualTo("It must be an integer from 1 to 64.");
        });
    }

    @Test
    void invalidPolicyOptionNamesTheOptionsProperty() {
        runner.withPropertyValues("specula.policy.name=confidence", "specula.policy.options.threshold=2")
            .run((context) -> {
                assertThat(context).hasFailed();
                InvalidConfigurationPropertyValueException cause = SpeculaPropertiesValidationTests
                    .findCause(context.getStartupFailure(), InvalidConfigurationPropertyValueException.class);
                assertThat(cause.getName()).isEqualTo("specula.policy.options.threshold");
                assertThat(cause.getValue()).isEqualTo("2");
                assertThat(cause.getReason()).isEqualTo("It must be in [0.0, 1.0] for policy 'confidence'.");
            });
    }

    @Test
    void inconsistentPolicyOptionsNameTheOptionAtFault() {
        runner
            .withPropertyValues("specula.policy.name=gammatune", "specula.policy.options.min=6",
                    "specula.policy.options.max=4")
            .run((context) -> {
                assertThat(context).hasFailed();
                InvalidConfigurationPropertyValueException cause = SpeculaPropertiesValidationTests
                    .findCause(context.getStartupFailure(), InvalidConfigurationPropertyValueException.class);
                assertThat(cause.getName()).isEqualTo("specula.policy.options.min");
                assertThat(cause.getValue()).isEqualTo("6");
                assertThat(cause.getReason()).contains("<= max (4)", "policy 'gammatune'");
            });
    }

    @Test
    void unknownPolicy() {
        runner.withPropertyValues("specula.policy.name=speedy").run((context) -> {
            assertThat(context).hasFailed();
            FailureAnalysis analysis = new UnknownPolicyFailureAnalyzer().analyze(context.getStartupFailure());
            print("unknown policy", analysis);
            assertThat(analysis.getDescription()).contains("Property: specula.policy.name", "Value: speedy");
            assertThat(analysis.getAction()).contains(
                    "Set specula.policy.name to one of " + String.join(", ", SpeculationPolicies.names()),
                    "specula.policy.gamma");
        });
    }

    @Test
    void analyzersAreRegisteredMostSpecificFirst() throws Exception {
        List<FailureAnalyzer> analyzers = registeredAnalyzers();
        assertThat(analyzers).extracting((analyzer) -> analyzer.getClass().getSimpleName())
            .containsExactly("PropertyGroupGivenAValueFailureAnalyzer", "UnknownPolicyFailureAnalyzer",
                    "VocabularyMismatchFailureAnalyzer", "ExecutionProviderUnavailableFailureAnalyzer",
                    "ModelLoadFailureAnalyzer");
        // a bad value (here: ldlp.onnx missing for specula.policy.name=ldlp) is left to
        // Boot's own analyzer
        Throwable invalid = new IllegalStateException(new InvalidConfigurationPropertyValueException(
                "specula.policy.name", "ldlp", "It must be a policy whose files are present (ldlp.onnx missing)."));
        assertThat(analyzers).allSatisfy((analyzer) -> assertThat(analyzer.analyze(invalid)).isNull());
        assertThat(new ModelLoadFailureAnalyzer().analyze(new ModelLoadException(Path.of("ldlp.onnx"), "missing")))
            .isNotNull();
    }

    /**
     * The real path: SpringApplication reports through the analyzers registered in
     * spring.factories.
     */
    @Test
    void springApplicationPrintsTheAnalysis(CapturedOutput output) {
        SpringApplication application = new SpringApplication(FailingApplication.class);
        application.setWebApplicationType(WebApplicationType.NONE);
        assertThatThrownBy(() -> application.run("--specula.chat.options.top-p=1.5", "--spring.main.banner-mode=off"))
            .hasRootCauseInstanceOf(InvalidConfigurationPropertyValueException.class);
        System.out.println("=== APPLICATION FAILED TO START output ===\n" + output.getOut());
        assertThat(output).contains("APPLICATION FAILED TO START", "specula.chat.options.top-p", "'1.5'",
                "It must be a number in (0, 1]", "Action:");
    }

    /**
     * {@code specula.target=DIR} (the group given a value, as
     * {@code --specula.target=DIR} on a command line): Boot alone says only that no
     * converter was found; the analysis names the property to set instead.
     */
    @ParameterizedTest
    @ValueSource(strings = { "target", "draft", "griffin" })
    void aModelDirectoryGivenToTheGroupNamesItsLocationProperty(String model, CapturedOutput output) {
        SpringApplication application = new SpringApplication(FailingApplication.class);
        application.setWebApplicationType(WebApplicationType.NONE);
        assertThatThrownBy(
                () -> application.run("--specula." + model + "=/models/qwen2.5-0.5b", "--spring.main.banner-mode=off"))
            .isNotNull();
        System.out.println("=== APPLICATION FAILED TO START output ===\n" + output.getOut());
        assertThat(output).contains("APPLICATION FAILED TO START", "Property: specula." + model,
                "Value: /models/qwen2.5-0.5b", "Set specula." + model + ".location=/models/qwen2.5-0.5b instead.");
    }

    private static List<FailureAnalyzer> registeredAnalyzers() throws Exception {
        List<FailureAnalyzer> analyzers = new ArrayList<>();
        for (URL url : Collections
            .list(SpeculaFailureAnalyzersTests.class.getClassLoader().getResources("META-INF/spring.factories"))) {
            Properties factories = PropertiesLoaderUtils.loadProperties(new UrlResource(url));
            String names = factories.getProperty(FailureAnalyzer.class.getName(), "");
            if (!names.contains("dev.specula")) {
                continue;
            }
            for (String name : names.split(",")) {
                Class<?> type = Class.forName(name.trim());
                // an analyzer that reads the environment gets it as SpringApplication
                // gives it
                analyzers.add((FailureAnalyzer) (type.getConstructors()[0].getParameterCount() == 0
                        ? type.getDeclaredConstructor().newInstance()
                        : type.getDeclaredConstructor(Environment.class).newInstance(new StandardEnvironment())));
            }
        }
        return analyzers;
    }

    private static void print(String what, FailureAnalysis analysis) {
        assertThat(analysis).as(what).isNotNull();
        System.out.println("=== " + what + " ===\nDescription:\n\n" + analysis.getDescription() + "\n\nAction:\n\n"
                + analysis.getAction() + "\n");
    }

    @Configuration(proxyBeanMethods = false)
    @ImportAutoConfiguration({ SpeculaModelsAutoConfiguration.class, SpeculaServingAutoConfiguration.class,
            SpeculaChatAutoConfiguration.class })
    static class FailingApplication {

    }

}
