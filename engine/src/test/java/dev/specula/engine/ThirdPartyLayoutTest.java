package dev.specula.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.model.ModelLoadException;
import dev.specula.model.RuntimeOptions;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Exports in the layout Optimum and onnx-community publish ({@code onnx/model.onnx} under
 * the directory of config.json and the tokenizer; transformers' own 2D-mask path; merged
 * decoders with {@code use_cache_branch}), written by
 * {@code python -m specula_tools export-optimum --fixtures}: they load from the directory
 * or from the graph's path, and decode losslessly to transformers' greedy ids.
 */
class ThirdPartyLayoutTest {

    @ParameterizedTest
    @ValueSource(strings = { "optimum-qwen2", "optimum-qwen2-merged" })
    void optimumLayoutDecodesLikeTransformers(String name) {
        JsonNode reference = Fixtures.json(Fixtures.model(name).resolve("reference.json"));
        try (ModelPair models = new ModelPair(Fixtures.load(name), Fixtures.load(name))) {
            SpeculativeDecoder decoder = new SpeculativeDecoder(models);
            for (JsonNode testCase : reference.path("cases")) {
                int[] promptIds = Fixtures.ints(testCase.path("prompt_ids"));
                int[] expected = Fixtures.ints(testCase.path("greedy_ids"));
                GenerationResult plain = decoder.generate(GenerationRequest.builder(promptIds)
                    .maxNewTokens(expected.length)
                    .ignoreEos(true)
                    .policy(PlainPolicy::new)
                    .build());
                assertThat(plain.tokenIds()).as("plain greedy ids of %s", testCase.path("prompt"))
                    .containsExactly(expected);
                GenerationResult speculative = decoder.generate(GenerationRequest.builder(promptIds)
                    .maxNewTokens(expected.length)
                    .ignoreEos(true)
                    .policy(() -> new FixedPolicy(3))
                    .build());
                assertThat(speculative.tokenIds()).as("speculative greedy ids of %s", testCase.path("prompt"))
                    .containsExactly(expected);
            }
        }
    }

    @Test
    void theGraphsPathUnderOnnxFindsItsConfigOneLevelUp() {
        Path graph = Fixtures.model("optimum-qwen2").resolve("onnx").resolve("model.onnx");
        try (DecoderModel model = DecoderModel.load(graph, RuntimeOptions.defaults())) {
            assertThat(model.config().vocabSize()).isEqualTo(512);
        }
    }

    @Test
    void anInputTheEngineDoesNotFeedIsRefusedAtLoadByName() {
        assertThatThrownBy(() -> Fixtures.load("extra-input")).isInstanceOf(ModelLoadException.class)
            .hasMessageContaining("has an input 'token_type_ids' that Specula does not know how to feed");
    }

    @Test
    void aDirectoryWithSeveralGraphsAndNoModelOnnxAsksWhichOne(@TempDir Path temp) throws IOException {
        Path source = Fixtures.model("optimum-qwen2");
        Path copy = temp.resolve("community");
        Files.createDirectories(copy.resolve("onnx"));
        for (String file : new String[] { "config.json", "tokenizer.json", "tokenizer_config.json" }) {
            Files.copy(source.resolve(file), copy.resolve(file));
        }
        Files.copy(source.resolve("onnx/model.onnx"), copy.resolve("onnx/model_q4.onnx"));
        Files.copy(source.resolve("onnx/model.onnx"), copy.resolve("onnx/model_fp16.onnx"));

        assertThatThrownBy(() -> DecoderModel.load(copy, RuntimeOptions.defaults()))
            .isInstanceOf(ModelLoadException.class)
            .hasMessageContaining("onnx/model_fp16.onnx")
            .hasMessageContaining("onnx/model_q4.onnx")
            .hasMessageContaining("file");
    }

}
