package dev.specula.engine;

import java.util.function.Supplier;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.SpeculationPolicy;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A 2,000-token prompt on a model with Qwen2.5's vocabulary (the {@code qwen-vocab}
 * fixture): plain and speculative decoding give transformers' greedy ids, with the graph
 * that keeps only the logits it is asked for and with the one that returns every
 * position's (prefilled in chunks).
 */
class LongPromptTest {

    private static final JsonNode REFERENCE = Fixtures.json(Fixtures.model("qwen-vocab").resolve("reference.json"));

    private static DecoderModel keep;

    private static DecoderModel noKeep;

    @BeforeAll
    static void load() {
        keep = DecoderModel.load(Fixtures.model("qwen-vocab").resolve("model.onnx"), RuntimeOptions.defaults());
        noKeep = DecoderModel.load(Fixtures.model("qwen-vocab").resolve("model-no-keep.onnx"),
                RuntimeOptions.defaults());
    }

    @AfterAll
    static void close() {
        keep.close();
        noKeep.close();
    }

    private static int[] ints(JsonNode array) {
        int[] values = new int[array.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = array.get(i).asInt();
        }
        return values;
    }

    private static GenerationResult generate(DecoderModel target, DecoderModel draft,
            Supplier<SpeculationPolicy> policy) {
        int[] prompt = ints(REFERENCE.path("prompt_ids"));
        int[] expected = ints(REFERENCE.path("greedy_ids"));
        return new SpeculativeDecoder(new ModelPair(target, draft)).generate(
                GenerationRequest.builder(prompt).maxNewTokens(expected.length).ignoreEos(true).policy(policy).build());
    }

    @Test
    void plainDecodingOfBothGraphsGivesTransformersGreedyIds() {
        int[] expected = ints(REFERENCE.path("greedy_ids"));
        assertThat(generate(keep, null, PlainPolicy::new).tokenIds()).containsExactly(expected);
        assertThat(generate(noKeep, null, PlainPolicy::new).tokenIds()).containsExactly(expected);
    }

    @Test
    void speculativeDecodingEqualsPlainDecoding() {
        int[] expected = ints(REFERENCE.path("greedy_ids"));
        // the same weights in both graphs: every draft is accepted, each verification
        // checks γ + 1 rows
        GenerationResult keepTarget = generate(keep, noKeep, () -> new FixedPolicy(4));
        assertThat(keepTarget.tokenIds()).containsExactly(expected);
        assertThat(keepTarget.stats().draftCalls()).isPositive();
        assertThat(generate(noKeep, keep, () -> new FixedPolicy(3)).tokenIds()).containsExactly(expected);
    }

}
