package dev.specula.autoconfigure;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;

import dev.specula.autoconfigure.SpeculaModelsAutoConfiguration.ModelLocationsResolved;
import dev.specula.serving.GenerationService;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code specula.target.file} / {@code specula.draft.file} choose one graph of a
 * directory in onnx-community's layout ({@code onnx/model.onnx},
 * {@code onnx/model_fp16.onnx}, {@code onnx/model_q4.onnx}, ...).
 */
class ModelFilePropertyTests {

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
        .withConfiguration(AutoConfigurations.of(TestModels.AUTO_CONFIGURATIONS))
        .withPropertyValues("specula.chat.options.max-tokens=8");

    @TempDir
    Path temp;

    @Test
    void theFilePropertyChoosesAGraphUnderTheLocation() throws IOException {
        Path community = communityLayout();
        runner
            .withPropertyValues("specula.target.location=" + community, "specula.target.file=onnx/model_fp16.onnx",
                    "specula.draft.enabled=false")
            .run((context) -> {
                assertThat(context).hasNotFailed();
                ModelLocationsResolved locations = context.getBean(ModelLocationsResolved.class);
                assertThat(locations.target()).isEqualTo(community.resolve("onnx/model_fp16.onnx"));
                assertThat(locations.modelName()).isEqualTo("community");
                assertThat(context.getBean(GenerationService.class).models().get().target().config().vocabSize())
                    .isEqualTo(4096);
            });
    }

    @Test
    void withoutTheFilePropertyOnnxModelOnnxIsTheDefault() throws IOException {
        Path community = communityLayout();
        runner.withPropertyValues("specula.target.location=" + community, "specula.draft.enabled=false")
            .run((context) -> assertThat(context).hasNotFailed());
    }

    @Test
    void aFileThatIsNotThereIsRefusedNamingThePropertyAndTheGraphsThatAre() throws IOException {
        Path community = communityLayout();
        runner
            .withPropertyValues("specula.target.location=" + community, "specula.target.file=onnx/model_q4.onnx",
                    "specula.draft.enabled=false")
            .run((context) -> assertThat(context).hasFailed()
                .getFailure()
                .rootCause()
                .hasMessageContaining("specula.target.file")
                .hasMessageContaining("onnx/model_q4.onnx")
                .hasMessageContaining("onnx/model.onnx, onnx/model_fp16.onnx"));
    }

    @Test
    void aFileOutsideTheLocationIsRefused() throws IOException {
        Path community = communityLayout();
        runner
            .withPropertyValues("specula.target.location=" + community, "specula.target.file=../other/model.onnx",
                    "specula.draft.enabled=false")
            .run((context) -> assertThat(context).hasFailed()
                .getFailure()
                .rootCause()
                .hasMessageContaining("specula.target.file")
                .hasMessageContaining("a relative path to an .onnx file inside the model location"));
    }

    @Test
    void aFileWithoutALocationIsRefused() {
        runner.withPropertyValues("specula.draft.file=onnx/model.onnx")
            .run((context) -> assertThat(context).hasFailed()
                .getFailure()
                .rootCause()
                .hasMessageContaining("specula.draft.file")
                .hasMessageContaining("specula.draft.location"));
    }

    /**
     * The embedded target rearranged as onnx-community publishes models: config and
     * tokenizer at the top, graphs (two names for the same graph here) in onnx/.
     */
    private Path communityLayout() throws IOException {
        Path target = TestModels.pair().target();
        Path community = Files.createDirectories(temp.resolve("community"));
        Path graphs = Files.createDirectories(community.resolve("onnx"));
        for (String file : new String[] { "config.json", "generation_config.json", "tokenizer.json",
                "tokenizer_config.json", "chat_template.jinja" }) {
            Files.copy(target.resolve(file), community.resolve(file));
        }
        Files.copy(target.resolve("model.onnx"), graphs.resolve("model.onnx"));
        Files.copy(target.resolve("model.onnx"), graphs.resolve("model_fp16.onnx"));
        Files.copy(target.resolve("model.onnx_data"), graphs.resolve("model.onnx_data"));
        return community;
    }

}
