package dev.specula.model;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import dev.specula.Fixtures;
import dev.specula.engine.ModelPair;
import dev.specula.engine.VocabularyMismatchException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** What the loader reads from a graph, and the errors for bad model directories. */
class ModelLoadingTest {

    @TempDir
    Path temp;

    @Test
    void introspectsTheGraph() {
        try (DecoderModel llama = Fixtures.load("llama");
                DecoderModel qwen = Fixtures.load("qwen2");
                DecoderModel fp16 = Fixtures.load("llama-fp16");
                DecoderModel gpt2 = Fixtures.load("gpt2")) {
            assertThat(llama.signature().kvType()).isEqualTo(ai.onnxruntime.OnnxJavaType.FLOAT);
            assertThat(llama.signature().hasPositionIds()).isTrue();
            assertThat(llama.signature().hasAttentionMask()).isTrue();
            assertThat(llama.logitsWidth()).isEqualTo(llama.config().vocabSize());
            var qwenConfig = Fixtures.json(Fixtures.model("qwen2").resolve("config.json"));
            assertThat(qwen.signature().kvHeads()).isEqualTo(qwenConfig.path("num_key_value_heads").asInt())
                // grouped-query attention
                .isLessThan(qwenConfig.path("num_attention_heads").asInt());
            assertThat(qwen.signature().layers()).isEqualTo(qwenConfig.path("num_hidden_layers").asInt());
            assertThat(fp16.signature().kvType()).isEqualTo(ai.onnxruntime.OnnxJavaType.FLOAT16);
            assertThat(gpt2.config().modelType()).isEqualTo("gpt2");
            assertThat(gpt2.contextLength()).isPositive();
        }
    }

    @Test
    void acceptsTheModelFilePathAsWellAsItsDirectory() {
        try (DecoderModel model = DecoderModel.load(Fixtures.model("llama").resolve("model.onnx"),
                RuntimeOptions.defaults())) {
            assertThat(model.files().directory()).isEqualTo(Fixtures.model("llama"));
        }
    }

    @Test
    void missingDirectoryNamesThePath() {
        Path missing = temp.resolve("no-such-model");
        assertThatThrownBy(() -> DecoderModel.load(missing, RuntimeOptions.defaults()))
            .isInstanceOf(ModelLoadException.class)
            .hasMessageContaining(missing.toString())
            .hasMessageContaining("does not exist");
    }

    @Test
    void missingModelFileNamesThePath() throws Exception {
        Path copy = Fixtures.copyOf("llama", temp);
        Files.delete(copy.resolve("model.onnx"));
        assertThatThrownBy(() -> DecoderModel.load(copy, RuntimeOptions.defaults()))
            .isInstanceOf(ModelLoadException.class)
            .hasMessageContaining(copy.resolve("model.onnx").toString())
            .hasMessageContaining("specula_tools export");
    }

    @Test
    void corruptModelFileNamesThePath() throws Exception {
        Path copy = Fixtures.copyOf("llama", temp);
        Path model = copy.resolve("model.onnx");
        byte[] bytes = Files.readAllBytes(model);
        Files.write(model, java.util.Arrays.copyOf(bytes, bytes.length / 3));
        assertThatThrownBy(() -> DecoderModel.load(copy, RuntimeOptions.defaults()))
            .isInstanceOf(ModelLoadException.class)
            .hasMessageContaining(model.toString())
            .hasMessageContaining("corrupt");
    }

    @Test
    void corruptTokenizerNamesThePath() throws Exception {
        Path copy = Fixtures.copyOf("llama", temp);
        Files.writeString(copy.resolve("tokenizer.json"), "{ not json");
        assertThatThrownBy(() -> DecoderModel.load(copy, RuntimeOptions.defaults()))
            .isInstanceOf(ModelLoadException.class)
            .hasMessageContaining(copy.resolve("tokenizer.json").toString());
    }

    @Test
    void unsupportedFamilyIsRefusedByName() throws Exception {
        Path copy = Fixtures.copyOf("llama", temp);
        Path config = copy.resolve("config.json");
        Files.writeString(config,
                Files.readString(config).replace("\"model_type\": \"llama\"", "\"model_type\": \"mamba\""));
        assertThatThrownBy(() -> DecoderModel.load(copy, RuntimeOptions.defaults()))
            .isInstanceOf(ModelLoadException.class)
            .hasMessageContaining(config.toString())
            .hasMessageContaining("model_type \"mamba\"")
            .hasMessageContaining(
                    "supported model_type values: gemma2, gemma3_text, gpt2, llama, mistral, phi3, qwen2, qwen3")
            .hasMessageContaining("mistral");
    }

    @Test
    void unavailableCudaNamesTheArtifact() {
        RuntimeOptions cuda = RuntimeOptions.defaults().withProvider(ExecutionProvider.CUDA, 0);
        assertThatThrownBy(() -> DecoderModel.load(Fixtures.model("llama"), cuda))
            .isInstanceOf(ExecutionProviderUnavailableException.class)
            .hasMessageContaining("com.microsoft.onnxruntime:onnxruntime_gpu");
    }

    @Test
    void vocabularyMismatchNamesBothSizes() throws Exception {
        Path copy = Fixtures.copyOf("llama", temp);
        Path tokenizer = copy.resolve("tokenizer.json");
        // one more added token: the draft's tokenizer has 513 ids where the target's has
        // 512
        String json = Files.readString(tokenizer);
        int vocabulary;
        try (DecoderModel original = Fixtures.load("llama")) {
            vocabulary = original.tokenizer().vocabularySize();
        }
        String added = "{\"id\": " + vocabulary
                + ", \"content\": \"<|extra|>\", \"single_word\": false, \"lstrip\": false, "
                + "\"rstrip\": false, \"normalized\": false, \"special\": true}";
        Files.writeString(tokenizer,
                json.replaceFirst("\"added_tokens\"\\s*:\\s*\\[", "\"added_tokens\": [" + added + ","));
        assertThatThrownBy(() -> ModelPair.load(Fixtures.model("llama"), copy, RuntimeOptions.defaults()))
            .isInstanceOf(VocabularyMismatchException.class)
            .hasMessageContaining("has " + vocabulary + " tokens")
            .hasMessageContaining("has " + (vocabulary + 1) + " tokens")
            .hasMessageContaining(Fixtures.model("llama").toString())
            .hasMessageContaining(copy.toString());
    }

}
