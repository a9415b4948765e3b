package dev.specula.model;

import java.util.Arrays;
import java.util.List;

import ai.onnxruntime.OrtException;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import dev.specula.Fixtures;
import dev.specula.kv.KvSequence;
import dev.specula.kv.KvStore;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A step may write its logits into an array its caller reuses round after round (a
 * verification's (γ + 1) × vocabulary floats, megabytes at a real vocabulary): the output
 * is then that array, its first rows × width values the logits, exactly those of the same
 * step without it. An array too small is left alone and a new one returned.
 */
class LogitsIntoTest {

    private static final int[] PROMPT = { 5, 17, 42, 9, 23, 11, 30, 8 };

    private static final int[] DRAFTS = { 14, 3, 27, 6 };

    @ParameterizedTest
    @ValueSource(strings = { "llama-fused-packed", "llama-fused", "llama" })
    void aSequenceAloneWritesItsLogitsIntoTheArrayItIsGiven(String name) throws OrtException {
        try (DecoderModel model = Fixtures.load(name);
                KvSequence plain = model.newCache();
                KvSequence reused = model.newCache();
                KvSequence tooSmall = model.newCache()) {
            int rows = DRAFTS.length;
            int width = model.logitsWidth();
            float[] reference = twoSteps(model, plain, null);
            float[] into = new float[rows * width + 7];
            Arrays.fill(into, Float.NaN);
            float[] written = twoSteps(model, reused, into);
            assertThat(written).as("the array given").isSameAs(into);
            assertThat(Arrays.copyOf(written, rows * width)).containsExactly(reference);
            assertThat(Float.isNaN(into[rows * width])).as("nothing written past the rows").isTrue();
            float[] small = new float[rows * width - 1];
            float[] fresh = twoSteps(model, tooSmall, small);
            assertThat(fresh).isNotSameAs(small).hasSize(rows * width).containsExactly(reference);
            assertThat(small).containsOnly(0f);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = { "llama-fused-packed", "llama" })
    void eachSequenceOfABatchGetsItsLogitsInItsOwnArray(String name) throws OrtException {
        try (DecoderModel model = Fixtures.load(name);
                KvStore store = model.newStore();
                KvSequence alone = model.newCache();
                KvSequence otherAlone = model.newCache()) {
            int width = model.logitsWidth();
            float[] expected = twoSteps(model, alone, null);
            int[] other = { 9, 8, 7, 6, 5, 4, 3 };
            model.forward(new StepInput(otherAlone, Arrays.copyOf(other, 4), 1, false, null));
            float[] otherExpected = model
                .forward(new StepInput(otherAlone, Arrays.copyOfRange(other, 4, 7), 2, false, null))
                .logits();
            KvSequence first = store.join();
            KvSequence second = store.join();
            model.forward(List.of(new StepInput(first, PROMPT, 1, false, null),
                    new StepInput(second, Arrays.copyOf(other, 4), 1, false, null)));
            float[] firstInto = new float[DRAFTS.length * width];
            float[] secondInto = new float[3 * width];
            List<StepOutput> outputs = model
                .forward(List.of(new StepInput(first, DRAFTS, DRAFTS.length, 0, null, null, null, firstInto),
                        new StepInput(second, Arrays.copyOfRange(other, 4, 7), 2, 0, null, null, null, secondInto)));
            assertThat(outputs.get(0).logits()).isSameAs(firstInto);
            assertThat(outputs.get(1).logits()).isSameAs(secondInto);
            assertClose(Arrays.copyOf(firstInto, DRAFTS.length * width), expected);
            assertClose(Arrays.copyOf(secondInto, 2 * width), otherExpected);
            first.close();
            second.close();
        }
    }

    /** The prompt, then the drafts verified: their logits, into {@code into} if given. */
    private static float[] twoSteps(DecoderModel model, KvSequence cache, float[] into) throws OrtException {
        model.forward(new StepInput(cache, PROMPT, 1, false, null));
        return model.forward(new StepInput(cache, DRAFTS, DRAFTS.length, 0, null, null, null, into)).logits();
    }

    /** A batched row may round differently from a sequence alone. */
    private static void assertClose(float[] actual, float[] expected) {
        assertThat(actual).hasSameSizeAs(expected);
        for (int i = 0; i < expected.length; i++) {
            assertThat(Math.abs(actual[i] - expected[i])).as("logit %d", i).isLessThan(1e-4f);
        }
    }

}
