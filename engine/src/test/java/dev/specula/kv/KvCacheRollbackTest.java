package dev.specula.kv;

import java.util.Arrays;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import dev.specula.Fixtures;
import dev.specula.engine.Engine;
import dev.specula.engine.GenerationRequest;
import dev.specula.engine.GenerationResult;
import dev.specula.engine.ModelPair;
import dev.specula.model.DecoderModel;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.policy.PlainPolicy;

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

    /**
     * A target with int8 activations keeps no holes (a masked slot changes its sums), and
     * a graph that does not write its KV in place has no end to move back: rolling back
     * its cache copies every layer. Plain decoding rejects a filler every step, so it
     * used to copy the whole cache every token. The cache goes back to its past before
     * the call instead, and the kept token is fed again.
     */
    @Test
    void plainDecodingOfATargetThatKeepsNoHolesCopiesNoCacheAStep() {
        try (DecoderModel target = Fixtures.load("llama-int8-b128-a8");
                Engine engine = new Engine(new ModelPair(target, null), Engine.Settings.defaults())) {
            assertThat(target.holesAreExact()).isFalse();
            assertThat(target.writesKvInPlace()).isFalse();
            long before = NativeTensors.STORE_COMPACTIONS.get();
            GenerationResult result = engine.generate(GenerationRequest.builder(PROMPT)
                .maxNewTokens(32)
                .ignoreEos(true)
                .policy(PlainPolicy::new)
                .build());
            assertThat(result.tokenIds()).hasSize(32);
            // at most the first round's: its kept tokens are the whole prompt
            assertThat(NativeTensors.STORE_COMPACTIONS.get() - before).as("copies of the cache").isLessThanOrEqualTo(1);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = { "llama-int8-b128-a8", "llama-int4-b128-a8" })
    void aCacheThatWouldCopyItselfGoesBackToItsPastBeforeTheCall(String name) throws Exception {
        int[] kept = { REJECTED[0], NEXT[0] };
        try (DecoderModel model = Fixtures.load(name);
                KvSequence clean = model.newCache();
                KvSequence rewound = model.newCache();
                KvSequence copied = model.newCache()) {
            step(model, clean, PROMPT);
            float[] expected = step(model, clean, kept).logits();

            step(model, rewound, PROMPT);
            step(model, rewound, new int[] { REJECTED[0], REJECTED[1] });
            long compactions = NativeTensors.STORE_COMPACTIONS.get();
            assertThat(rewound.rollbackOrRewind(PROMPT.length + 1, 8)).isEqualTo(PROMPT.length);
            assertThat(NativeTensors.STORE_COMPACTIONS.get()).as("no copy").isEqualTo(compactions);
            assertThat(rewound.logicalLength()).isEqualTo(PROMPT.length);
            assertThat(rewound.store().physicalLength()).isEqualTo(PROMPT.length);
            // the kept token fed again, in a call of four: its row and the next one's
            // are those of the cache that never held the rejected token
            int[] longer = { REJECTED[0], NEXT[0], NEXT[1], NEXT[2] };
            StepOutput four = step(model, rewound, longer);
            int width = four.width();
            assertThat(Arrays.copyOf(four.logits(), 2 * width)).containsExactly(expected);

            // not when more would be fed again than the caller allows: rolled back
            // exactly
            step(model, copied, PROMPT);
            step(model, copied, new int[] { REJECTED[0], REJECTED[1] });
            assertThat(copied.rollbackOrRewind(PROMPT.length + 1, 0)).isEqualTo(PROMPT.length + 1);
            assertThat(copied.logicalLength()).isEqualTo(PROMPT.length + 1);
        }
    }

    /** A cache whose rollback copies nothing rolls back exactly. */
    @ParameterizedTest
    @ValueSource(strings = { "llama", "llama-fused" })
    void aCacheThatRollsBackWithoutCopyingDoesSo(String name) throws Exception {
        try (DecoderModel model = Fixtures.load(name); KvSequence cache = model.newCache()) {
            step(model, cache, PROMPT);
            step(model, cache, REJECTED);
            assertThat(cache.rollbackOrRewind(PROMPT.length + 1, 8)).isEqualTo(PROMPT.length + 1);
            assertThat(cache.logicalLength()).isEqualTo(PROMPT.length + 1);
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
