package dev.specula.kv;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Rolled-back tokens stay in the tensors as masked holes; the model must compute exactly
 * what it computes over a cache that never held them, before and after compaction.
 */
class KvCacheRollbackTest {

    private static final int[] PROMPT = { 5, 17, 42, 99, 7, 300 };

    private static final int[] REJECTED = { 11, 12, 13, 14 };

    private static final int[] NEXT = { 250, 251, 252 };

    @ParameterizedTest
    @ValueSource(strings = { "llama", "qwen2", "gpt2", "llama-fp16", "llama-fused", "qwen2-fused", "qwen3-fused",
            "gemma2-fused", "gpt2-fused" })
    void rolledBackTokensLeaveNoTrace(String family) throws Exception {
        try (DecoderModel model = Fixtures.load(family);
                KvSequence clean = model.newCache();
                KvSequence withHoles = model.newCache();
                KvSequence compacted = model.newCache()) {
            float[] expected = run(model, clean, PROMPT, NEXT);

            step(model, withHoles, PROMPT);
            step(model, withHoles, REJECTED);
            withHoles.rollbackTo(PROMPT.length);
            assertThat(withHoles.logicalLength()).isEqualTo(PROMPT.length);
            // a store written in place moves its end back over the last slots instead
            assertThat(withHoles.store().physicalLength())
                .isEqualTo(withHoles.store().writesInPlace() ? PROMPT.length : PROMPT.length + REJECTED.length);
            float[] holes = step(model, withHoles, NEXT).logits();

            step(model, compacted, PROMPT);
            step(model, compacted, REJECTED);
            // keep one of them, then drop it too after compaction
            compacted.rollbackTo(PROMPT.length + 1);
            compacted.store().compact();
            assertThat(compacted.store().physicalLength()).isEqualTo(PROMPT.length + 1);
            compacted.rollbackTo(PROMPT.length);
            float[] afterCompaction = step(model, compacted, NEXT).logits();

            float tolerance = family.endsWith("fp16") ? 2e-2f : 1e-4f;
            assertThat(maxAbsDiff(holes, expected)).isLessThan(tolerance);
            assertThat(maxAbsDiff(afterCompaction, expected)).isLessThan(tolerance);
        }
    }

    private static float[] run(DecoderModel model, KvSequence cache, int[] prompt, int[] next) throws Exception {
        step(model, cache, prompt);
        return step(model, cache, next).logits();
    }

    private static StepOutput step(DecoderModel model, KvSequence cache, int[] tokens) throws Exception {
        return model.forward(new StepInput(cache, tokens, tokens.length, false, null));
    }

    private static float maxAbsDiff(float[] a, float[] b) {
        assertThat(a).hasSameSizeAs(b);
        float max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(a[i] - b[i]));
        }
        return max;
    }

}
