package dev.specula.engine;

import java.util.Arrays;

import org.jspecify.annotations.Nullable;

/**
 * What a sequence drafting with the GRIFFIN feature head keeps between calls.
 *
 * <pre>
 * head pair t (its cache's logical position t) = (f_t, x_{t+1}):
 *     f_t        the target's last_hidden_state at position t (after reading x_t)
 *     x_{t+1}    the next committed token
 *     → logits for x_{t+2}, and regress ≈ f_{t+1}
 * a drafted node = (its parent's regress, its token), at its parent's position + 1
 * </pre>
 *
 * The target returns f for every position it feeds; those of committed positions wait
 * here ({@link #append}) until the head's next round feeds them with their next tokens
 * ({@link #takePending}). Drafted nodes' KV is never kept: their features were the head's
 * own guesses, and the accepted ones come back as real features from the verification.
 */
final class HeadFeatures {

    /** Width of a feature: the target's hidden size. */
    private final int width;

    /**
     * Features of committed target positions the head has not been fed: [rows, width].
     */
    private float[] pending = new float[0];

    private int pendingRows;

    /** Pairs in the head's cache fed real features: what a round rolls back to. */
    private int realPairs;

    /** The last head call's regress row [width]: the next drafted node's feature. */
    private float @Nullable [] regress;

    HeadFeatures(int width) {
        this.width = width;
    }

    /** Appends rows {@code [from, from + count)} of {@code rows} [.., width]. */
    void append(float[] rows, int from, int count) {
        int needed = (pendingRows + count) * width;
        if (pendingRows == 0 && from == 0 && rows.length == needed) {
            // the first rows of a verification are all committed (a prompt): kept as they
            // are
            pending = rows;
            pendingRows = count;
            return;
        }
        if (needed > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(needed, pending.length * 2));
        }
        System.arraycopy(rows, from * width, pending, pendingRows * width, count * width);
        pendingRows += count;
    }

    int pendingRows() {
        return pendingRows;
    }

    /**
     * The waiting features [pendingRows, width], for a call that feeds them: the head's
     * cache then holds {@code pairsAfter} pairs of real features.
     */
    float[] takePending(int pairsAfter) {
        // a prompt's features (8k rows of a 3584-wide target: 117 MB) are handed over,
        // not copied, when the buffer holds exactly them
        float[] taken = pending.length == pendingRows * width ? pending : Arrays.copyOf(pending, pendingRows * width);
        if (taken == pending) {
            pending = new float[0];
        }
        pendingRows = 0;
        realPairs = pairsAfter;
        return taken;
    }

    int realPairs() {
        return realPairs;
    }

    /** Keeps the last head call's regress row (the call's one hidden row). */
    void keepRegress(float @Nullable [] row) {
        this.regress = row;
    }

    float[] regress() {
        if (regress == null) {
            throw new IllegalStateException("No head call has returned a regress row yet");
        }
        return regress;
    }

}
