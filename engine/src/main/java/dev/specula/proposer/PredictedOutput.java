package dev.specula.proposer;

import java.util.Arrays;

/**
 * Predicted Outputs (OpenAI's {@code prediction: {"type": "content", ...}}): the text the
 * caller expects, mostly, as the answer (a file before a small edit) is the draft. One
 * instance per sequence: it follows where the output is in the prediction.
 *
 * <pre>
 * cursor      where the output is believed to be in the prediction (the next output token expected at
 *             prediction[cursor]); -1: lost
 * floor       the furthest point the output has verifiably followed the prediction to
 * each round  the tokens committed since the last round are walked: while they equal prediction[cursor],
 *             cursor (and floor) move on. At a different token:
 *   the round's last token, right after a match     the target's correction of a rejected proposal: when
 *                                                   it is the prediction's next token but one, the output
 *                                                   left one out (cursor = floor + 2); else it replaced one,
 *                                                   most likely (cursor = floor + 1). The next round's walk
 *                                                   checks the guess
 *   otherwise                                       realign: the nearest place within 16 from floor where
 *                                                   the prediction has the output's last token (floor itself:
 *                                                   the output inserted text and came back to where it left);
 *                                                   beyond, the nearest where it ends with its last two. None:
 *                                                   lost
 * lost or used up the latest place anywhere in the prediction that ends with the output's last 4, 3 or 2
 *             tokens and has tokens after it (an output that repeats a block, or goes on past the prediction's
 *             end, is still written from it); none: no proposal
 * distrust    after 2 proposals in a row of which the output took nothing, only two-token matches count (no
 *             guesses, no one-token matches) until a proposal is taken up again
 * propose     prediction[cursor, cursor + γ)
 * </pre>
 *
 * The search only moves forward, as an edit's output follows its original in order. The
 * proposals are deterministic (draft probability 1), so rejection sampling stays exact.
 */
public final class PredictedOutput implements TokenProposer {

    /** How far past {@link #floor} a one-token match is believed. */
    static final int ONE_TOKEN_REACH = 16;

    /**
     * After this many proposals in a row the output took nothing of, guesses and
     * one-token matches are no longer believed (an output that does not follow its
     * prediction costs wide verifications for nothing); a proposal taken up restores
     * them.
     */
    static final int MAX_MISSES = 2;

    /** The most of the output's last tokens looked up when the output is lost. */
    static final int LOOKUP_MAX = 4;

    /** The fewest: one token is too common to go by. */
    static final int LOOKUP_MIN = 2;

    /** The predicted completion, tokenized. */
    private final int[] prediction;

    /** Where the output starts in the sequence's tokens. */
    private final int promptLength;

    private int cursor;

    private int floor;

    /** The sequence length the last call saw. */
    private int seenLength;

    /** Tokens the last call proposed. */
    private int proposed;

    /** Rounds in a row whose proposal the output took none of. */
    private int misses;

    /**
     * A proposer of {@code prediction} for one sequence.
     * @param prediction the predicted completion's token ids (no special tokens)
     * @param promptLength the prompt's length: the output starts there
     */
    public PredictedOutput(int[] prediction, int promptLength) {
        if (prediction == null || prediction.length == 0) {
            throw new IllegalArgumentException("A prediction needs at least one token");
        }
        this.prediction = Arrays.copyOf(prediction, prediction.length);
        this.promptLength = promptLength;
        this.seenLength = promptLength;
    }

    @Override
    public int propose(int[] tokens, int length, int maxTokens, int[] out) {
        boolean trusted = misses < MAX_MISSES;
        int matched = 0;
        for (int i = Math.max(seenLength, promptLength); i < length; i++) {
            if (cursor >= 0 && cursor < prediction.length && prediction[cursor] == tokens[i]) {
                floor = ++cursor;
                matched++;
            }
            else if (trusted && cursor >= 0 && cursor == floor && i == length - 1) {
                // the prediction holds one token the output left out, or one it replaced
                boolean skipped = floor + 1 < prediction.length && prediction[floor + 1] == tokens[i];
                cursor = skipped ? floor + 2 : floor + 1;
            }
            else {
                cursor = realign(tokens, length, trusted);
                break;
            }
        }
        seenLength = length;
        if (proposed > 0) {
            misses = matched > 0 ? 0 : misses + 1;
        }
        if (cursor < 0 || cursor >= prediction.length) {
            cursor = lookup(tokens, length);
            if (cursor >= 0) {
                floor = cursor;
            }
        }
        int count = cursor < 0 ? 0 : Math.min(maxTokens, prediction.length - cursor);
        proposed = Math.max(0, count);
        if (count <= 0) {
            return 0;
        }
        System.arraycopy(prediction, cursor, out, 0, count);
        return count;
    }

    /**
     * Where the output is in the prediction, judged from its last tokens: the nearest end
     * within {@link #ONE_TOKEN_REACH} after {@link #floor} of a match of its last token
     * (its last two when not {@code trusted}); beyond, the nearest end of a match of its
     * last two. -1 when there is none. Nearest, not longest: edits are local, and in
     * repetitive text a longer match lies a period further on, where jumping would skip
     * predicted tokens the output still needs.
     */
    private int realign(int[] tokens, int length, boolean trusted) {
        int near = Math.min(prediction.length, floor + ONE_TOKEN_REACH);
        int needed = trusted ? 1 : 2;
        for (int end = Math.max(1, floor); end <= near; end++) {
            if (matchLength(tokens, length, end, needed) == needed) {
                return end;
            }
        }
        for (int end = near + 1; end <= prediction.length; end++) {
            if (matchLength(tokens, length, end, 2) == 2) {
                return end;
            }
        }
        return -1;
    }

    /**
     * Where the output's last {@value #LOOKUP_MAX} tokens (then fewer, down to
     * {@value #LOOKUP_MIN}) end latest in the prediction with a token after them,
     * wherever that is; -1 when nowhere. Only the output's own tokens count, not the
     * prompt's.
     */
    private int lookup(int[] tokens, int length) {
        for (int n = Math.min(LOOKUP_MAX, length - promptLength); n >= LOOKUP_MIN; n--) {
            for (int end = prediction.length - 1; end >= n; end--) {
                if (matchLength(tokens, length, end, n) == n) {
                    return end;
                }
            }
        }
        return -1;
    }

    /**
     * How many of the sequence's last tokens (at most {@code max}) prediction[.., end)
     * ends with.
     */
    private int matchLength(int[] tokens, int length, int end, int max) {
        int n = 0;
        while (n < max && n < end && prediction[end - 1 - n] == tokens[length - 1 - n]) {
            n++;
        }
        return n;
    }

}
