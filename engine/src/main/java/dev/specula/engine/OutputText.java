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

    private final TokenDecoder tokenizer;

    private final Set<Integer> eosTokenIds;

    private final int maxNewTokens;

    private final List<String> stopStrings;

    private final int longestStop;

    private final @Nullable TokenStreamListener listener;

    private int[] tokens = new int[64];

    private int count;

    private String text = "";

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

    private String decode(int tokenCount) {
        int end = tokenCount;
        if (end > 0 && eosTokenIds.contains(tokens[end - 1])) {
            end--;
        }
        return tokenizer.decode(tokens, 0, end, true);
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
