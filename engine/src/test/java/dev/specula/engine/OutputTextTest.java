package dev.specula.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;

import dev.specula.tokenizer.TokenDecoder;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Ending rules and streaming of {@link OutputText}, over a decoder whose tokens are plain
 * strings.
 */
class OutputTextTest {

    /** id → text; id 9 is end-of-sequence (a special token, skipped in text). */
    private static final String[] PIECES = { "def", " f", "(x", "):", "\n", "    return", " x", "\n\n", "#", "<eos>",
            "\u00e9" };

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

    private final List<String> streamed = new ArrayList<>();

    private OutputText output(int maxNewTokens, List<String> stops) {
        return new OutputText(DECODER, Set.of(EOS), maxNewTokens, stops, streamed::add);
    }

    @Test
    void stopsAtMaxNewTokensAndKeepsOnlyThatMany() {
        OutputText output = output(3, List.of());
        int kept = output.append(new int[] { 0, 1, 2, 3, 4 }, 0, 5);
        assertThat(kept).isEqualTo(3);
        assertThat(output.finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat(output.text()).isEqualTo("def f(x");
        assertThat(String.join("", streamed)).isEqualTo("def f(x");
    }

    @Test
    void endOfSequenceEndsTheOutputAndIsNotInTheText() {
        OutputText output = output(10, List.of());
        int kept = output.append(new int[] { 0, 1, EOS, 4 }, 0, 4);
        assertThat(kept).isEqualTo(3);
        assertThat(output.tokens()).containsExactly(0, 1, EOS);
        assertThat(output.finishReason()).isEqualTo(FinishReason.EOS);
        assertThat(output.text()).isEqualTo("def f");
    }

    @Test
    void stopStringSplitAcrossTokensAndRoundsIsFoundAndCut() {
        // stop "):\n" spans tokens 3 ("):") and 4 ("\n"), which arrive in different
        // rounds
        OutputText output = output(20, List.of("):\n"));
        output.append(new int[] { 0, 1, 2, 3 }, 0, 4);
        assertThat(output.isFinished()).isFalse();
        // "):" is held back: it may start the stop string
        assertThat(String.join("", streamed)).isEqualTo("def f(x");
        int kept = output.append(new int[] { 4, 5, 6 }, 0, 3);
        assertThat(kept).isEqualTo(1);
        assertThat(output.finishReason()).isEqualTo(FinishReason.STOP);
        assertThat(output.text()).isEqualTo("def f(x");
        assertThat(output.tokens()).containsExactly(0, 1, 2, 3, 4);
        assertThat(String.join("", streamed)).isEqualTo("def f(x");
    }

    @Test
    void heldBackTextIsReleasedWhenItTurnsOutNotToBeAStop() {
        OutputText output = output(20, List.of("):\n\n#"));
        output.append(new int[] { 0, 1, 2, 3 }, 0, 4);
        assertThat(String.join("", streamed)).isEqualTo("def f(x");
        output.append(new int[] { 5 }, 0, 1);
        assertThat(String.join("", streamed)).isEqualTo("def f(x):    return");
        assertThat(output.isFinished()).isFalse();
    }

    @Test
    void incompleteUtf8IsHeldUntilSettled() {
        TokenDecoder bytes = (ids, from, to, skip) -> {
            // token 0 = first byte of 'é' (decodes to U+FFFD alone), token 1 completes it
            StringBuilder text = new StringBuilder();
            for (int i = from; i < to; i++) {
                text.append(
                        ids[i] == 0 ? (i + 1 < to && ids[i + 1] == 1 ? "\u00e9" : "\uFFFD") : ids[i] == 1 ? "" : "a");
            }
            return text.toString();
        };
        OutputText output = new OutputText(bytes, Set.of(), 10, List.of(), streamed::add);
        output.append(new int[] { 2, 0 }, 0, 2);
        assertThat(String.join("", streamed)).isEqualTo("a");
        output.append(new int[] { 1 }, 0, 1);
        assertThat(String.join("", streamed)).isEqualTo("a\u00e9");
    }

    @Test
    void streamedTextConcatenatesToTheFinalText() {
        OutputText output = output(8, List.of("\n\n"));
        output.append(new int[] { 0, 1 }, 0, 2);
        output.append(new int[] { 2, 3, 4 }, 0, 3);
        output.append(new int[] { 5, 6, 4, 0 }, 0, 4);
        assertThat(output.finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat(String.join("", streamed)).isEqualTo(output.text());
    }

}
