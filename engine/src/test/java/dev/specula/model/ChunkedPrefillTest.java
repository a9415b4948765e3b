package dev.specula.model;

import java.util.ArrayList;
import java.util.List;

import ai.onnxruntime.OrtException;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import dev.specula.Fixtures;
import dev.specula.kv.KvSequence;
import dev.specula.kv.KvStore;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Prefilling in chunks changes no logits: prompts fed 5 tokens per call, alone and
 * batched (padded: {@code llama}; packed: {@code llama-packed}), give the logits of the
 * same prompts fed in one call.
 */
class ChunkedPrefillTest {

    private static final int[][] PROMPTS = { { 5, 17, 99, 250, 3, 41, 8, 77, 130, 12, 64, 200, 9, 33, 21, 7, 301, 2 },
            { 400, 11, 6, 90, 14, 87, 150, 23 }, { 44, 45, 46 },
            { 9, 8, 7, 6, 5, 4, 3, 2, 1, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113 } };

    private static final int ROWS = 3;

    private static float[] alone(DecoderModel model, int[] prompt) throws OrtException {
        try (KvSequence cache = model.newCache()) {
            return model.forward(new StepInput(cache, prompt, ROWS, false, null)).logits();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = { "llama", "llama-packed", "llama-fused", "llama-fused-packed" })
    void chunkedPromptsGiveTheLogitsOfOneCall(String fixture) throws OrtException {
        List<float[]> expected = new ArrayList<>();
        try (DecoderModel whole = DecoderModel.load(Fixtures.model(fixture),
                RuntimeOptions.defaults().withPrefillChunkTokens(1_000))) {
            for (int[] prompt : PROMPTS) {
                expected.add(alone(whole, prompt));
            }
        }
        try (DecoderModel chunked = DecoderModel.load(Fixtures.model(fixture),
                RuntimeOptions.defaults().withPrefillChunkTokens(5))) {
            for (int i = 0; i < PROMPTS.length; i++) {
                assertClose(alone(chunked, PROMPTS[i]), expected.get(i));
            }
            try (KvStore store = chunked.newStore()) {
                List<StepInput> inputs = new ArrayList<>();
                List<KvSequence> sequences = new ArrayList<>();
                for (int[] prompt : PROMPTS) {
                    KvSequence sequence = store.join();
                    sequences.add(sequence);
                    inputs.add(new StepInput(sequence, prompt, ROWS, false, null));
                }
                List<StepOutput> outputs = chunked.forward(inputs);
                for (int i = 0; i < PROMPTS.length; i++) {
                    assertThat(sequences.get(i).logicalLength()).isEqualTo(PROMPTS[i].length);
                    assertThat(outputs.get(i).rows()).isEqualTo(ROWS);
                    assertClose(outputs.get(i).logits(), expected.get(i));
                }
                sequences.forEach(KvSequence::close);
            }
        }
    }

    private static void assertClose(float[] actual, float[] expected) {
        assertThat(actual).hasSameSizeAs(expected);
        float max = 0;
        for (int i = 0; i < actual.length; i++) {
            max = Math.max(max, Math.abs(actual[i] - expected[i]));
        }
        assertThat(max).isLessThan(1e-4f);
    }

}
