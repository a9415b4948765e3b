package dev.specula.sampling;

/**
 * Rewrites logits rows given the tokens before them: penalties, a logit bias, a grammar's
 * mask. The rewritten target is the target: speculation reproduces it exactly, because
 * every verification row, and every draft row, is rewritten for the tokens before that
 * row.
 *
 * <p>
 * One instance per sequence, moved along its tokens: the decode loop {@link #advance
 * advances} it by the committed tokens, then by a round's drafts while it drafts and
 * verifies, and {@link #resetTo resets} it to the committed position before the next
 * pass. Not thread-safe.
 *
 * <p>
 * Internal to the engine: public because the decode loop ({@code dev.specula.engine})
 * drives it.
 */
public interface LogitsProcessor {

    /**
     * Rewrites the row of {@code width} logits at {@code offset}: the row that predicts
     * the token after the current position.
     */
    void process(float[] logits, int offset, int width);

    /**
     * The greedy choice of the rewritten row: the argmax after {@link #process}. A
     * grammar may answer without rewriting the whole row; the row's contents are
     * unspecified afterwards.
     */
    default int greedyChoice(float[] logits, int offset, int width) {
        process(logits, offset, width);
        return Distributions.argmax(logits, offset, width);
    }

    /** Moves past {@code token}, the token chosen after the current position. */
    void advance(int token);

    /** The current position: how many tokens it has advanced by. */
    int mark();

    /** Back to the position {@link #mark} returned: the tokens after it are forgotten. */
    void resetTo(int mark);

}
