package dev.specula.engine;

import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.model.MatMulKernels;
import dev.specula.model.RuntimeOptions;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.tokenizer.PromptEncoder;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every Optimum-layout variant the loader claims decodes token-identically to
 * transformers: random-init Llama, Qwen2 (GQA, tied embeddings), GPT-2, Llama with a
 * float16 KV cache, Qwen3 (q/k norms), Llama with {@code rope_type: llama3}, Mistral
 * (16-token sliding window), Phi-3 (fused projections, 16-token window) and Gemma-2/3
 * (sliding layers alternating with full ones, soft-capping), exported by tools/, with
 * transformers' tokenization and greedy ids committed beside them (reference.json);
 * end-of-sequence ignored as the references were made without it. Float32 MatMuls on ONNX
 * Runtime's kernels and on Specula's.
 */
class ReferenceDecodingTest {

    static Stream<Arguments> familiesAndKernels() {
        return Stream
            .of("llama", "qwen2", "gpt2", "llama-fp16", "qwen3", "llama3", "mistral", "phi3", "gemma2", "gemma3",
                    "llama-fused", "qwen2-fused", "qwen3-fused", "llama-fused-packed", "mistral-fused", "gemma2-fused",
                    "gemma3-fused", "gpt2-fused")
            .flatMap((family) -> Stream.of(MatMulKernels.ONNX_RUNTIME, MatMulKernels.SPECULA)
                .map((kernels) -> Arguments.of(family, kernels)));
    }

    /**
     * On ONNX Runtime's MatMul and on Specula's kernels (the float16 fixture has no
     * float32 MatMul: ONNX Runtime's either way).
     */
    @ParameterizedTest
    @MethodSource("familiesAndKernels")
    void plainAndSpeculativeGreedyMatchTransformers(String family, MatMulKernels kernels) {
        JsonNode reference = Fixtures.json(Fixtures.model(family).resolve("reference.json"));
        RuntimeOptions options = RuntimeOptions.defaults().withKernels(kernels);
        try (ModelPair models = new ModelPair(DecoderModel.load(Fixtures.model(family), options),
                DecoderModel.load(Fixtures.model(family), options))) {
            assertThat(models.target().kernelsInUse())
                .isEqualTo(family.equals("llama-fp16") ? MatMulKernels.ONNX_RUNTIME : kernels);
            DecoderModel target = models.target();
            PromptEncoder encoder = new PromptEncoder(target.tokenizer(), target.chatTemplate(), family);
            SpeculativeDecoder decoder = new SpeculativeDecoder(models);
            for (JsonNode testCase : reference.path("cases")) {
                int[] promptIds = encoder.text(testCase.path("prompt").asText());
                assertThat(promptIds).as("prompt ids of %s", testCase.path("prompt"))
                    .containsExactly(Fixtures.ints(testCase.path("prompt_ids")));
                int[] expected = Fixtures.ints(testCase.path("greedy_ids"));

                GenerationResult plain = decoder.generate(GenerationRequest.builder(promptIds)
                    .maxNewTokens(expected.length)
                    .ignoreEos(true)
                    .policy(PlainPolicy::new)
                    .build());
                assertThat(plain.tokenIds()).as("plain greedy ids of %s", testCase.path("prompt"))
                    .containsExactly(expected);

                // the model drafting for itself: every draft is accepted, output
                // unchanged
                GenerationResult speculative = decoder.generate(GenerationRequest.builder(promptIds)
                    .maxNewTokens(expected.length)
                    .ignoreEos(true)
                    .policy(() -> new FixedPolicy(3))
                    .build());
                assertThat(speculative.tokenIds()).containsExactly(expected);
                assertThat(speculative.stats().accepted()).isEqualTo(speculative.stats().drafted());
                // reference text is decode(ids, skip_special_tokens=False); the output
                // text skips special tokens
                assertThat(target.tokenizer().decode(plain.tokenIds(), false))
                    .isEqualTo(testCase.path("text").asText());
                assertThat(plain.text()).isEqualTo(target.tokenizer().decode(plain.tokenIds(), true));
            }
        }
    }

    /**
     * A 16-token sliding window with rollback holes: Mistral and Phi-3 (window on every
     * layer), Gemma-2 and Gemma-3 (sliding layers alternating with full ones). A random
     * 1-layer draft of the same family ({@code <family>-draft}) is mostly rejected, so
     * rejected tokens stay in both KV caches as masked slots inside the window; the
     * window must count logical positions (visible slots), not physical slots. Prompts up
     * to 119 tokens (7 windows) + 20 new tokens. A graph whose window counts physical
     * slots fails it for Mistral, Phi-3 and Gemma-2 (the Gemma fixtures are untied: with
     * random tied embeddings every greedy path repeated one token, which any window sees
     * alike). The same for the fused graphs of Mistral and the Gemmas (the window as an
     * attention bias), with the torch.onnx drafts.
     */
    @ParameterizedTest
    @CsvSource({ "mistral, mistral", "phi3, phi3", "gemma2, gemma2", "gemma3, gemma3", "mistral-fused, mistral",
            "gemma2-fused, gemma2", "gemma3-fused, gemma3" })
    void slidingWindowWithRollbackHolesMatchesTransformers(String family, String draftFamily) {
        JsonNode reference = Fixtures.json(Fixtures.model(family).resolve("reference.json"));
        int window = reference.path("sliding_window").asInt();
        assertThat(window).isEqualTo(16);
        int longest = 0;
        for (JsonNode testCase : reference.path("cases")) {
            longest = Math.max(longest, testCase.path("prompt_ids").size());
        }
        try (ModelPair models = new ModelPair(Fixtures.load(family), Fixtures.load(draftFamily + "-draft"))) {
            long rejected = ReferenceCases.decodeToReference(models, family, 3, 6);
            assertThat(longest).as("%s: longest prompt", family).isGreaterThan(3 * window);
            // rejections happened, so the caches held holes
            assertThat(rejected).as("%s: rejected draft tokens", family).isGreaterThan(50);
        }
    }

}
