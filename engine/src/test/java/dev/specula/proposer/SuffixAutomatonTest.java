package dev.specula.proposer;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The suffix automaton against brute force on random sequences: the longest earlier match
 * of each prefix's end, and how often and where last each of its continuations occurred.
 */
class SuffixAutomatonTest {

    @Test
    void matchesAndCountsEqualBruteForceAfterEveryToken() {
        SplittableRandom random = new SplittableRandom(7);
        for (int trial = 0; trial < 80; trial++) {
            // small alphabets repeat a lot; large ones hardly
            int alphabet = 2 + random.nextInt(trial % 3 == 0 ? 40 : 4);
            int[] tokens = randomTokens(random, 1 + random.nextInt(150), alphabet);
            // every other trial counts up to 3 occurrences only
            int cap = trial % 2 == 0 ? Integer.MAX_VALUE : 3;
            SuffixAutomaton automaton = new SuffixAutomaton(cap);
            for (int n = 1; n <= tokens.length; n++) {
                automaton.append(tokens[n - 1]);
                assertThat(automaton.length()).isEqualTo(n);
                int context = automaton.link(automaton.last());
                int matched = automaton.maxLength(context);
                assertThat(matched).as("trial %d, prefix %d", trial, n).isEqualTo(longestEarlierMatch(tokens, n));
                for (int token = 0; token < alphabet; token++) {
                    int next = automaton.next(context, token);
                    int count = Math.min(cap, occurrences(tokens, n, n - matched, matched, token));
                    assertThat(next < 0 ? 0 : automaton.occurrences(next))
                        .as("trial %d, prefix %d, continuation %d", trial, n, token)
                        .isEqualTo(count);
                    if (count > 0) {
                        assertThat(automaton.latestEnd(next))
                            .as("trial %d, prefix %d, continuation %d", trial, n, token)
                            .isEqualTo(countedEnd(tokens, n, n - matched, matched, token, count));
                    }
                }
            }
        }
    }

    @Test
    void theMostFrequentContinuationWinsThenTheLatest() {
        // "5 6" is followed by 1 twice, by 2 once (latest)
        int[] tokens = { 5, 6, 1, 9, 5, 6, 1, 8, 5, 6, 2, 7, 5, 6 };
        SuffixAutomaton automaton = automaton(tokens);
        int context = automaton.link(automaton.last());
        assertThat(automaton.maxLength(context)).isEqualTo(2);
        int edge = automaton.mostFrequentEdge(context);
        assertThat(automaton.edgeToken(edge)).isEqualTo(1);
        // "5 6 1" is followed by 9 and by 8 once each: 8 is the later
        int after = automaton.edgeTarget(edge);
        assertThat(automaton.edgeToken(automaton.mostFrequentEdge(after))).isEqualTo(8);
        // 3 occurrences of "5 6" were continued, the last one (at the end) not yet
        assertThat(automaton.occurrences(context)).isEqualTo(4);
    }

    @Test
    void aPeriodicRunMatchesAllButOnePeriod() {
        // period 3: the sequence's end occurred one period earlier, as long as the run
        // minus one period
        int[] tokens = new int[300];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = 10 + i % 3;
        }
        SuffixAutomaton automaton = automaton(tokens);
        int context = automaton.link(automaton.last());
        assertThat(automaton.maxLength(context)).isEqualTo(297);
        assertThat(automaton.occurrences(context)).isEqualTo(2);
        int edge = automaton.mostFrequentEdge(context);
        assertThat(automaton.edgeToken(edge)).isEqualTo(10);
        // followed once, ending at index 297; after it the context occurs only at the end
        assertThat(automaton.latestEnd(automaton.edgeTarget(edge))).isEqualTo(297);
    }

    @Test
    void countsStopAtTheCapAndKeepWhereTheyReachedIt() {
        // "7" is followed by 1 at 1, 3, 5 and by 2 at 7, 9, 11, 13: capped at 3, the 1s
        // reached 3 first (at 5), the 2s later (at 11)
        int[] tokens = { 7, 1, 7, 1, 7, 1, 7, 2, 7, 2, 7, 2, 7, 2, 7 };
        SuffixAutomaton automaton = new SuffixAutomaton(3);
        for (int token : tokens) {
            automaton.append(token);
        }
        int context = automaton.next(SuffixAutomaton.ROOT, 7);
        assertThat(automaton.occurrences(automaton.next(context, 1))).isEqualTo(3);
        assertThat(automaton.occurrences(automaton.next(context, 2))).isEqualTo(3);
        assertThat(automaton.latestEnd(automaton.next(context, 2))).isEqualTo(11);
        assertThat(automaton.edgeToken(automaton.mostFrequentEdge(context))).isEqualTo(2);
        assertThatThrownBy(() -> new SuffixAutomaton(0)).hasMessageContaining("countCap must be >= 1");
    }

    @Test
    void nothingMatchesANewToken() {
        SuffixAutomaton automaton = automaton(new int[] { 1, 2, 3, 1, 2, 4 });
        assertThat(automaton.link(automaton.last())).isEqualTo(SuffixAutomaton.ROOT);
        assertThat(automaton.maxLength(SuffixAutomaton.ROOT)).isZero();
        assertThatThrownBy(() -> automaton.append(-1)).hasMessageContaining("token must be >= 0");
    }

    private static SuffixAutomaton automaton(int[] tokens) {
        SuffixAutomaton automaton = new SuffixAutomaton(Integer.MAX_VALUE);
        for (int token : tokens) {
            automaton.append(token);
        }
        return automaton;
    }

    static int[] randomTokens(SplittableRandom random, int length, int alphabet) {
        int[] tokens = new int[length];
        for (int i = 0; i < length; i++) {
            // repeats of earlier runs too, as copies in text
            if (i > 8 && random.nextInt(4) == 0) {
                int from = random.nextInt(i - 4);
                int run = Math.min(length - i, 1 + random.nextInt(12));
                for (int j = 0; j < run; j++) {
                    tokens[i + j] = tokens[from + j];
                }
                i += run - 1;
            }
            else {
                tokens[i] = random.nextInt(alphabet);
            }
        }
        return tokens;
    }

    /** The longest suffix of tokens[0, n) that also ends before n - 1. */
    static int longestEarlierMatch(int[] tokens, int n) {
        int best = 0;
        for (int end = 0; end < n - 1; end++) {
            int k = 0;
            while (k <= end && tokens[end - k] == tokens[n - 1 - k]) {
                k++;
            }
            best = Math.max(best, k);
        }
        return best;
    }

    /**
     * How often tokens[start, start + length) followed by {@code token} occurs in
     * tokens[0, n).
     */
    static int occurrences(int[] tokens, int n, int start, int length, int token) {
        int count = 0;
        for (int end = length; end < n; end++) {
            if (tokens[end] == token && occursAt(tokens, end - length, start, length)) {
                count++;
            }
        }
        return count;
    }

    /**
     * Where the {@code counted}-th occurrence of tokens[start, start + length) followed
     * by {@code token} in tokens[0, n) ends.
     */
    static int countedEnd(int[] tokens, int n, int start, int length, int token, int counted) {
        int count = 0;
        for (int end = length; end < n; end++) {
            if (tokens[end] == token && occursAt(tokens, end - length, start, length) && ++count == counted) {
                return end;
            }
        }
        return -1;
    }

    private static boolean occursAt(int[] tokens, int at, int start, int length) {
        for (int i = 0; i < length; i++) {
            if (tokens[at + i] != tokens[start + i]) {
                return false;
            }
        }
        return true;
    }

}
