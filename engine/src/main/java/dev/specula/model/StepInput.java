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
 * @param withHiddenState whether to return {@code last_hidden_state} rows too (the graph
 * must have it)
 * @param runOptions the sequence's run options: {@code setTerminate(true)} aborts its
 * run; null = none
 */
public record StepInput(SequenceCache cache, int[] tokens, int logitsRows, boolean withHiddenState,
        OrtSession.@Nullable RunOptions runOptions) {

    public StepInput {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("A step needs at least one new token");
        }
        if (logitsRows < 1 || logitsRows > tokens.length) {
            throw new IllegalArgumentException(
                    "logitsRows must be in [1, " + tokens.length + "] but was " + logitsRows);
        }
    }
}
