package dev.specula.model;

/**
 * How many tokens one call of a model may carry for each row to compute what it computes
 * in any other call: at least {@code min}, and a whole multiple of {@code multiple}.
 *
 * <p>
 * Float activations allow any call ({@link #ANY}). Weights quantized with int8
 * activations do not: ONNX Runtime's {@code MatMulNBits} at {@code accuracy_level} 4
 * takes other paths for a call of one row ({@code int4-b32-a8}: {@code min} 2), and with
 * blocks of 64 or more it computes rows two at a time, the last row of an odd call alone
 * ({@code int4-b128-a8}: {@code multiple} 2); the int8 rounding of the next layer's
 * activations magnifies the last-bit difference. The graph's metadata says which
 * ({@code specula.min_call_tokens}, {@code specula.call_tokens_multiple}), and the engine
 * then never makes another call to it: a step with too few tokens verifies fillers, and
 * prefill chunks are cut to sizes it allows. Where Specula's 4-bit kernel runs every
 * {@code MatMulNBits} of such a graph ({@code PanelMatMulQ4}, rows computed one by one)
 * the multiple goes and the minimum stays: a one-token call still takes ONNX Runtime's
 * one-row float paths in the attention. Where Specula's kernels run every matrix product
 * and attention of the graph too (a fused packed graph: {@code SpeculaAttention}), both
 * go.
 *
 * @param min the fewest tokens a call may carry, 1 to 16
 * @param multiple what every call's tokens are a multiple of: 1 or 2 (rows computed two
 * at a time)
 */
public record CallTokens(int min, int multiple) {

    /** Any call computes the same rows: float activations. */
    public static final CallTokens ANY = new CallTokens(1, 1);

    public CallTokens {
        if (min < 1 || min > 16) {
            throw new IllegalArgumentException("min must be from 1 to 16 but was " + min);
        }
        if (multiple != 1 && multiple != 2) {
            throw new IllegalArgumentException("multiple must be 1 or 2 but was " + multiple);
        }
    }

    /** Whether every call computes the same rows, whatever it carries. */
    public boolean any() {
        return min == 1 && multiple == 1;
    }

    /** The fewest tokens a call may carry. */
    public int smallest() {
        return atLeast(min);
    }

    /** The fewest tokens a call that must carry at least {@code tokens} may carry. */
    public int atLeast(int tokens) {
        int wanted = Math.max(tokens, min);
        return wanted + (multiple - wanted % multiple) % multiple;
    }

    /** {@code tokens} cut down to a whole multiple (0 when fewer than one). */
    public int roundDown(int tokens) {
        return tokens - tokens % multiple;
    }

    /** Whether a call of {@code tokens} computes each row as any other allowed call. */
    public boolean allows(int tokens) {
        return tokens >= min && tokens % multiple == 0;
    }

}
