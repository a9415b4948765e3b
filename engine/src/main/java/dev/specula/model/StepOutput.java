package dev.specula.model;

import org.jspecify.annotations.Nullable;

/**
 * What a forward step returns for one sequence.
 *
 * @param logits the last {@code rows} positions' logits, row-major: [rows, width],
 * float32
 * @param rows positions returned
 * @param width logits per position (the model's output vocabulary)
 * @param hiddenState the same rows of {@code last_hidden_state} [rows, hiddenSize], or
 * null
 * @param runNanos wall time of the ONNX Runtime call
 */
public record StepOutput(float[] logits, int rows, int width, float @Nullable [] hiddenState, long runNanos) {
}
