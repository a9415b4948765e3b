package dev.specula.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

import org.jspecify.annotations.Nullable;

import dev.specula.sampling.TokenLogprob;
import dev.specula.tokenizer.TokenDecoder;

/**
 * The generated tokens and their text. Decides when the output ends (end-of-sequence
 * token, max new tokens, stop string — found across token boundaries, since the text is
 * decoded whole) and streams only settled text: an incomplete UTF-8 character at the end,
 * or an end that could still grow into a stop string, is held back until the next tokens
 * settle it.
 *
 * <p>
 * For a listener that {@link TokenStreamListener#wantsTokens() wants tokens} it also
 * keeps how each token was made and where its text ends, and sends each piece of text
 * with the tokens it belongs to: token i's text is the output's text from where token i -
 * 1's ends to where its own ends, the text of the first i + 1 tokens (an incomplete
 * character at its end left out, so a character belongs to the token that completes it).
 * Each token's log-probability, when given, goes with its first piece: the call that
 * first sends any of its text, or that sends it as a piece without text (end of sequence;
 * a byte of a character that a later token completes).
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

    /**
     * Whether nothing reads the text before the output ends (no listener, no stop
     * string): it is then decoded when asked for or when the output ends, not at every
     * append.
     */
    private final boolean textOnDemand;

    /** Whether {@link #text} lags the tokens (text on demand only). */
    private boolean textStale;

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

    /** Whether the listener hears the tokens: then the arrays below are kept. */
    private final boolean tracksTokens;

    /** How each token was made, its round and the round's γ; when tracking. */
    private TokenKind @Nullable [] kinds;

    private int @Nullable [] rounds;

    private int @Nullable [] gammas;

    /** Each token's log-probability, when given; when tracking. */
    private @Nullable TokenLogprob @Nullable [] logprobs;

    /**
     * Where each unreported token's text ends in {@link #text} (recomputed every round: a
     * later token may change the text of an earlier one that is not yet settled).
     */
    private int @Nullable [] textEnds;

    /** Rounds appended so far. */
    private int round;

    /** Tokens whose whole text has been sent to the listener. */
    private int reported;

    /** Whether a first piece of token {@link #reported} has been sent already. */
    private boolean reportedPart;

    OutputText(TokenDecoder tokenizer, Set<Integer> eosTokenIds, int maxNewTokens, List<String> stopStrings,
            @Nullable TokenStreamListener listener) {
        this.tokenizer = tokenizer;
        this.eosTokenIds = eosTokenIds;
        this.maxNewTokens = maxNewTokens;
        this.stopStrings = stopStrings;
        this.longestStop = stopStrings.stream().mapToInt(String::length).max().orElse(0);
        this.listener = listener;
        this.tracksTokens = listener != null && listener.wantsTokens();
        this.textOnDemand = listener == null && stopStrings.isEmpty();
        if (tracksTokens) {
            this.kinds = new TokenKind[tokens.length];
            this.rounds = new int[tokens.length];
            this.gammas = new int[tokens.length];
            this.textEnds = new int[tokens.length];
            this.logprobs = new TokenLogprob[tokens.length];
        }
    }

    /**
     * Appends a round's tokens whose making is not told (each reported
     * {@link TokenKind#PLAIN}).
     * @return how many of the tokens the output kept
     */
    int append(int[] newTokens, int from, int to) {
        return append(newTokens, from, to, TokenKind.PLAIN, 0);
    }

    /**
     * Appends a round's tokens in order until one ends the output, then streams what is
     * settled: drafts the target accepted, then the target's own token, of kind
     * {@code targetKind} ({@link TokenKind#PLAIN}: the round drafted nothing, and every
     * token is plain).
     * @param gamma the draft length the policy chose for the round
     * @return how many of the tokens the output kept
     */
    int append(int[] newTokens, int from, int to, TokenKind targetKind, int gamma) {
        return append(newTokens, from, to, targetKind, gamma, null);
    }

    /**
     * {@link #append(int[], int, int, TokenKind, int)}, with the tokens'
     * log-probabilities (one per token from {@code from} on; null: none), sent to a
     * listener that wants tokens with each token's first piece.
     */
    int append(int[] newTokens, int from, int to, TokenKind targetKind, int gamma,
            @Nullable List<TokenLogprob> roundLogprobs) {
        if (finishReason != null) {
            throw new IllegalStateException("The output has already ended: " + finishReason);
        }
        int before = count;
        round++;
        for (int i = from; i < to && finishReason == null; i++) {
            add(newTokens[i]);
            if (tracksTokens) {
                kinds[count - 1] = i == to - 1 || targetKind == TokenKind.PLAIN ? targetKind : TokenKind.ACCEPTED;
                rounds[count - 1] = round;
                gammas[count - 1] = gamma;
                logprobs[count - 1] = roundLogprobs != null && i - from < roundLogprobs.size()
                        ? roundLogprobs.get(i - from) : null;
            }
            if (eosTokenIds.contains(newTokens[i])) {
                finishReason = FinishReason.EOS;
            }
            else if (count == maxNewTokens) {
                finishReason = FinishReason.LENGTH;
            }
        }
        if (textOnDemand && finishReason == null) {
            textStale = true;
            return count - before;
        }
        textStale = false;
        int previousLength = text.length();
        text = decode(count);
        if (!stopStrings.isEmpty()) {
            cutAtStopString(before, Math.max(0, Math.min(previousLength, emitted) - longestStop));
        }
        if (tracksTokens) {
            measureTextEnds();
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
            if (textStale) {
                decodeOnDemand();
            }
            text = text.substring(0, emitted);
        }
    }

    /**
     * Text on demand: decodes the tokens, and settles what {@link #stream()} would have:
     * the text less an incomplete character at its end.
     */
    private void decodeOnDemand() {
        textStale = false;
        text = decode(count);
        int settled = text.length();
        while (settled > emitted && text.charAt(settled - 1) == REPLACEMENT) {
            settled--;
        }
        emitted = Math.max(emitted, settled);
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
        if (tracksTokens) {
            streamTokens(Math.max(settled, emitted));
            return;
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
     * Sends text up to {@code settled} with the pieces of the tokens it holds, and every
     * token that ends there (one without text too).
     */
    private void streamTokens(int settled) {
        List<OutputToken> pieces = new ArrayList<>();
        int at = emitted;
        while (reported < count) {
            int end = reported == count - 1 && finishReason != null ? text.length()
                    : Math.min(Math.max(textEnds[reported], at), text.length());
            if (end > settled) {
                // its text goes on past what is settled: this part now, the rest later
                if (settled > at) {
                    pieces.add(piece(reported, text.substring(at, settled)));
                    reportedPart = true;
                    at = settled;
                }
                break;
            }
            if (end > at || !reportedPart) {
                pieces.add(piece(reported, text.substring(at, end)));
            }
            at = end;
            reported++;
            reportedPart = false;
        }
        String delta = text.substring(emitted, settled);
        emitted = settled;
        if (!pieces.isEmpty() || !delta.isEmpty()) {
            listener.onTokens(delta, pieces);
        }
    }

    /**
     * A piece of token {@code index}: its first (with its log-probability) unless a piece
     * of it was sent already.
     */
    private OutputToken piece(int index, String pieceText) {
        return new OutputToken(index, tokens[index], pieceText, kinds[index], rounds[index], gammas[index],
                reportedPart ? null : logprobs[index]);
    }

    /**
     * Where the text of each token not yet reported ends: the length of the text of the
     * tokens up to it, an incomplete character at its end left out.
     */
    private void measureTextEnds() {
        for (int i = reported; i < count; i++) {
            String upTo = i == count - 1 ? text : decode(i + 1);
            int end = upTo.length();
            while (end > 0 && upTo.charAt(end - 1) == REPLACEMENT) {
                end--;
            }
            textEnds[i] = Math.min(end, text.length());
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
            if (finishReason == null) {
                // (once the output has ended, its windows matter no more)
                moveAnchor(whole, end);
            }
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
            if (tracksTokens) {
                kinds = Arrays.copyOf(kinds, count * 2);
                rounds = Arrays.copyOf(rounds, count * 2);
                gammas = Arrays.copyOf(gammas, count * 2);
                textEnds = Arrays.copyOf(textEnds, count * 2);
                logprobs = Arrays.copyOf(logprobs, count * 2);
            }
        }
        tokens[count++] = token;
    }

    /**
     * Tells the listener the prompt's log-probabilities (before any text: the prefill
     * scored them).
     */
    void promptScored(List<TokenLogprob> promptLogprobs) {
        if (listener != null) {
            listener.onPromptLogprobs(List.copyOf(promptLogprobs));
        }
    }

    int count() {
        return count;
    }

    int[] tokens() {
        return Arrays.copyOf(tokens, count);
    }

    String text() {
        if (textStale) {
            decodeOnDemand();
        }
        return text;
    }

    boolean isFinished() {
        return finishReason != null;
    }

    @Nullable FinishReason finishReason() {
        return finishReason;
    }

}
