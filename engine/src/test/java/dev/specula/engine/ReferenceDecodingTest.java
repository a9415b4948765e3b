package dev.specula.engine;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.tokenizer.PromptEncoder;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every Optimum-layout variant the loader claims decodes token-identically to
 * transformers: random-init Llama, Qwen2 (GQA, tied embeddings), GPT-2, and Llama with a
 * float16 KV cache, exported by tools/, with transformers' tokenization and greedy ids
 * committed beside them (reference.json); end-of-sequence ignored as the references were
 * made without it.
 */
class ReferenceDecodingTest {

    @ParameterizedTest
    @ValueSource(strings = { "llama", "qwen2", "gpt2", "llama-fp16" })
    void plainAndSpeculativeGreedyMatchTransformers(String family) {
        JsonNode reference = Fixtures.json(Fixtures.model(family).resolve("reference.json"));
        try (ModelPair models = new ModelPair(Fixtures.load(family), Fixtures.load(family))) {
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

}
