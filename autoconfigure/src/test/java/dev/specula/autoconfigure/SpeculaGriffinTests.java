package dev.specula.autoconfigure;

import java.nio.file.Path;
import java.util.Optional;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyValueException;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;

import dev.specula.autoconfigure.SpeculaModelsAutoConfiguration.ModelLocationsResolved;
import dev.specula.chat.SpeculaChatModel;
import dev.specula.chat.SpeculaChatOptions;
import dev.specula.engine.ModelPair;
import dev.specula.models.tiny.TinyModels;
import dev.specula.serving.GenerationService;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The GRIFFIN feature head ({@code specula.griffin.*}): loaded from its location (a
 * stand-in head for the embedded target, {@link FeatureHeadGraph}, or the embedded pair's
 * own when it ships one), drafting as proposer {@code griffin} by property, by request
 * and in trees, and reported in the startup line. Its failures are in
 * {@link SpeculaFailureAnalyzersTests} and {@link SpeculaPropertiesValidationTests}.
 */
@ExtendWith(OutputCaptureExtension.class)
class SpeculaGriffinTests {

    private static final String PROMPT = SpeculaAutoConfigurationTests.PROMPT;

    @TempDir
    static Path models;

    private static Path head;

    private static String plainText;

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
        .withConfiguration(AutoConfigurations.of(TestModels.AUTO_CONFIGURATIONS))
        .withPropertyValues("specula.chat.options.max-tokens=16", "specula.cache.response.enabled=false",
                "specula.resilience.goodput.enabled=false");

    @BeforeAll
    static void standInHead() {
        head = TestModels.featureHead(models);
    }

    /** The target's own answer to {@link #PROMPT}, decoded plainly. */
    private String plainText() {
        if (plainText == null) {
            runner.withPropertyValues("specula.chat.options.speculation=false")
                .run((context) -> plainText = text(context.getBean(SpeculaChatModel.class).call(new Prompt(PROMPT))));
        }
        return plainText;
    }

    @Test
    void aHeadAloneDraftsByDefault(CapturedOutput output) {
        String expected = plainText();
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.griffin.location=file:" + head)
            .run((context) -> {
                assertThat(context).hasNotFailed();
                ModelLocationsResolved locations = context.getBean(ModelLocationsResolved.class);
                assertThat(locations.draft()).isNull();
                assertThat(locations.head()).isEqualTo(head);
                ModelPair pair = context.getBean(GenerationService.class).models().get();
                assertThat(pair.head()).isPresent();
                ChatResponse response = context.getBean(SpeculaChatModel.class).call(new Prompt(PROMPT));
                assertDraftedByTheHead(response);
                assertThat(text(response)).isEqualTo(expected);
                String line = output.getOut()
                    .lines()
                    .filter((l) -> l.contains("Specula loaded its models"))
                    .reduce((first, last) -> last)
                    .orElseThrow(() -> new AssertionError("no INFO line about the loaded models in:\n" + output));
                assertThat(line).contains("; no draft; GRIFFIN feature head " + head.resolve("model.onnx"),
                        "(griffin_head, ", "policy fixed (gamma 4)");
            });
    }

    @Test
    void theProposerGriffinIsChosenByPropertyOrByRequest() {
        String expected = plainText();
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.draft.location=" + TestModels.pair().draft(), "specula.griffin.location=" + head,
                    "specula.policy.proposer=griffin")
            .run((context) -> {
                SpeculaChatModel chatModel = context.getBean(SpeculaChatModel.class);
                ChatResponse byDefault = chatModel.call(new Prompt(PROMPT));
                ChatResponse byModel = chatModel
                    .call(new Prompt(PROMPT, SpeculaChatOptions.builder().proposer("model").build()));
                assertDraftedByTheHead(byDefault);
                assertThat((String) byModel.getMetadata().get(SpeculaChatModel.METADATA_PROPOSER)).isEqualTo("model");
                assertThat(text(byDefault)).isEqualTo(expected);
                assertThat(text(byModel)).isEqualTo(expected);
            });
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.draft.location=" + TestModels.pair().draft(), "specula.griffin.location=" + head)
            .run((context) -> {
                SpeculaChatModel chatModel = context.getBean(SpeculaChatModel.class);
                ChatResponse byDefault = chatModel.call(new Prompt(PROMPT));
                ChatResponse byGriffin = chatModel
                    .call(new Prompt(PROMPT, SpeculaChatOptions.builder().proposer("griffin").build()));
                // with a draft, the draft model is the default
                assertThat((String) byDefault.getMetadata().get(SpeculaChatModel.METADATA_PROPOSER)).isEqualTo("model");
                assertDraftedByTheHead(byGriffin);
                assertThat(text(byGriffin)).isEqualTo(expected);
            });
    }

    @Test
    void theHeadDraftsTrees() {
        String expected = plainText();
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.draft.location=" + TestModels.pair().draft(), "specula.griffin.location=" + head,
                    "specula.policy.proposer=griffin", "specula.policy.draft-shape=tree", "specula.policy.tree-nodes=6")
            .run((context) -> {
                assertThat(context).hasNotFailed();
                GenerationService service = context.getBean(GenerationService.class);
                assertThat(service.policySettings().tree()).hasToString("tree(width 3, nodes 6)");
                ChatResponse response = context.getBean(SpeculaChatModel.class).call(new Prompt(PROMPT));
                assertDraftedByTheHead(response);
                assertThat(text(response)).isEqualTo(expected);
            });
    }

    @Test
    void theHeadDraftsNoTreeForAMaskGraphTarget() {
        // padded batching loads the target's mask graph (model.onnx)
        runner.withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                "specula.griffin.location=" + head, "specula.policy.draft-shape=tree", "specula.batching.path=padded")
            .run((context) -> {
                assertThat(context).hasFailed();
                InvalidConfigurationPropertyValueException cause = SpeculaPropertiesValidationTests
                    .findCause(context.getStartupFailure(), InvalidConfigurationPropertyValueException.class);
                assertThat(cause).as("cause chain of %s", context.getStartupFailure()).isNotNull();
                assertThat(cause.getName()).isEqualTo("specula.policy.draft-shape");
                assertThat(cause.getReason()).contains("the target's graph loaded",
                        TestModels.pair().target().resolve("model.onnx").toString(), "model_packed.onnx");
            });
    }

    @Test
    void aDisabledHeadIsNotLoaded() {
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.griffin.location=/nonexistent/griffin", "specula.griffin.enabled=false")
            .run((context) -> {
                assertThat(context).hasNotFailed();
                assertThat(context.getBean(ModelLocationsResolved.class).head()).isNull();
                assertThat(context.getBean(GenerationService.class).models().get().head()).isEmpty();
            });
        runner.withPropertyValues("specula.griffin.enabled=false").run((context) -> {
            assertThat(context.getBean(ModelLocationsResolved.class).embedded()).isTrue();
            assertThat(context.getBean(ModelLocationsResolved.class).head()).isNull();
        });
    }

    @Test
    void theEmbeddedPairsHeadIsLoadedWhenItShipsOne() {
        Optional<Path> embedded = TinyModels.extract().head();
        assumeTrue(embedded.isPresent(), "the embedded pair ships no GRIFFIN feature head (griffin/) yet");
        String expected = plainText();
        runner.run((context) -> {
            assertThat(context).hasNotFailed();
            ModelLocationsResolved locations = context.getBean(ModelLocationsResolved.class);
            assertThat(locations.head()).isEqualTo(embedded.get());
            assertThat(context.getBean(GenerationService.class).models().get().head()).isPresent();
            ChatResponse response = context.getBean(SpeculaChatModel.class)
                .call(new Prompt(PROMPT, SpeculaChatOptions.builder().proposer("griffin").build()));
            assertDraftedByTheHead(response);
            assertThat(text(response)).isEqualTo(expected);
        });
    }

    /** The head proposed every round's drafts: no fallback, drafts verified. */
    private static void assertDraftedByTheHead(ChatResponse response) {
        assertThat((String) response.getMetadata().get(SpeculaChatModel.METADATA_PROPOSER)).isEqualTo("griffin");
        assertThat((Boolean) response.getMetadata().get(SpeculaChatModel.METADATA_FALLBACK)).isFalse();
        assertThat(((Number) response.getMetadata().get(SpeculaChatModel.METADATA_DRAFTED)).longValue()).isPositive();
    }

    private static String text(ChatResponse response) {
        return response.getResult().getOutput().getText();
    }

}
