package dev.specula.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import ai.onnxruntime.OrtException;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import dev.specula.Fixtures;
import dev.specula.kv.KvSequence;
import dev.specula.kv.KvStore;
import dev.specula.sampling.Distributions;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Qwen2.5's vocabulary (151,936 logits) with prompts of 2,000 tokens: the logits of a
 * step are only the rows it returns, on both graphs of the {@code qwen-vocab} fixture
 * (with a {@code logits_to_keep} input, and without one: prefilled in chunks), on the
 * single-sequence and the padded batch path.
 */
class LargeVocabularyTest {

    private static final int VOCAB = 151_936;

    private static final JsonNode REFERENCE = Fixtures.json(Fixtures.model("qwen-vocab").resolve("reference.json"));

    static DecoderModel load(String graph) {
        return DecoderModel.load(Fixtures.model("qwen-vocab").resolve(graph), RuntimeOptions.defaults());
    }

    static int[] ints(JsonNode array) {
        int[] values = new int[array.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = array.get(i).asInt();
        }
        return values;
    }

    private static int argmax(StepOutput output, int row) {
        return Distributions.argmax(output.logits(), row * output.width(), output.width());
    }

    @ParameterizedTest
    @ValueSource(strings = { "model.onnx", "model-no-keep.onnx" })
    void twoThousandTokenPromptDecodesLikeTransformersWithBoundedLogits(String graph) throws OrtException {
        int[] prompt = ints(REFERENCE.path("prompt_ids"));
        int[] expected = ints(REFERENCE.path("greedy_ids"));
        assertThat(prompt.length).isGreaterThan(1_766);
        try (DecoderModel model = load(graph); KvSequence cache = model.newCache()) {
            assertThat(model.logitsWidth()).isEqualTo(VOCAB);
            int[] greedy = new int[expected.length];
            StepOutput output = model.forward(new StepInput(cache, prompt, 1, false, null));
            assertThat(output.rows()).isEqualTo(1);
            assertThat(output.logits()).hasSize(VOCAB);
            greedy[0] = argmax(output, 0);
            for (int i = 1; i < greedy.length; i++) {
                output = model.forward(new StepInput(cache, new int[] { greedy[i - 1] }, 1, false, null));
                greedy[i] = argmax(output, 0);
            }
            assertThat(greedy).containsExactly(expected);
            // one row of logits is all a plain decode ever pins, whatever the prompt
            assertThat(model.pinnedLogitsBytes()).isLessThanOrEqualTo((long) VOCAB * Float.BYTES);

            // a verification of γ = 4 drafts after the prompt: γ + 1 rows, no more
            int[] drafts = Arrays.copyOfRange(expected, expected.length - 5, expected.length);
            output = model.forward(new StepInput(cache, drafts, 5, false, null));
            assertThat(output.rows()).isEqualTo(5);
            assertThat(model.pinnedLogitsBytes()).isLessThanOrEqualTo(5L * VOCAB * Float.BYTES);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = { "model.onnx", "model-no-keep.onnx" })
    void paddedBatchOfEightLongPromptsMatchesEachPromptAlone(String graph) throws OrtException {
        int[] reference = ints(REFERENCE.path("prompt_ids"));
        int rows = 8;
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < rows; i++) {
            // 300 tokens, and a longer and a shorter one: rows of different lengths
            int length = i == 0 ? 330 : i == 1 ? 250 : 300;
            prompts.add(Arrays.copyOfRange(reference, i * 200, i * 200 + length));
        }
        try (DecoderModel model = load(graph); KvStore store = model.newStore()) {
            assertThat(store.layout()).isEqualTo(KvStore.Layout.PADDED);
            List<KvSequence> sequences = new ArrayList<>();
            List<StepInput> inputs = new ArrayList<>();
            for (int[] prompt : prompts) {
                KvSequence sequence = store.join();
                sequences.add(sequence);
                inputs.add(new StepInput(sequence, prompt, 2, false, null));
            }
            List<StepOutput> batched = model.forward(inputs);
            assertThat(model.pinnedLogitsBytes()).isLessThanOrEqualTo((long) rows * 2 * VOCAB * Float.BYTES);
            // a decode step of every row, then one of half of them
            List<StepInput> next = new ArrayList<>();
            for (int i = 0; i < rows; i++) {
                next.add(new StepInput(sequences.get(i), new int[] { argmax(batched.get(i), 1) }, 1, false, null));
            }
            List<StepOutput> stepped = model.forward(next);
            for (int i = 0; i < rows; i++) {
                try (KvSequence alone = model.newCache()) {
                    StepOutput prefill = model.forward(new StepInput(alone, prompts.get(i), 2, false, null));
                    assertThat(argmax(batched.get(i), 0)).as("row %d, prompt's second-to-last position", i)
                        .isEqualTo(argmax(prefill, 0));
                    assertThat(argmax(batched.get(i), 1)).as("row %d, after the prompt", i)
                        .isEqualTo(argmax(prefill, 1));
                    StepOutput step = model
                        .forward(new StepInput(alone, new int[] { argmax(prefill, 1) }, 1, false, null));
                    assertThat(argmax(stepped.get(i), 0)).as("row %d, first decode step", i).isEqualTo(argmax(step, 0));
                }
            }
            sequences.forEach(KvSequence::close);
        }
    }

    @Test
    void graphSignatureTellsWhetherTheGraphKeepsOnlySomeLogits() {
        try (DecoderModel keep = load("model.onnx"); DecoderModel all = load("model-no-keep.onnx")) {
            assertThat(keep.signature().hasLogitsToKeep()).isTrue();
            assertThat(keep.signature().logitsToKeepRank()).isZero();
            assertThat(all.signature().hasLogitsToKeep()).isFalse();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = { "model.onnx", "model-no-keep.onnx" })
    void smallPrefillChunksGiveTheSameTokens(String graph) throws OrtException {
        int[] prompt = Arrays.copyOf(ints(REFERENCE.path("prompt_ids")), 300);
        int[] tokens = new int[2];
        for (int chunk : new int[] { 300, 7 }) {
            RuntimeOptions options = RuntimeOptions.defaults().withPrefillChunkTokens(chunk);
            try (DecoderModel model = DecoderModel.load(Fixtures.model("qwen-vocab").resolve(graph), options);
                    KvSequence cache = model.newCache()) {
                StepOutput prefill = model.forward(new StepInput(cache, prompt, 3, false, null));
                assertThat(cache.logicalLength()).isEqualTo(prompt.length);
                assertThat(prefill.rows()).isEqualTo(3);
                int token = argmax(prefill, 2);
                if (chunk == 300) {
                    tokens[0] = token;
                }
                else {
                    tokens[1] = token;
                }
            }
        }
        assertThat(tokens[1]).isEqualTo(tokens[0]);
    }

    @Test
    void sizesTooBigForOneBufferAreAClearErrorNotAnOverflow() {
        assertThat(Sizes.elements("Logits", 8, 221, VOCAB, Float.BYTES)).isEqualTo(8 * 221 * VOCAB);
        assertThatThrownBy(() -> Sizes.elements("Logits", 8, 2_000, VOCAB, Float.BYTES))
            .isInstanceOf(IllegalStateException.class)
            .hasMessageContaining("Logits of 8 x 2000 x 151936 elements (9723904000 bytes)")
            .hasMessageContaining("specula.runtime.prefill-chunk-tokens");
        assertThatThrownBy(() -> RuntimeOptions.defaults().withPrefillChunkTokens(0))
            .isInstanceOf(IllegalArgumentException.class)
            .hasMessageContaining("prefillChunkTokens must be >= 1");
    }

}
