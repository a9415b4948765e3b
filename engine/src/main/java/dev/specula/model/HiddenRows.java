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
     * Copies the returned rows among the input's tokens {@code [from, to)}, which the
     * call's output [.., hiddenSize] holds from row {@code firstRow} on.
     */
    void collect(OnnxTensor output, int firstRow, int from, int to) {
        long[] shape = output.getInfo().getShape();
        int width = (int) shape[shape.length - 1];
        FloatBuffer all = output.getFloatBuffer();
        collect(all, width, firstRow, from, to);
    }

    /** {@link #collect(OnnxTensor, int, int, int)} from a copy of the output. */
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
