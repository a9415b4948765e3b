package dev.specula.engine;

import java.util.ArrayList;
import java.util.List;

import dev.specula.model.CallTokens;
import dev.specula.sampling.TokenLogprob;

/**
 * One request's prompt log-probabilities ({@link GenerationRequest#promptLogprobs()}),
 * read from the target's rows as the prefill feeds the prompt: the row at prompt position
 * p (the target having seen tokens 0..p) gives token p + 1's log-probability and the most
 * likely tokens there. Only the per-row results are kept, never the rows.
 *
 * <p>
 * A call's rows cost {@code rows × vocabulary × 4} bytes (151,936 columns: 0.6 MB a row),
 * so the prefill of a scored prompt feeds it in calls of at most {@link #rowsPerCall}
 * rows each, shared by the sequences that score in the same step. Between calls, the
 * target has fed exactly the positions whose rows were read ({@link #scored()}).
 */
final class PromptScoring {

    /**
     * Bytes of float32 logits that one target call may return for the prompts it scores,
     * unless set otherwise: 64 MiB, 110 rows of a 151,936-token vocabulary.
     */
    static final long DEFAULT_LOGITS_BYTES = 64L << 20;

    private final int[] prompt;

    private final int top;

    /** Entry i: prompt token i + 1's. */
    private final List<TokenLogprob> logprobs;

    PromptScoring(int[] prompt, int top) {
        this.prompt = prompt;
        this.top = top;
        this.logprobs = new ArrayList<>(Math.max(0, prompt.length - 1));
    }

    /**
     * Rows of logits each scoring sequence may take in one call: {@code logitsBytes} of
     * rows {@code width} wide split into {@code shares} (the sequences scoring together
     * in a packed call; the rows of a padded batch, each of which computes as many rows
     * as the longest), cut to a size {@code call} allows (another call computes different
     * rows), but never fewer than its smallest.
     */
    static int rowsPerCall(long logitsBytes, int width, int shares, CallTokens call) {
        long rows = logitsBytes / ((long) width * Float.BYTES) / Math.max(1, shares);
        return Math.max(call.smallest(), call.roundDown((int) Math.min(rows, Integer.MAX_VALUE)));
    }

    /** Prompt positions whose rows were read; the next row read is this position's. */
    int scored() {
        return logprobs.size();
    }

    /**
     * Rows still to read: one per prompt position but the last (which predicts output).
     */
    int rowsLeft() {
        return prompt.length - 1 - logprobs.size();
    }

    boolean done() {
        return rowsLeft() == 0;
    }

    /**
     * Reads the first {@code rows} rows of {@code logits} ([rows or more, width],
     * row-major): those of positions {@link #scored()} on.
     */
    void read(float[] logits, int width, int rows) {
        if (rows > rowsLeft()) {
            throw new IllegalStateException(
                    "Asked to read " + rows + " rows of prompt positions, but " + rowsLeft() + " are left");
        }
        for (int row = 0; row < rows; row++) {
            int next = prompt[logprobs.size() + 1];
            logprobs.add(TokenLogprob.of(logits, row * width, width, next, top));
        }
    }

    /** Prompt tokens 1.. their log-probabilities, as read so far. */
    List<TokenLogprob> logprobs() {
        return logprobs;
    }

}
