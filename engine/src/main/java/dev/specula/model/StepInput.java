package dev.specula.model;

import ai.onnxruntime.OrtSession;
import org.jspecify.annotations.Nullable;

import dev.specula.kv.SequenceCache;

/**
 * One sequence's part of a forward step: the tokens to append to its cache.
 *
 * @param cache the sequence's KV cache in this model (its own, or its share of a pool);
 * advanced by the step
 * @param tokens new token ids, appended at logical positions
 * {@code cache.logicalLength()...}
 * @param logitsRows how many of the last positions' logits to return (1 for a draft step,
 * γ+1 to verify)
 * @param hiddenRows how many of the last positions' hidden states to return: the target's
 * {@code last_hidden_state}, a feature head's {@code regress} (0: none; the graph must
 * have the output otherwise)
 * @param runOptions the sequence's run options: {@code setTerminate(true)} aborts its
 * run; null = none
 * @param tree when the sequence's last tokens form a draft tree: who sees whom, and the
 * positions; it covers the cache's logical positions up to the end of {@code tokens}, and
 * every node among {@code tokens} is in the step's logits rows. Null: a chain, each token
 * seeing all before it
 * @param features a feature head's {@code hidden_states} input, one row per token:
 * [tokens, hiddenSize] row-major; null for a decoder, which takes none
 * @param logitsInto an array of the caller's that the step writes its logits into when it
 * holds them (logitsRows × width floats; the output's logits are then this array, the
 * rest of it untouched): a verification's rows, reused round after round instead of
 * megabytes of new array a call at a real vocabulary. Null, or too small: a new array of
 * exactly those floats
 */
public record StepInput(SequenceCache cache, int[] tokens, int logitsRows, int hiddenRows,
        OrtSession.@Nullable RunOptions runOptions, @Nullable TreeAttention tree, float @Nullable [] features,
        float @Nullable [] logitsInto) {

    /** Logits in a new array. */
    public StepInput(SequenceCache cache, int[] tokens, int logitsRows, int hiddenRows,
            OrtSession.@Nullable RunOptions runOptions, @Nullable TreeAttention tree, float @Nullable [] features) {
        this(cache, tokens, logitsRows, hiddenRows, runOptions, tree, features, null);
    }

    /** A chain: each token sees every token before it. */
    public StepInput(SequenceCache cache, int[] tokens, int logitsRows, boolean withHiddenState,
            OrtSession.@Nullable RunOptions runOptions) {
        this(cache, tokens, logitsRows, withHiddenState, runOptions, null);
    }

    /**
     * Hidden states, when asked for, of the logits rows.
     */
    public StepInput(SequenceCache cache, int[] tokens, int logitsRows, boolean withHiddenState,
            OrtSession.@Nullable RunOptions runOptions, @Nullable TreeAttention tree) {
        this(cache, tokens, logitsRows, withHiddenState ? logitsRows : 0, runOptions, tree, null);
    }

    public StepInput {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("A step needs at least one new token");
        }
        if (logitsRows < 1 || logitsRows > tokens.length) {
            throw new IllegalArgumentException(
                    "logitsRows must be in [1, " + tokens.length + "] but was " + logitsRows);
        }
        if (hiddenRows < 0 || hiddenRows > tokens.length) {
            throw new IllegalArgumentException(
                    "hiddenRows must be in [0, " + tokens.length + "] but was " + hiddenRows);
        }
        if (features != null && (features.length == 0 || features.length % tokens.length != 0)) {
            throw new IllegalArgumentException("features must hold one row per token (" + tokens.length
                    + " tokens) but has " + features.length + " values");
        }
        if (tree != null) {
            int end = cache.logicalLength() + tokens.length;
            tree.checkCovers(end);
            int firstNewNode = Math.max(tree.base(), cache.logicalLength());
            if (firstNewNode < end - logitsRows) {
                throw new IllegalArgumentException("Every tree node of a step must be among its " + logitsRows
                        + " logits rows, but the first new node is at " + firstNewNode + " and the rows start at "
                        + (end - logitsRows));
            }
        }
    }

    /** Whether any hidden state rows are asked for. */
    public boolean withHiddenState() {
        return hiddenRows > 0;
    }

}
