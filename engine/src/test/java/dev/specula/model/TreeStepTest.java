package dev.specula.model;

import java.util.List;

import ai.onnxruntime.OrtException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import dev.specula.Fixtures;
import dev.specula.kv.KvSequence;
import dev.specula.kv.KvStore;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A draft tree verified in one call gives each node the logits of its own path fed as a
 * chain, alone and in a packed batch beside a chain; after the accepted path is retained
 * the cache continues as if only that path had been fed.
 *
 * <pre>
 * tree after the prompt (root = the prompt's last token, fed with the tree):
 *   root ── a ── c
 *        └─ b ── d ── e
 * </pre>
 */
class TreeStepTest {

    private static final int[] PROMPT = { 5, 17, 99, 250, 3, 41, 8, 77, 130, 12, 64 };

    private static final int A = 300;

    private static final int B = 301;

    private static final int C = 302;

    private static final int D = 303;

    private static final int E = 304;

    private static final int NEXT = 305;

    /** The tree's tokens after the root, and their parents relative to the root (-1). */
    private static final int[] NODES = { A, B, C, D, E };

    private static final int[] PARENTS = { -1, -1, 0, 1, 3 };

    private static TreeAttention tree(int base) {
        int[] parents = new int[PARENTS.length];
        for (int i = 0; i < parents.length; i++) {
            parents[i] = PARENTS[i] < 0 ? base - 1 : base + PARENTS[i];
        }
        return new TreeAttention(base, parents);
    }

    /**
     * Logits of the last {@code rows} tokens of {@code tokens} fed as a chain to a new
     * cache.
     */
    private static float[] chain(DecoderModel model, int[] tokens, int rows) throws OrtException {
        try (KvSequence cache = model.newCache()) {
            return model.forward(new StepInput(cache, tokens, rows, false, null)).logits();
        }
    }

    private static int[] prompt(int... after) {
        int[] tokens = java.util.Arrays.copyOf(PROMPT, PROMPT.length + after.length);
        System.arraycopy(after, 0, tokens, PROMPT.length, after.length);
        return tokens;
    }

    /** Row {@code row} of rows [n, width]. */
    private static float[] row(float[] logits, int row, int width) {
        return java.util.Arrays.copyOfRange(logits, row * width, (row + 1) * width);
    }

    /**
     * Rows of the root and the 5 nodes, as chains: root a c / root b d e.
     */
    private static float[][] expected(DecoderModel model) throws OrtException {
        int width = model.logitsWidth();
        float[] left = chain(model, prompt(A, C), 3);
        float[] right = chain(model, prompt(B, D, E), 4);
        return new float[][] { row(left, 0, width), row(left, 1, width), row(right, 1, width), row(left, 2, width),
                row(right, 2, width), row(right, 3, width) };
    }

    private static void assertRows(float[] logits, float[][] expected, int width) {
        for (int r = 0; r < expected.length; r++) {
            float[] actual = row(logits, r, width);
            double max = 0;
            for (int v = 0; v < width; v++) {
                max = Math.max(max, Math.abs(actual[v] - expected[r][v]));
            }
            assertThat(max).as("row %d: max |tree − chain|", r).isLessThan(1e-4);
        }
    }

    private static int[] treeInput() {
        int[] input = new int[1 + NODES.length];
        input[0] = PROMPT[PROMPT.length - 1];
        System.arraycopy(NODES, 0, input, 1, NODES.length);
        return input;
    }

    @ParameterizedTest
    @ValueSource(strings = { "llama-packed", "llama-fused-packed" })
    void aTreeInOneCallGivesEachNodeTheLogitsOfItsPath(String fixture) throws OrtException {
        try (DecoderModel model = Fixtures.load(fixture)) {
            assertThat(model.supportsTrees()).isTrue();
            int width = model.logitsWidth();
            float[][] expected = expected(model);
            try (KvSequence cache = model.newCache()) {
                model.forward(new StepInput(cache, java.util.Arrays.copyOf(PROMPT, PROMPT.length - 1), 1, false, null));
                int base = PROMPT.length;
                StepOutput output = model
                    .forward(new StepInput(cache, treeInput(), 1 + NODES.length, false, null, tree(base)));
                assertRows(output.logits(), expected, width);

                // accept b, d: the path's KV stays, the rest become holes
                cache.retain(base, new int[] { base + 1, base + 3 });
                assertThat(cache.logicalLength()).isEqualTo(base + 2);
                float[] next = model.forward(new StepInput(cache, new int[] { NEXT }, 1, false, null)).logits();
                float[] reference = chain(model, prompt(B, D, NEXT), 1);
                assertRows(next, new float[][] { reference }, width);
            }
        }
    }

    @Test
    void aTreeSharesAPackedRowWithAnotherSequencesChain() throws OrtException {
        try (DecoderModel model = Fixtures.load("llama-fused-packed"); KvStore store = model.newStore()) {
            int width = model.logitsWidth();
            float[][] expected = expected(model);
            int[] other = { 9, 8, 7, 6, 5, 4, 3 };
            float[] otherExpected = chain(model, other, 2);
            KvSequence treeSequence = store.join();
            KvSequence chainSequence = store.join();
            model.forward(List.of(
                    new StepInput(treeSequence, java.util.Arrays.copyOf(PROMPT, PROMPT.length - 1), 1, false, null),
                    new StepInput(chainSequence, java.util.Arrays.copyOf(other, 4), 1, false, null)));
            List<StepOutput> outputs = model.forward(List.of(
                    new StepInput(treeSequence, treeInput(), 1 + NODES.length, false, null, tree(PROMPT.length)),
                    new StepInput(chainSequence, java.util.Arrays.copyOfRange(other, 4, 7), 2, false, null)));
            assertRows(outputs.get(0).logits(), expected, width);
            assertRows(outputs.get(1).logits(),
                    new float[][] { row(otherExpected, 0, width), row(otherExpected, 1, width) }, width);
            treeSequence.close();
            chainSequence.close();
        }
    }

    @Test
    void aMaskGraphRefusesATreeNamingTheExport() throws OrtException {
        try (DecoderModel model = Fixtures.load("llama"); KvSequence cache = model.newCache()) {
            assertThat(model.supportsTrees()).isFalse();
            model.forward(new StepInput(cache, PROMPT, 1, false, null));
            assertThatThrownBy(() -> model.forward(new StepInput(cache, new int[] { A, B }, 2, false, null,
                    new TreeAttention(PROMPT.length, new int[] { PROMPT.length - 1, PROMPT.length - 1 }))))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("attention_mask")
                .hasMessageContaining("--packed");
            assertThat(cache.logicalLength()).isEqualTo(PROMPT.length);
        }
    }

    @Test
    void positionsAndVisibilityFollowTheParents() {
        TreeAttention tree = tree(10);
        assertThat(tree.position(9)).isEqualTo(9);
        assertThat(tree.position(10)).isEqualTo(10);
        assertThat(tree.position(11)).isEqualTo(10);
        assertThat(tree.position(12)).isEqualTo(11);
        assertThat(tree.position(14)).isEqualTo(12);
        assertThat(tree.sees(14, 13)).isTrue();
        assertThat(tree.sees(14, 11)).isTrue();
        assertThat(tree.sees(14, 10)).isFalse();
        assertThat(tree.sees(14, 12)).isFalse();
        assertThat(tree.sees(14, 3)).isTrue();
        assertThatThrownBy(() -> new TreeAttention(10, new int[] { 9, 11 })).hasMessageContaining("parent");
    }

}
