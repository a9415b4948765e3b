package dev.specula.model;

import org.jspecify.annotations.Nullable;

/**
 * What a forward step returns for one sequence.
 *
 * @param logits the last {@code rows} positions' logits, row-major: [rows, width],
 * float32
 * @param rows positions returned
 * @param width logits per position (the model's output vocabulary)
 * @param hiddenState the last {@code hiddenRows} positions' hidden states (the target's
 * {@code last_hidden_state}, a feature head's {@code regress}) [hiddenRows, hiddenSize],
 * or null
 * @param hiddenRows positions of {@code hiddenState}; 0 when null
 * @param runNanos wall time of the ONNX Runtime calls
 */
public record StepOutput(float[] logits, int rows, int width, float @Nullable [] hiddenState, int hiddenRows,
        long runNanos) {

    /** Hidden states, if any, of the logits rows. */
    public StepOutput(float[] logits, int rows, int width, float @Nullable [] hiddenState, long runNanos) {
        this(logits, rows, width, hiddenState, hiddenState == null ? 0 : rows, runNanos);
    }

    /** Width of one hidden state row; 0 without hidden states. */
    public int hiddenSize() {
        return hiddenState == null ? 0 : hiddenState.length / hiddenRows;
    }

    /** The same output, with {@code nanos} more of earlier calls. */
    StepOutput plusNanos(long nanos) {
        return new StepOutput(logits, rows, width, hiddenState, hiddenRows, runNanos + nanos);
    }

}
