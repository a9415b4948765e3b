package dev.specula.proposer;

import java.util.Arrays;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The prediction as a draft: proposed in order while the output follows it, realigned
 * after the output departs from it.
 */
class PredictedOutputTest {

    private static final int[] PROMPT = { 1, 2, 3 };

    private final int[] out = new int[8];

    @Test
    void proposesThePredictionInOrderWhileTheOutputFollowsIt() {
        PredictedOutput prediction = new PredictedOutput(new int[] { 10, 11, 12, 13 }, PROMPT.length);
        assertThat(propose(prediction, sequence(), 2)).containsExactly(10, 11);
        assertThat(propose(prediction, sequence(10, 11), 2)).containsExactly(12, 13);
        assertThat(propose(prediction, sequence(10, 11, 12, 13), 2)).as("used up").isEmpty();
    }

    @Test
    void realignsAfterAnInsertion() {
        PredictedOutput prediction = new PredictedOutput(new int[] { 10, 11, 12, 13, 14, 15 }, PROMPT.length);
        propose(prediction, sequence(), 2);
        // the output inserted 99 before 12, then went on with 12
        assertThat(propose(prediction, sequence(10, 11, 99, 12), 4)).containsExactly(13, 14, 15);
    }

    @Test
    void realignsAfterADeletion() {
        PredictedOutput prediction = new PredictedOutput(new int[] { 10, 11, 12, 13, 14, 15, 16, 17 }, PROMPT.length);
        propose(prediction, sequence(), 2);
        // 12 and 13 were left out: first taken for a replaced 12 (a guess)
        assertThat(propose(prediction, sequence(10, 11, 14), 4)).containsExactly(13, 14, 15, 16);
        // the guess was wrong (15 follows 14): the search finds "14 15"
        assertThat(propose(prediction, sequence(10, 11, 14, 15), 4)).containsExactly(16, 17);
    }

    @Test
    void guessesAReplacedTokenThenRealignsWhenTheOutputMeetsThePredictionAgain() {
        PredictedOutput prediction = new PredictedOutput(new int[] { 10, 11, 12, 13, 14, 15 }, PROMPT.length);
        assertThat(propose(prediction, sequence(), 3)).containsExactly(10, 11, 12);
        // 50 replaced 11: the prediction goes on after it
        assertThat(propose(prediction, sequence(10, 50), 3)).containsExactly(12, 13, 14);
        // not 12 but 51: lost, nothing to propose
        assertThat(propose(prediction, sequence(10, 50, 51), 3)).isEmpty();
        // the search only looks forward: 13 comes after what the output followed
        assertThat(propose(prediction, sequence(10, 50, 51, 13), 3)).containsExactly(14, 15);
    }

    @Test
    void aOneTokenMatchFarAheadIsNotBelieved() {
        int[] predicted = new int[40];
        for (int i = 0; i < predicted.length; i++) {
            predicted[i] = 100 + i;
        }
        predicted[30] = 7;
        PredictedOutput prediction = new PredictedOutput(predicted, PROMPT.length);
        propose(prediction, sequence(), 2);
        // 7 occurs only 29 tokens on: a guess of a replacement, not a jump
        assertThat(propose(prediction, sequence(100, 7), 2)).containsExactly(102, 103);
    }

    @Test
    void theNearestMatchWinsAndAFarOneNeedsTwoTokens() {
        // 7 occurs at 1 and at 4: the nearest is taken
        PredictedOutput near = new PredictedOutput(new int[] { 7, 20, 21, 6, 7, 30, 31 }, PROMPT.length);
        near.propose(sequence(), PROMPT.length, 1, out);
        assertThat(propose(near, sequence(5, 6, 7), 2)).containsExactly(20, 21);
        // beyond 16 tokens only a two-token match counts: "6 7" at 21..22, not the lone 7
        // at 18
        int[] predicted = new int[26];
        Arrays.fill(predicted, 1);
        predicted[18] = 7;
        predicted[21] = 6;
        predicted[22] = 7;
        predicted[23] = 40;
        PredictedOutput far = new PredictedOutput(predicted, PROMPT.length);
        far.propose(sequence(), PROMPT.length, 1, out);
        assertThat(propose(far, sequence(5, 6, 7), 1)).containsExactly(40);
    }

    @Test
    void aPredictedTokenTheOutputLeftOutIsSkipped() {
        PredictedOutput prediction = new PredictedOutput(new int[] { 10, 11, 99, 12, 13 }, PROMPT.length);
        propose(prediction, sequence(), 2);
        // the target corrected 99 to 12: the prediction's next token but one
        assertThat(propose(prediction, sequence(10, 11, 12), 2)).containsExactly(13);
    }

    @Test
    void anOutputThatIgnoresThePredictionStopsCostingProposals() {
        PredictedOutput prediction = new PredictedOutput(new int[] { 10, 11, 12, 13, 14, 15 }, PROMPT.length);
        assertThat(propose(prediction, sequence(), 2)).containsExactly(10, 11);
        // not taken: a replaced token is guessed
        assertThat(propose(prediction, sequence(7), 2)).containsExactly(11, 12);
        // not taken either: one-token matches and guesses are no longer believed
        assertThat(propose(prediction, sequence(7, 8), 2)).isEmpty();
        assertThat(propose(prediction, sequence(7, 8, 12), 2)).isEmpty();
        // two tokens of the prediction in a row are
        assertThat(propose(prediction, sequence(7, 8, 12, 13), 2)).containsExactly(14, 15);
    }

    @Test
    void resumesWhereTheOutputLeftThePredictionAfterAnInsertedLine() {
        int newline = 5;
        PredictedOutput prediction = new PredictedOutput(new int[] { 10, newline, 20, 21, newline, 30, 31, newline },
                PROMPT.length);
        propose(prediction, sequence(), 8);
        // the output inserted the line "50 51": after its newline it goes on with "20
        // 21", not with
        // the prediction's next line
        propose(prediction, sequence(10, newline, 50), 8);
        propose(prediction, sequence(10, newline, 50, 51), 8);
        assertThat(propose(prediction, sequence(10, newline, 50, 51, newline), 8)).containsExactly(20, 21, newline, 30,
                31, newline);
    }

    @Test
    void anOutputThatGoesOnPastThePredictionsEndIsFoundEarlierInIt() {
        // the prediction holds a block twice; the output writes it a third time (the
        // prediction
        // left a repeat out): the output's last tokens are found earlier in the
        // prediction
        PredictedOutput prediction = new PredictedOutput(new int[] { 10, 11, 12, 13, 10, 11, 12, 13 }, PROMPT.length);
        assertThat(propose(prediction, sequence(), 8)).containsExactly(10, 11, 12, 13, 10, 11, 12, 13);
        // the latest place with tokens after it: the nearest to where the output was
        assertThat(propose(prediction, sequence(10, 11, 12, 13, 10, 11, 12, 13, 10, 11), 8)).containsExactly(12, 13);
        assertThat(propose(prediction, sequence(10, 11, 12, 13, 10, 11, 12, 13, 10, 11, 12, 13), 8)).containsExactly(10,
                11, 12, 13);
        // a single token is not enough to jump back
        PredictedOutput single = new PredictedOutput(new int[] { 10, 11, 12, 13 }, PROMPT.length);
        propose(single, sequence(), 8);
        assertThat(propose(single, sequence(10, 11, 12, 13, 77, 10), 8)).isEmpty();
    }

    @Test
    void aLostOutputIsNotRealignedBeforeWhereItFollowedThePrediction() {
        PredictedOutput prediction = new PredictedOutput(new int[] { 10, 11, 12, 13, 14, 15, 20, 21 }, PROMPT.length);
        propose(prediction, sequence(), 8);
        propose(prediction, sequence(10, 11, 12, 13, 99), 8);
        // lost: 98 is nowhere in the prediction
        assertThat(propose(prediction, sequence(10, 11, 12, 13, 99, 98), 8)).isEmpty();
        // 11 occurs only before the point the output followed the prediction to
        assertThat(propose(prediction, sequence(10, 11, 12, 13, 99, 98, 11), 8)).isEmpty();
    }

    @Test
    void anEmptyPredictionIsRefused() {
        assertThatThrownBy(() -> new PredictedOutput(new int[0], 3)).isInstanceOf(IllegalArgumentException.class);
    }

    private int[] propose(PredictedOutput prediction, int[] tokens, int max) {
        int n = prediction.propose(tokens, tokens.length, max, out);
        return Arrays.copyOf(out, n);
    }

    private static int[] sequence(int... generated) {
        int[] tokens = Arrays.copyOf(PROMPT, PROMPT.length + generated.length);
        System.arraycopy(generated, 0, tokens, PROMPT.length, generated.length);
        return tokens;
    }

}
