package dev.specula.proposer;

import org.junit.jupiter.api.Test;

import dev.specula.request.InvalidRequestException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Prompt lookup on token sequences: which occurrence it matches and what it proposes. */
class PromptLookupTest {

    private final int[] out = new int[8];

    @Test
    void proposesWhatFollowedTheLongestMatchingSuffix() {
        // "7 8 9" occurs at 1..3 followed by 1 2 3; "8 9" alone also occurs at 6..7,
        // followed by 4: the longer match wins
        int[] tokens = { 0, 7, 8, 9, 1, 2, 3, 8, 9, 4, 5, 7, 8, 9 };
        int n = PromptLookup.DEFAULT.propose(tokens, tokens.length, 3, out);
        assertThat(n).isEqualTo(3);
        assertThat(out).startsWith(1, 2, 3);
    }

    @Test
    void amongEquallyLongMatchesTheLatestWins() {
        int[] tokens = { 5, 6, 1, 9, 9, 5, 6, 2, 9, 9, 5, 6 };
        int n = new PromptLookup(1, 2).propose(tokens, tokens.length, 2, out);
        assertThat(n).isEqualTo(2);
        assertThat(out).startsWith(2, 9);
    }

    @Test
    void aRepeatShorterThanTheProposalGoesOnRepeating() {
        // period 2: the latest "1 2" is followed by one token before the end; the
        // proposal continues the period
        int[] tokens = { 3, 1, 2, 1, 2, 1, 2 };
        int n = PromptLookup.DEFAULT.propose(tokens, tokens.length, 5, out);
        assertThat(n).isEqualTo(5);
        assertThat(out).startsWith(1, 2, 1, 2, 1);
    }

    @Test
    void proposesNothingWithoutAMatchOfTheShortestLength() {
        int[] tokens = { 1, 2, 3, 4, 5 };
        assertThat(PromptLookup.DEFAULT.propose(tokens, tokens.length, 4, out)).isZero();
        // "4 5" must match when the shortest length is 2; only "5" occurs again here
        int[] once = { 5, 9, 4, 1, 5 };
        assertThat(new PromptLookup(2, 4).propose(once, once.length, 4, out)).isZero();
        assertThat(new PromptLookup(1, 4).propose(once, once.length, 4, out)).isEqualTo(4);
        assertThat(out).startsWith(9, 4, 1, 5);
    }

    @Test
    void readsOnlyTheFirstLengthTokens() {
        // the array's tail beyond length is not the sequence
        int[] tokens = { 4, 6, 4, 0, 6, 6, 6 };
        assertThat(PromptLookup.DEFAULT.propose(tokens, 3, 2, out)).isEqualTo(2);
        assertThat(out).startsWith(6, 4);
        assertThat(PromptLookup.DEFAULT.propose(tokens, 1, 2, out)).isZero();
        assertThat(PromptLookup.DEFAULT.propose(tokens, 3, 0, out)).isZero();
    }

    @Test
    void rejectsLengthsThatCannotMatch() {
        assertThatThrownBy(() -> new PromptLookup(0, 4)).hasMessageContaining("minNgram");
        assertThatThrownBy(() -> new PromptLookup(3, 2)).hasMessageContaining("maxNgram");
    }

    @Test
    void proposerNamesParseAndTheDefaultFollowsTheModels() {
        assertThat(ProposerKind.parse("model+ngram", "proposer")).isEqualTo(ProposerKind.MODEL_PLUS_NGRAM);
        assertThat(ProposerKind.parse(" NGRAM ", "proposer")).isEqualTo(ProposerKind.NGRAM);
        assertThat(ProposerKind.resolve(null, true, "proposer")).isEqualTo(ProposerKind.MODEL);
        assertThat(ProposerKind.resolve(null, false, "proposer")).isEqualTo(ProposerKind.NGRAM);
        assertThatThrownBy(() -> ProposerKind.parse("eagle", "speculation.proposer"))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("speculation.proposer"))
            .hasMessageContaining("model, ngram, model+ngram");
        assertThatThrownBy(() -> ProposerKind.resolve(ProposerKind.MODEL_PLUS_NGRAM, false, "proposer"))
            .isInstanceOf(InvalidRequestException.class)
            .hasMessageContaining("needs a draft model");
    }

}
