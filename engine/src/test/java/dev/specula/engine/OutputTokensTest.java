package dev.specula.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

import org.junit.jupiter.api.Test;

import dev.specula.sampling.TokenLogprob;
import dev.specula.tokenizer.TokenDecoder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;

/**
 * How each token was made, as {@link OutputText} sends it to a listener that wants
 * tokens: aligned with the text actually sent, when a stop string or an incomplete
 * character holds text back; and {@link OutputQueue} joining what waits.
 */
class OutputTokensTest {

    /** id → text; id 9 is end-of-sequence (a special token, skipped in text). */
    private static final String[] PIECES = { "def", " f", "(x", "):", "\n", "    return", " x", "\n\n", "#", "<eos>" };

    private static final int EOS = 9;

    private static final TokenDecoder DECODER = (ids, from, to, skipSpecial) -> {
        StringBuilder text = new StringBuilder();
        for (int i = from; i < to; i++) {
            if (!(skipSpecial && ids[i] == EOS)) {
                text.append(PIECES[ids[i]]);
            }
        }
        return text.toString();
    };

    /** Every call the listener heard: its text and its tokens. */
    private final List<String> texts = new ArrayList<>();

    private final List<OutputToken> tokens = new ArrayList<>();

    private final TokenStreamListener listener = new TokenStreamListener() {
        @Override
        public void onText(String text) {
            throw new AssertionError("A listener that wants tokens hears onTokens only");
        }

        @Override
        public boolean wantsTokens() {
            return true;
        }

        @Override
        public void onTokens(String text, List<OutputToken> pieces) {
            assertThat(String.join("", pieces.stream().map(OutputToken::text).toList()))
                .as("the pieces are the call's text")
                .isEqualTo(text);
            texts.add(text);
            tokens.addAll(pieces);
        }
    };

    private OutputText output(TokenDecoder decoder, int maxNewTokens, List<String> stops) {
        return new OutputText(decoder, Set.of(EOS), maxNewTokens, stops, listener);
    }

    @Test
    void eachRoundSendsItsAcceptedDraftsThenTheTargetsToken() {
        OutputText output = output(DECODER, 20, List.of());
        output.append(new int[] { 0, 1, 2 }, 0, 3, TokenKind.CORRECTED, 4);
        output.append(new int[] { 3 }, 0, 1, TokenKind.PLAIN, 0);
        output.append(new int[] { 4, 5 }, 0, 2, TokenKind.BONUS, 1);

        assertThat(tokens)
            .extracting(OutputToken::index, OutputToken::id, OutputToken::text, OutputToken::kind, OutputToken::round,
                    OutputToken::gamma)
            .containsExactly(tuple(0, 0, "def", TokenKind.ACCEPTED, 1, 4), tuple(1, 1, " f", TokenKind.ACCEPTED, 1, 4),
                    tuple(2, 2, "(x", TokenKind.CORRECTED, 1, 4), tuple(3, 3, "):", TokenKind.PLAIN, 2, 0),
                    tuple(4, 4, "\n", TokenKind.ACCEPTED, 3, 1), tuple(5, 5, "    return", TokenKind.BONUS, 3, 1));
        assertThat(texts).containsExactly("def f(x", "):", "\n    return");
    }

    @Test
    void aTokenWhoseEndMayStartAStopStringComesInTwoPieces() {
        // "):" may start the stop ":\nX": ")" is sent, ":" held until the next round
        OutputText output = output(DECODER, 20, List.of(":\nX"));
        output.append(new int[] { 0, 1, 2, 3 }, 0, 4, TokenKind.BONUS, 3);
        assertThat(texts).containsExactly("def f(x)");
        output.append(new int[] { 4, 5 }, 0, 2, TokenKind.CORRECTED, 2);

        assertThat(tokens).extracting(OutputToken::index, OutputToken::text, OutputToken::kind)
            .containsExactly(tuple(0, "def", TokenKind.ACCEPTED), tuple(1, " f", TokenKind.ACCEPTED),
                    tuple(2, "(x", TokenKind.ACCEPTED), tuple(3, ")", TokenKind.BONUS), tuple(3, ":", TokenKind.BONUS),
                    tuple(4, "\n", TokenKind.ACCEPTED), tuple(5, "    return", TokenKind.CORRECTED));
        assertThat(String.join("", texts)).isEqualTo(output.text());
    }

    @Test
    void eachTokensLogprobComesWithItsFirstPieceOnly() {
        // as above: token 3's ")" is sent with its log-probability, its ":" later without
        OutputText output = output(DECODER, 20, List.of(":\nX"));
        output.append(new int[] { 0, 1, 2, 3 }, 0, 4, TokenKind.BONUS, 3, logprobs(0, 1, 2, 3));
        output.append(new int[] { 4, 5 }, 0, 2, TokenKind.CORRECTED, 2, logprobs(4, 5));

        assertThat(tokens)
            .extracting(OutputToken::index, OutputToken::text,
                    (token) -> token.logprob() == null ? null : token.logprob().token())
            .containsExactly(tuple(0, "def", 0), tuple(1, " f", 1), tuple(2, "(x", 2), tuple(3, ")", 3),
                    tuple(3, ":", null), tuple(4, "\n", 4), tuple(5, "    return", 5));
    }

    @Test
    void aTokenWithoutTextHasItsLogprobOnItsEmptyPiece() {
        OutputText output = output(DECODER, 20, List.of());
        output.append(new int[] { 0 }, 0, 1, TokenKind.PLAIN, 0, logprobs(0));
        output.append(new int[] { EOS }, 0, 1, TokenKind.CORRECTED, 2, logprobs(EOS));

        assertThat(tokens).extracting(OutputToken::text, (token) -> token.logprob().token())
            .containsExactly(tuple("def", 0), tuple("", EOS));
    }

    @Test
    void aStopStringCutsTheTokensAndTheirText() {
        // the stop "):\n" ends in token 4: tokens after it are dropped, its text is cut
        OutputText output = output(DECODER, 20, List.of("):\n"));
        output.append(new int[] { 0, 1, 2, 3, 4, 5 }, 0, 6, TokenKind.BONUS, 5);

        assertThat(output.finishReason()).isEqualTo(FinishReason.STOP);
        assertThat(String.join("", texts)).isEqualTo(output.text()).isEqualTo("def f(x");
        assertThat(tokens).extracting(OutputToken::index, OutputToken::text)
            .containsExactly(tuple(0, "def"), tuple(1, " f"), tuple(2, "(x"), tuple(3, ""), tuple(4, ""));
        assertThat(tokens).extracting(OutputToken::kind).containsOnly(TokenKind.ACCEPTED);
    }

    @Test
    void aCharacterBelongsToTheTokenThatCompletesIt() {
        TokenDecoder bytes = (ids, from, to, skip) -> {
            // token 0 = first byte of 'é' (decodes to U+FFFD alone), token 1 completes it
            StringBuilder text = new StringBuilder();
            for (int i = from; i < to; i++) {
                text.append(
                        ids[i] == 0 ? (i + 1 < to && ids[i + 1] == 1 ? "\u00e9" : "\uFFFD") : ids[i] == 1 ? "" : "a");
            }
            return text.toString();
        };
        OutputText output = output(bytes, 10, List.of());
        output.append(new int[] { 2, 0 }, 0, 2, TokenKind.CORRECTED, 2);
        output.append(new int[] { 1 }, 0, 1, TokenKind.PLAIN, 0);

        assertThat(tokens).extracting(OutputToken::index, OutputToken::text, OutputToken::kind)
            .containsExactly(tuple(0, "a", TokenKind.ACCEPTED), tuple(1, "", TokenKind.CORRECTED),
                    tuple(2, "\u00e9", TokenKind.PLAIN));
        assertThat(String.join("", texts)).isEqualTo("a\u00e9");
    }

    @Test
    void theEndOfSequenceComesWithoutTextAndAloneWhenNothingElseIsNew() {
        OutputText output = output(DECODER, 20, List.of());
        output.append(new int[] { 0 }, 0, 1, TokenKind.PLAIN, 0);
        output.append(new int[] { EOS }, 0, 1, TokenKind.CORRECTED, 2);

        assertThat(output.finishReason()).isEqualTo(FinishReason.EOS);
        assertThat(texts).containsExactly("def", "");
        assertThat(tokens).extracting(OutputToken::index, OutputToken::id, OutputToken::text, OutputToken::kind)
            .containsExactly(tuple(0, 0, "def", TokenKind.PLAIN), tuple(1, EOS, "", TokenKind.CORRECTED));
    }

    @Test
    void aListenerThatWantsNoTokensHearsTheSameTextAsBefore() {
        List<String> plain = new ArrayList<>();
        OutputText tracked = output(DECODER, 8, List.of("\n\n"));
        OutputText untracked = new OutputText(DECODER, Set.of(EOS), 8, List.of("\n\n"), plain::add);
        for (int[] round : new int[][] { { 0, 1 }, { 2, 3, 4 }, { 5, 6, 4, 0 } }) {
            tracked.append(round, 0, round.length, TokenKind.BONUS, round.length - 1);
            untracked.append(round, 0, round.length);
        }
        assertThat(texts).isEqualTo(plain);
        assertThat(String.join("", plain)).isEqualTo(untracked.text()).isEqualTo(tracked.text());
    }

    @Test
    void theQueueKeepsTheFirstPiecesLogprobWhenItJoinsPieces() {
        List<Runnable> deliveries = new ArrayList<>();
        OutputQueue queue = new OutputQueue(listener, new CompletableFuture<>(), deliveries::add);
        TokenLogprob third = logprobs(3).get(0);
        queue.onTokens(")", List.of(new OutputToken(3, 3, ")", TokenKind.PLAIN, 2, 0, third)));
        queue.onTokens(":", List.of(new OutputToken(3, 3, ":", TokenKind.PLAIN, 2, 0)));
        deliveries.forEach(Runnable::run);

        assertThat(tokens).extracting(OutputToken::text, OutputToken::logprob).containsExactly(tuple("):", third));
    }

    @Test
    void theQueueDeliversThePromptsLogprobsBeforeAnyText() {
        List<Object> heard = new ArrayList<>();
        TokenStreamListener ordered = new TokenStreamListener() {
            @Override
            public void onText(String text) {
                heard.add(text);
            }

            @Override
            public void onPromptLogprobs(List<TokenLogprob> logprobs) {
                heard.add(logprobs);
            }
        };
        List<Runnable> deliveries = new ArrayList<>();
        OutputQueue queue = new OutputQueue(ordered, new CompletableFuture<>(), deliveries::add);
        List<TokenLogprob> prompt = logprobs(7, 8);
        queue.onPromptLogprobs(prompt);
        queue.onText("def");
        deliveries.forEach(Runnable::run);

        assertThat(heard).containsExactly(prompt, "def");
    }

    /** A log-probability of each token, its id negated (values to tell them apart). */
    private static List<TokenLogprob> logprobs(int... ids) {
        List<TokenLogprob> logprobs = new ArrayList<>();
        for (int id : ids) {
            logprobs.add(new TokenLogprob(id, -id, new int[0], new float[0]));
        }
        return logprobs;
    }

    @Test
    void theQueueJoinsWaitingTextAndThePiecesOfOneToken() {
        List<Runnable> deliveries = new ArrayList<>();
        CompletableFuture<GenerationResult> result = new CompletableFuture<>();
        OutputQueue queue = new OutputQueue(listener, result, deliveries::add);
        assertThat(queue.wantsTokens()).isTrue();
        queue.onTokens("def f(x)", List.of(new OutputToken(0, 0, "def", TokenKind.ACCEPTED, 1, 3),
                new OutputToken(1, 1, " f", TokenKind.ACCEPTED, 1, 3),
                new OutputToken(2, 2, "(x", TokenKind.BONUS, 1, 3), new OutputToken(3, 3, ")", TokenKind.PLAIN, 2, 0)));
        queue.onTokens(":", List.of(new OutputToken(3, 3, ":", TokenKind.PLAIN, 2, 0)));
        deliveries.forEach(Runnable::run);

        assertThat(texts).containsExactly("def f(x):");
        assertThat(tokens).extracting(OutputToken::index, OutputToken::text)
            .containsExactly(tuple(0, "def"), tuple(1, " f"), tuple(2, "(x"), tuple(3, "):"));
    }

}
