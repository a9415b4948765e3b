package dev.specula.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

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
        try (ModelPair models = new ModelPair(Fixtures.load(name), Fixtures.load(name))) {
            ReferenceCases.decodeToReference(models, name, 3);
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
    void aGraphThatSeesMaskedHolesRollsBackByCopyAndStaysLossless() throws Exception {
        // length-only-mask reads only lengths from attention_mask (as GroupQueryAttention
        // graphs do): exact over a compact cache, wrong over rolled-back holes
        JsonNode reference = Fixtures.json(Fixtures.model("length-only-mask").resolve("reference.json"));
        try (ModelPair models = new ModelPair(Fixtures.load("length-only-mask"), Fixtures.load("qwen2"))) {
            assertThat(models.target().holesAreExact()).isFalse();
            assertThat(models.draft().orElseThrow().holesAreExact()).isTrue();
            assertThat(ReferenceCases.decodeToReference(models, "length-only-mask", 4))
                .as("draft tokens rejected (holes the fallback must not leave)")
                .isPositive();

            // batched: rows would be padded with holes, so this model is stepped one
            // sequence at a time
            try (Engine engine = new Engine(models,
                    new Engine.Settings(8, 64, Duration.ofMillis(20), Duration.ofSeconds(30)))) {
                List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
                for (JsonNode testCase : reference.path("cases")) {
                    futures.add(engine.submit(GenerationRequest.builder(Fixtures.ints(testCase.path("prompt_ids")))
                        .maxNewTokens(Fixtures.ints(testCase.path("greedy_ids")).length)
                        .ignoreEos(true)
                        .policy(() -> new FixedPolicy(4))
                        .build()));
                }
                int i = 0;
                for (JsonNode testCase : reference.path("cases")) {
                    assertThat(futures.get(i++).get(60, TimeUnit.SECONDS).tokenIds())
                        .as("batched ids of %s", testCase.path("prompt"))
                        .containsExactly(Fixtures.ints(testCase.path("greedy_ids")));
                }
            }
        }
    }

    @Test
    void aGroupQueryAttentionGraphLoadsAndIsDecodedWithoutHoles() {
        // ONNX Runtime GenAI's interface: no position_ids; seqlens_k and the total length
        // come from attention_mask inside the graph (python -m specula_tools.gqa_fixture)
        try (ModelPair models = new ModelPair(Fixtures.load("gqa"), Fixtures.load("qwen2"))) {
            assertThat(models.target().holesAreExact()).isFalse();
            assertThat(ReferenceCases.decodeToReference(models, "gqa", 4)).as("draft tokens rejected").isPositive();
        }
    }

    @Test
    void graphsThatKeepHolesMaskedKeepCheapRollback() {
        try (DecoderModel ours = Fixtures.load("qwen2"); DecoderModel optimum = Fixtures.load("optimum-qwen2")) {
            assertThat(ours.holesAreExact()).isTrue();
            assertThat(optimum.holesAreExact()).isTrue();
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
