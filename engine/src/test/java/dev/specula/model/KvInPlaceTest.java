package dev.specula.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import dev.specula.Fixtures;
import dev.specula.kv.KvBuffers;
import dev.specula.kv.KvSequence;
import dev.specula.kv.KvStore;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A one-row KV store of a fused graph is written in place: ONNX Runtime writes each
 * call's new slots into the store's preallocated buffers (past and present bound to one
 * buffer per layer). The model must compute what it computes when every call returns a
 * concatenated copy, through a long chunked prompt, growth of the buffers, rollbacks, a
 * retained tree path and compactions; and only graphs that write in place may be bound
 * so.
 */
class KvInPlaceTest {

    private static final int PROMPT = 150;

    private static final KvStore.Compaction FREQUENT = new KvStore.Compaction(2, 0);

    /**
     * Graphs with ONNX Runtime's GroupQueryAttention: ours, and ONNX Runtime GenAI's
     * interface ({@code gqa}: lengths from attention_mask, no position_ids), whose
     * ThirdPartyLayoutTest decodes to transformers' reference written in place.
     */
    @ParameterizedTest
    @ValueSource(strings = { "llama-fused", "qwen2-fused", "qwen3-fused", "llama-fused-packed", "gqa", "mistral-fused",
            "gemma3-fused", "gpt2-fused" })
    void groupQueryAttentionGraphsWriteInPlace(String name) {
        try (DecoderModel model = Fixtures.load(name);
                DecoderModel off = DecoderModel.load(Fixtures.model(name),
                        RuntimeOptions.defaults().withKvInPlace(false))) {
            assertThat(model.writesKvInPlace()).isTrue();
            assertThat(off.writesKvInPlace()).as("switched off by the option").isFalse();
        }
    }

    @ParameterizedTest
    @ValueSource(
            strings = { "llama", "qwen2", "gpt2", "llama-packed", "optimum-qwen2", "llama-fp16", "griffin-random" })
    void concatenatingGraphsAreNotBoundInPlace(String name) {
        try (DecoderModel model = Fixtures.load(name)) {
            assertThat(model.writesKvInPlace()).isFalse();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = { "llama-fused", "qwen2-fused", "qwen3-fused", "llama-fused-packed", "mistral-fused",
            "gemma3-fused", "gpt2-fused" })
    void inPlaceComputesWhatConcatenationComputes(String name) throws Exception {
        RuntimeOptions options = RuntimeOptions.defaults().withPrefillChunkTokens(64);
        try (DecoderModel inPlace = DecoderModel.load(Fixtures.model(name), options);
                DecoderModel copying = DecoderModel.load(Fixtures.model(name), options.withKvInPlace(false));
                // compacted once more than 2 holes pile up: every other retained tree
                // path
                KvSequence written = inPlace.newCache(FREQUENT);
                KvSequence copied = copying.newCache(FREQUENT)) {
            assertThat(written.store().writesInPlace()).isTrue();
            assertThat(copied.store().writesInPlace()).isFalse();
            Random random = new Random(7);
            int vocab = Math.min(inPlace.config().vocabSize(), 4000);
            int[] prompt = random.ints(PROMPT, 3, vocab).toArray();
            assertSame(step(inPlace, written, prompt, 1), step(copying, copied, prompt, 1), "prompt");
            int firstCapacity = written.store().capacity();
            assertThat(firstCapacity).as("room for the prompt and more").isGreaterThan(PROMPT);
            int rounds = 0;
            while (written.logicalLength() < firstCapacity + 40) {
                // a verification of 5 tokens, of which 0..4 are kept, then the next token
                int[] draft = random.ints(5, 3, vocab).toArray();
                assertSame(step(inPlace, written, draft, 5), step(copying, copied, draft, 5), "round " + rounds);
                int kept = random.nextInt(5);
                int length = written.logicalLength() - 5 + kept;
                if (rounds % 3 == 2) {
                    // a tree's accepted path: every other node kept, the rest holes
                    int from = written.logicalLength() - 5;
                    int[] path = { from, from + 2, from + 4 };
                    written.retain(from, path);
                    copied.retain(from, path);
                    assertThat(written.store().physicalLength() - written.logicalLength())
                        .as("holes past 2 are compacted away")
                        .isLessThanOrEqualTo(2);
                }
                else {
                    written.rollbackTo(length);
                    copied.rollbackTo(length);
                    assertThat(written.store().physicalLength())
                        .as("the last slots rolled back are reused, not left as holes")
                        .isEqualTo(written.slot(length - 1) + 1);
                }
                int[] next = { random.nextInt(3, vocab) };
                assertSame(step(inPlace, written, next, 1), step(copying, copied, next, 1), "next " + rounds);
                rounds++;
            }
            assertThat(written.store().capacity()).as("grown by a copy").isGreaterThan(firstCapacity);
            assertThat(written.store().physicalLength()).isLessThanOrEqualTo(written.store().capacity());
        }
    }

    @Test
    void aSequenceAloneGetsNoRoomBeyondItsContext() throws Exception {
        try (DecoderModel model = Fixtures.load("llama-fused"); KvSequence cache = model.newCache()) {
            int context = model.config().contextLength();
            int[] prompt = new Random(5).ints(context - 10, 3, model.config().vocabSize()).toArray();
            step(model, cache, prompt, 1);
            assertThat(cache.store().capacity()).as("a quarter more would be %d", (context - 10) * 5 / 4)
                .isBetween(context - 10, context + KvStore.HEADROOM_SLOTS);
        }
    }

    @Test
    void aSequenceGetsNoRoomBeyondTheTokensItsRequestMayHold() throws Exception {
        // a prompt of 30 and 70 new tokens: the KV budget counts 100 tokens
        try (DecoderModel model = Fixtures.load("llama-fused"); KvSequence cache = model.newCache(100)) {
            int[] tokens = new Random(7).ints(100, 3, model.config().vocabSize()).toArray();
            step(model, cache, Arrays.copyOf(tokens, 30), 1);
            for (int i = 30; i < tokens.length; i++) {
                step(model, cache, new int[] { tokens[i] }, 1);
            }
            assertThat(cache.store().capacity()).isEqualTo(100);
        }
    }

    @Test
    void aPackedBatchStoreGetsNoRoomBeyondTheTokensItsMembersMayHold() throws Exception {
        Random random = new Random(9);
        try (DecoderModel model = Fixtures.load("llama-fused-packed"); KvStore store = model.newStore()) {
            int vocab = model.config().vocabSize();
            KvSequence first = store.join(50);
            KvSequence second = store.join(70);
            model.forward(List.of(new StepInput(first, random.ints(40, 3, vocab).toArray(), 1, false, null),
                    new StepInput(second, random.ints(60, 3, vocab).toArray(), 1, false, null)));
            for (int round = 0; round < 10; round++) {
                model.forward(List.of(new StepInput(first, random.ints(1, 3, vocab).toArray(), 1, false, null),
                        new StepInput(second, random.ints(1, 3, vocab).toArray(), 1, false, null)));
            }
            assertThat(store.capacity()).isEqualTo(120);
            first.close();
            second.close();
        }
    }

    /**
     * A store's buffers go back to a pool when it closes or grows, and the next store
     * writes in place over what its predecessor left there, unzeroed: only slots it wrote
     * itself are ever read, so it computes what a store of fresh memory computes.
     */
    @ParameterizedTest
    @ValueSource(strings = { "llama-fused", "llama-fused-packed" })
    void aStoreWritesOverTheBuffersOfStoresBeforeIt(String name) throws Exception {
        RuntimeOptions options = RuntimeOptions.defaults();
        try (DecoderModel inPlace = DecoderModel.load(Fixtures.model(name), options);
                DecoderModel copying = DecoderModel.load(Fixtures.model(name), options.withKvInPlace(false))) {
            Random random = new Random(13);
            int vocab = Math.min(inPlace.config().vocabSize(), 4000);
            long reusedBefore = KvBuffers.shared().reused();
            for (int request = 0; request < 4; request++) {
                // the same room each time (prompt and new tokens), each request's own
                // tokens
                try (KvSequence written = inPlace.newCache(120); KvSequence copied = copying.newCache(120)) {
                    int[] prompt = random.ints(20 + 10 * request, 3, vocab).toArray();
                    assertSame(step(inPlace, written, prompt, 1), step(copying, copied, prompt, 1),
                            "request " + request + ", prompt");
                    while (written.logicalLength() < 110) {
                        int[] draft = random.ints(4, 3, vocab).toArray();
                        assertSame(step(inPlace, written, draft, 4), step(copying, copied, draft, 4),
                                "request " + request + " at " + written.logicalLength());
                        int kept = random.nextInt(4);
                        written.rollbackTo(written.logicalLength() - 4 + kept);
                        copied.rollbackTo(copied.logicalLength() - 4 + kept);
                    }
                }
            }
            assertThat(KvBuffers.shared().reused() - reusedBefore).as("buffers taken from the pool")
                .isGreaterThanOrEqualTo(3L * 2 * inPlace.kvLayout().layers());
        }
    }

    @Test
    void rollingBackTheLastTokensLeavesNoHole() throws Exception {
        try (DecoderModel model = Fixtures.load("llama-fused"); KvSequence cache = model.newCache()) {
            step(model, cache, new int[] { 5, 17, 42, 99, 7, 300 }, 1);
            step(model, cache, new int[] { 11, 12, 13, 14 }, 4);
            cache.rollbackTo(6);
            assertThat(cache.store().physicalLength()).isEqualTo(6);
            // a hole in the middle stays a hole (masked), the end moves back to it
            step(model, cache, new int[] { 20, 21, 22 }, 3);
            cache.retain(6, new int[] { 6, 8 });
            assertThat(cache.logicalLength()).isEqualTo(8);
            assertThat(cache.store().physicalLength()).isEqualTo(9);
        }
    }

    @Test
    void aPackedBatchStoreIsWrittenInPlace() throws Exception {
        Random random = new Random(3);
        try (DecoderModel model = Fixtures.load("llama-fused-packed");
                DecoderModel copying = DecoderModel.load(Fixtures.model("llama-fused-packed"),
                        RuntimeOptions.defaults().withKvInPlace(false));
                KvStore store = model.newStore()) {
            assertThat(store.writesInPlace()).isTrue();
            int vocab = model.config().vocabSize();
            List<KvSequence> shared = List.of(store.join(), store.join(), store.join());
            List<KvSequence> alone = new ArrayList<>();
            for (int i = 0; i < shared.size(); i++) {
                alone.add(copying.newCache());
            }
            try {
                for (int round = 0; round < 12; round++) {
                    List<StepInput> inputs = new ArrayList<>();
                    List<int[]> fed = new ArrayList<>();
                    for (KvSequence sequence : shared) {
                        int[] tokens = random.ints(round == 0 ? 40 + 7 * inputs.size() : 4, 3, vocab).toArray();
                        fed.add(tokens);
                        inputs.add(new StepInput(sequence, tokens, Math.min(tokens.length, 4), false, null));
                    }
                    List<StepOutput> outputs = model.forward(inputs);
                    for (int i = 0; i < shared.size(); i++) {
                        int[] tokens = fed.get(i);
                        assertSame(outputs.get(i), step(copying, alone.get(i), tokens, Math.min(tokens.length, 4)),
                                "sequence " + i + ", round " + round);
                        int keep = shared.get(i).logicalLength() - random.nextInt(4);
                        shared.get(i).rollbackTo(keep);
                        alone.get(i).rollbackTo(keep);
                    }
                }
            }
            finally {
                alone.forEach(KvSequence::close);
                shared.forEach(KvSequence::close);
            }
        }
    }

    private static StepOutput step(DecoderModel model, KvSequence cache, int[] tokens, int rows) throws Exception {
        return model.forward(new StepInput(cache, tokens, rows, false, null));
    }

    private static void assertSame(StepOutput actual, StepOutput expected, String where) {
        float[] a = actual.logits();
        float[] b = expected.logits();
        assertThat(a).as(where).hasSameSizeAs(b);
        float max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(a[i] - b[i]));
        }
        assertThat(max).as(where + ": largest logit difference").isLessThan(1e-4f);
    }

}
