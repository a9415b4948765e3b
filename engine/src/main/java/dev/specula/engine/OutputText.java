package dev.specula.engine;

import java.util.Arrays;
import java.util.List;
import java.util.Set;

import org.jspecify.annotations.Nullable;

import dev.specula.tokenizer.TokenDecoder;

/**
 * The generated tokens and their text. Decides when the output ends (end-of-sequence
 * token, max new tokens, stop string — found across token boundaries, since the text is
 * decoded whole) and streams only settled text: an incomplete UTF-8 character at the end,
 * or an end that could still grow into a stop string, is held back until the next tokens
 * settle it.
 */
final class OutputText {

    private static final char REPLACEMENT = '\uFFFD';

    /** Tokens decoded before the anchor, as the window's context. */
    private static final int CONTEXT_TOKENS = 8;

    /** How far the output may run past the anchor before it moves. */
    private static final int ANCHOR_STEP = 48;

    private final TokenDecoder tokenizer;

    private final Set<Integer> eosTokenIds;

    private final int maxNewTokens;

    private final List<String> stopStrings;

    private final int longestStop;

    private final @Nullable TokenStreamListener listener;

    private int[] tokens = new int[64];

    private int count;

    private String text = "";

    /**
     * Tokens before it are settled: their text, {@link #settled}, is a prefix of every
     * later text. An append decodes only from {@link #windowFrom} on.
     */
    private int anchor;

    /** Text of the tokens before {@link #anchor}. */
    private String settled = "";

    /**
     * First token of the decoded window: a few tokens before the anchor, so that the
     * tokenizer sees the anchor's neighbours (a SentencePiece decoder strips the leading
     * space of a window's first token, byte-fallback tokens decode in groups).
     */
    private int windowFrom;

    /**
     * Text of tokens [windowFrom, anchor): the part of the window's text before the
     * anchor.
     */
    private String windowHead = "";

    private int emitted;

    private @Nullable FinishReason finishReason;

    OutputText(TokenDecoder tokenizer, Set<Integer> eosTokenIds, int maxNewTokens, List<String> stopStrings,
            @Nullable TokenStreamListener listener) {
        this.tokenizer = tokenizer;
        this.eosTokenIds = eosTokenIds;
        this.maxNewTokens = maxNewTokens;
        this.stopStrings = stopStrings;
        this.longestStop = stopStrings.stream().mapToInt(String::length).max().orElse(0);
        this.listener = listener;
    }

    /**
     * Appends accepted tokens in order until one ends the output, then streams what is
     * settled.
     * @return how many of the tokens the output kept
     */
    int append(int[] newTokens, int from, int to) {
        if (finishReason != null) {
            throw new IllegalStateException("The output has already ended: " + finishReason);
        }
        int before = count;
        for (int i = from; i < to && finishReason == null; i++) {
            add(newTokens[i]);
            if (eosTokenIds.contains(newTokens[i])) {
                finishReason = FinishReason.EOS;
            }
            else if (count == maxNewTokens) {
                finishReason = FinishReason.LENGTH;
            }
        }
        int previousLength = text.length();
        text = decode(count);
        if (!stopStrings.isEmpty()) {
            cutAtStopString(before, Math.max(0, Math.min(previousLength, emitted) - longestStop));
        }
        stream();
        return count - before;
    }

    /**
     * Ends the output early (cancellation). Text not yet streamed — a possible start of a
     * stop string, an incomplete character — is dropped, so the final text is exactly
     * what was streamed.
     */
    void finish(FinishReason reason) {
        if (finishReason == null) {
            finishReason = reason;
            text = text.substring(0, emitted);
        }
    }

    private void cutAtStopString(int countBefore, int searchFrom) {
        int at = earliestStop(text, searchFrom);
        if (at < 0) {
            return;
        }
        // the fewest tokens whose text already contains the stop string
        for (int kept = countBefore + 1; kept <= count; kept++) {
            String candidate = decode(kept);
            int found = earliestStop(candidate, searchFrom);
            if (found >= 0) {
                count = kept;
                text = candidate.substring(0, found);
                finishReason = FinishReason.STOP;
                return;
            }
        }
    }

    private int earliestStop(String haystack, int from) {
        int earliest = -1;
        for (String stop : stopStrings) {
            int at = haystack.indexOf(stop, from);
            if (at >= 0 && (earliest < 0 || at < earliest)) {
                earliest = at;
            }
        }
        return earliest;
    }

    private void stream() {
        int settled = text.length();
        if (finishReason == null) {
            while (settled > emitted && text.charAt(settled - 1) == REPLACEMENT) {
                settled--;
            }
            settled -= possibleStopStart(settled);
        }
        if (settled > emitted) {
            String delta = text.substring(emitted, settled);
            emitted = settled;
            if (listener != null) {
                listener.onText(delta);
            }
        }
    }

    /**
     * Length of the longest end of text[..end] that is a proper start of some stop
     * string.
     */
    private int possibleStopStart(int end) {
        for (int length = Math.min(longestStop - 1, end - emitted); length > 0; length--) {
            String tail = text.substring(end - length, end);
            for (String stop : stopStrings) {
                if (stop.startsWith(tail)) {
                    return length;
                }
            }
        }
        return 0;
    }

    /**
     * Text of the first {@code tokenCount} tokens (a final end-of-sequence token left
     * out). Decodes the window after the anchor and puts it after the settled text; the
     * whole output is decoded only when the anchor moves, every {@link #ANCHOR_STEP}
     * tokens, and once more when the output ends, so the final text is the whole
     * decode's.
     */
    private String decode(int tokenCount) {
        int end = textEnd(tokenCount);
        if (end < anchor) {
            return tokenizer.decode(tokens, 0, end, true);
        }
        if (finishReason != null || end - anchor >= ANCHOR_STEP + CONTEXT_TOKENS) {
            String whole = tokenizer.decode(tokens, 0, end, true);
            moveAnchor(whole, end);
            return whole;
        }
        String window = tokenizer.decode(tokens, windowFrom, end, true);
        if (!window.startsWith(windowHead)) {
            return tokenizer.decode(tokens, 0, end, true);
        }
        return settled + window.substring(windowHead.length());
    }

    private int textEnd(int tokenCount) {
        return tokenCount > 0 && eosTokenIds.contains(tokens[tokenCount - 1]) ? tokenCount - 1 : tokenCount;
    }

    /**
     * Moves the anchor to {@code CONTEXT_TOKENS} before {@code end}, where the text of
     * the tokens before it is known from the whole text: the window from there decodes to
     * the same ending, and its head ends on a complete character. Otherwise it stays
     * where it is.
     */
    private void moveAnchor(String whole, int end) {
        int next = end - CONTEXT_TOKENS;
        if (next <= anchor) {
            return;
        }
        int from = Math.max(0, next - CONTEXT_TOKENS);
        String head = tokenizer.decode(tokens, from, next, true);
        String window = tokenizer.decode(tokens, from, end, true);
        if (!window.startsWith(head) || !head.isEmpty() && head.charAt(head.length() - 1) == REPLACEMENT) {
            return;
        }
        String after = window.substring(head.length());
        if (!whole.endsWith(after)) {
            return;
        }
        anchor = next;
        windowFrom = from;
        windowHead = head;
        settled = whole.substring(0, whole.length() - after.length());
    }

    private void add(int token) {
        if (count == tokens.length) {
            tokens = Arrays.copyOf(tokens, count * 2);
        }
        tokens[count++] = token;
    }

    int count() {
        return count;
    }

    int[] tokens() {
        return Arrays.copyOf(tokens, count);
    }

    String text() {
        return text;
    }

    boolean isFinished() {
        return finishReason != null;
    }

    @Nullable FinishReason finishReason() {
        return finishReason;
    }

}
