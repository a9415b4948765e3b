package dev.specula.model;

import java.nio.FloatBuffer;

import ai.onnxruntime.OnnxTensor;
import org.jspecify.annotations.Nullable;

/**
 * The hidden state rows one step returns for one input: its last {@code count} tokens'
 * rows of {@code last_hidden_state} (a feature head: {@code regress}), gathered from
 * every call that feeds them (a long input's chunks, then its last call).
 */
final class HiddenRows {

    private static final HiddenRows NONE = new HiddenRows(0, 0);

    /** Tokens of the input. */
    private final int tokens;

    /** Rows returned: the input's last ones. */
    private final int count;

    /** [count, hiddenSize] once the first row arrives. */
    private float @Nullable [] rows;

    private HiddenRows(int tokens, int count) {
        this.tokens = tokens;
        this.count = count;
    }

    static HiddenRows of(StepInput input, GraphSignature signature) {
        return input.hiddenRows() == 0 || !signature.hasHiddenState() ? NONE
                : new HiddenRows(input.tokens().length, input.hiddenRows());
    }

    /**
     * Whether a call feeding the input's tokens {@code [from, to)} computes a row
     * returned.
     */
    boolean overlaps(int from, int to) {
        return count > 0 && to > tokens - count && from < to;
    }

    /**
     * Copies the returned rows among the input's tokens {@code [from, to)} from a single
     * sequence's call output [1, returned, hiddenSize]: every token's row, or the last
     * ones only when the graph slices its hidden output by {@code logits_to_keep} (a
     * feature head's {@code regress}).
     * @throws IllegalStateException when the graph returned fewer rows than asked for
     */
    void collect(OnnxTensor output, int from, int to) {
        long[] shape = output.getInfo().getShape();
        int width = (int) shape[2];
        // the token of the first row returned
        int firstReturned = Math.max(from, to - (int) shape[1]);
        if (Math.max(from, tokens - count) < firstReturned) {
            throw new IllegalStateException("The graph returned hidden states of the last " + (to - firstReturned)
                    + " tokens of a call, and the step asked for more");
        }
        collect(output.getFloatBuffer(), width, 0, firstReturned, to);
    }

    /**
     * Copies the returned rows among the input's tokens {@code [from, to)}, which
     * {@code all} [.., hiddenSize] holds from row {@code firstRow} on.
     */
    void collect(FloatBuffer all, int width, int firstRow, int from, int to) {
        if (rows == null) {
            rows = new float[Sizes.elements("Hidden states", 1, count, width, Float.BYTES)];
        }
        int first = Math.max(from, tokens - count);
        for (int token = first; token < to; token++) {
            all.get((firstRow + token - from) * width, rows, (token - (tokens - count)) * width, width);
        }
    }

    /** The rows; null when none were asked for. */
    float @Nullable [] rows() {
        return count == 0 ? null : rows;
    }

    int count() {
        return rows == null ? 0 : count;
    }

}
