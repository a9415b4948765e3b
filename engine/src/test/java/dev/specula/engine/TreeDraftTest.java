package dev.specula.engine;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The tree draft's arithmetic: its approximate exp and its top-k. */
class TreeDraftTest {

    @Test
    void theApproximateExpIsWithinATenThousandthOfMathExp() {
        double worst = 0;
        for (int i = 0; i <= 86_000; i++) {
            float x = -i / 1000f;
            worst = Math.max(worst, Math.abs(TreeDraft.expNonPositive(x) / Math.exp(x) - 1));
        }
        assertThat(worst).isLessThan(1e-4);
        assertThat(TreeDraft.expNonPositive(-100f)).isZero();
        assertThat(TreeDraft.expNonPositive(0f)).isEqualTo(1f);
    }

    @Test
    void topKTakesTheLargestLargestFirstAndTheLowerIndexOnTies() {
        float[] logits = { 0f, 3f, 1f, 3f, -2f, 2f };
        assertThat(TreeDraft.topK(logits, 0, logits.length, 3)).containsExactly(1, 3, 5);
        // indices within the row
        assertThat(TreeDraft.topK(logits, 2, 4, 2)).containsExactly(1, 3);
        assertThat(TreeDraft.topK(logits, 0, 2, 5)).containsExactly(1, 0);
    }

}
