package dev.specula.proposer;

import java.util.Arrays;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import dev.specula.request.InvalidRequestException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Suffix lookup on token sequences: the longest match of any length, the most frequent
 * continuation, the proposal's length, and an automaton fed round by round against one
 * built at once and against brute force.
 */
class SuffixLookupTest {

    private static final double UNCAPPED = Double.POSITIVE_INFINITY;

    private final int[] out = new int[16];

    @Test
    void proposesWhatFollowedTheLongestMatchOfAnyLength() {
        // the end "1 2 3 4 5 6" occurred at 0..5, followed by 7; its last four alone
        // also occurred later, followed by 8: n-gram lookup (n <= 4) takes the later
        int[] tokens = { 1, 2, 3, 4, 5, 6, 7, 0, 9, 3, 4, 5, 6, 8, 0, 1, 2, 3, 4, 5, 6 };
        assertThat(new SuffixLookup(UNCAPPED, SuffixLookup.COUNT_CAP).propose(tokens, tokens.length, 2, out))
            .isEqualTo(2);
        assertThat(out).startsWith(7, 0);
        PromptLookup.DEFAULT.propose(tokens, tokens.length, 2, out);
        assertThat(out).startsWith(8, 0);
    }

    @Test
    void theMostFrequentContinuationWinsOverTheLatest() {
        // "5 6" was followed by 1 twice, by 2 once and last; "5 6 1" by 9, then by 8
        int[] tokens = { 5, 6, 1, 9, 5, 6, 1, 8, 5, 6, 2, 7, 5, 6 };
        assertThat(new SuffixLookup(UNCAPPED, SuffixLookup.COUNT_CAP).propose(tokens, tokens.length, 3, out))
            .isEqualTo(3);
        assertThat(out).startsWith(1, 8, 5);
        PromptLookup.DEFAULT.propose(tokens, tokens.length, 1, out);
        assertThat(out).startsWith(2);
    }

    @Test
    void aRepeatShorterThanTheProposalGoesOnRepeating() {
        int[] tokens = { 3, 1, 2, 1, 2, 1, 2 };
        assertThat(new SuffixLookup(UNCAPPED, SuffixLookup.COUNT_CAP).propose(tokens, tokens.length, 5, out))
            .isEqualTo(5);
        assertThat(out).startsWith(1, 2, 1, 2, 1);
        int[] same = { 4, 4, 4 };
        assertThat(new SuffixLookup(UNCAPPED, SuffixLookup.COUNT_CAP).propose(same, same.length, 6, out)).isEqualTo(6);
        assertThat(out).startsWith(4, 4, 4, 4, 4, 4);
    }

    @Test
    void proposesNothingWithoutAnEarlierOccurrence() {
        int[] tokens = { 1, 2, 3, 4, 5 };
        assertThat(new SuffixLookup().propose(tokens, tokens.length, 4, out)).isZero();
        assertThat(new SuffixLookup().propose(tokens, 1, 4, out)).isZero();
        assertThat(new SuffixLookup().propose(tokens, 0, 4, out)).isZero();
        assertThat(new SuffixLookup().propose(new int[] { 5, 9, 5 }, 3, 0, out)).isZero();
    }

    @Test
    void theProposalIsAtMostTheFactorTimesTheMatch() {
        // "9" matches (1 token), then "4 9" (2 tokens)
        int[] tokens = { 4, 9, 1, 2, 3, 0, 4, 9 };
        assertThat(new SuffixLookup(1, SuffixLookup.COUNT_CAP).propose(tokens, 6, 8, out)).isZero();
        assertThat(new SuffixLookup(1, SuffixLookup.COUNT_CAP).propose(tokens, 7, 8, out)).isEqualTo(1);
        assertThat(new SuffixLookup(1, SuffixLookup.COUNT_CAP).propose(tokens, 8, 8, out)).isEqualTo(2);
        assertThat(new SuffixLookup(1.5, SuffixLookup.COUNT_CAP).propose(tokens, 8, 8, out)).isEqualTo(3);
        assertThat(out).startsWith(1, 2, 3);
        // γ is the cap
        assertThat(new SuffixLookup(UNCAPPED, SuffixLookup.COUNT_CAP).propose(tokens, 8, 2, out)).isEqualTo(2);
        // by default twice the match
        assertThat(new SuffixLookup().propose(tokens, 7, 8, out)).isEqualTo(2);
        assertThat(new SuffixLookup().propose(tokens, 8, 8, out)).isEqualTo(4);
    }

    @Test
    void fedRoundByRoundItProposesWhatOneBuiltAtOnceAndBruteForcePropose() {
        SplittableRandom random = new SplittableRandom(11);
        for (int trial = 0; trial < 40; trial++) {
            int[] tokens = SuffixAutomatonTest.randomTokens(random, 20 + random.nextInt(300),
                    2 + random.nextInt(trial % 2 == 0 ? 6 : 60));
            double factor = trial % 3 == 0 ? 1 : UNCAPPED;
            int cap = trial % 2 == 0 ? SuffixLookup.COUNT_CAP : 2;
            SuffixLookup incremental = new SuffixLookup(factor, cap);
            int length = 1 + random.nextInt(8);
            while (length <= tokens.length) {
                int gamma = 1 + random.nextInt(10);
                int[] proposal = new int[gamma];
                int n = incremental.propose(tokens, length, gamma, proposal);
                int[] fresh = new int[gamma];
                int m = new SuffixLookup(factor, cap).propose(tokens, length, gamma, fresh);
                assertThat(Arrays.copyOf(proposal, n)).as("trial %d, length %d", trial, length)
                    .containsExactly(Arrays.copyOf(fresh, m))
                    .containsExactly(bruteForce(tokens, length, gamma, factor, cap));
                // rounds commit 1 to γ + 1 tokens
                length += 1 + random.nextInt(gamma + 1);
            }
        }
    }

    @Test
    void aShorterSequenceStartsOver() {
        SuffixLookup lookup = new SuffixLookup(UNCAPPED, SuffixLookup.COUNT_CAP);
        int[] first = { 1, 2, 3, 1, 2 };
        assertThat(lookup.propose(first, first.length, 1, out)).isEqualTo(1);
        assertThat(out[0]).isEqualTo(3);
        int[] second = { 7, 8, 7 };
        assertThat(lookup.propose(second, second.length, 1, out)).isEqualTo(1);
        assertThat(out[0]).isEqualTo(8);
    }

    @Test
    void rejectsSettingsThatCannotPropose() {
        assertThatThrownBy(() -> new SuffixLookup(0, 1)).hasMessageContaining("maxSpecFactor");
        assertThatThrownBy(() -> new SuffixLookup(Double.NaN, 1)).hasMessageContaining("maxSpecFactor");
    }

    @Test
    void suffixKindsParseAndTheModelOneNeedsADraft() {
        assertThat(ProposerKind.parse(" Suffix ", "proposer")).isEqualTo(ProposerKind.SUFFIX);
        assertThat(ProposerKind.parse("model+suffix", "proposer")).isEqualTo(ProposerKind.MODEL_PLUS_SUFFIX);
        assertThat(ProposerKind.SUFFIX.usesSuffixLookup()).isTrue();
        assertThat(ProposerKind.SUFFIX.usesLookup()).isFalse();
        assertThat(ProposerKind.MODEL_PLUS_SUFFIX.usesModel()).isTrue();
        assertThat(ProposerKind.resolve(ProposerKind.SUFFIX, false, "proposer")).isEqualTo(ProposerKind.SUFFIX);
        assertThatThrownBy(() -> ProposerKind.resolve(ProposerKind.MODEL_PLUS_SUFFIX, false, "proposer"))
            .isInstanceOf(InvalidRequestException.class)
            .hasMessageContaining("needs a draft model");
        assertThatThrownBy(() -> ProposerKind.parse("suffix-tree", "proposer"))
            .hasMessageContaining("suffix, model+suffix");
    }

    /**
     * The proposal by its definition, by scanning: the longest earlier match, then
     * greedily the continuation of the context (match and proposal so far) with the most
     * occurrences counted (up to {@code cap}), of equal counts the one whose last counted
     * occurrence ends latest; then the proposal's own tokens once the context occurs only
     * at the end.
     */
    private static int[] bruteForce(int[] tokens, int length, int gamma, double factor, int cap) {
        int matched = SuffixAutomatonTest.longestEarlierMatch(tokens, length);
        if (matched == 0) {
            return new int[0];
        }
        int limit = (int) Math.min(gamma, Math.ceil(factor * matched));
        int[] proposal = new int[limit];
        int[] context = Arrays.copyOfRange(tokens, length - matched, length);
        for (int i = 0; i < limit; i++) {
            int best = -1;
            int bestCount = 0;
            int bestEnd = -1;
            for (int token : Arrays.stream(tokens, 0, length).distinct().toArray()) {
                int count = 0;
                int countedEnd = -1;
                for (int end = context.length; end < length && count < cap; end++) {
                    if (tokens[end] == token && occursAt(tokens, end - context.length, context)) {
                        count++;
                        countedEnd = end;
                    }
                }
                if (count > bestCount || (count > 0 && count == bestCount && countedEnd > bestEnd)) {
                    best = token;
                    bestCount = count;
                    bestEnd = countedEnd;
                }
            }
            if (best < 0) {
                for (int j = i; j < limit; j++) {
                    proposal[j] = proposal[j - i];
                }
                return proposal;
            }
            proposal[i] = best;
            context = Arrays.copyOf(context, context.length + 1);
            context[context.length - 1] = best;
        }
        return proposal;
    }

    private static boolean occursAt(int[] tokens, int at, int[] context) {
        for (int k = 0; k < context.length; k++) {
            if (tokens[at + k] != context[k]) {
                return false;
            }
        }
        return true;
    }

}
