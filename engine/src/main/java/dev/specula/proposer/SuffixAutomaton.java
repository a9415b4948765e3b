package dev.specula.proposer;

import java.util.Arrays;

/**
 * The suffix automaton (Blumer et al. 1985; the online construction) of one token
 * sequence that only grows: a state per class of substrings that end at the same
 * positions, so the longest suffix of the sequence that also occurred earlier, and what
 * followed each of its occurrences, are read off in time independent of the sequence's
 * length.
 *
 * <p>
 * Each state also counts its occurrences (the positions its strings end at) up to
 * {@link #countCap}, and keeps where its last counted one ends: its latest occurrence
 * while fewer than the cap, else the one that reached the cap. Appending a token makes
 * O(1) states and transitions (amortized) and counts one more occurrence for every state
 * of a suffix of the sequence: the states on the suffix-link path from the new last
 * state. Counts grow strictly along that path, so the walk stops at the first state
 * already at the cap: at most {@code countCap} states a token (a handful in text; a
 * periodic run would otherwise walk length / period of them).
 *
 * <p>
 * Transitions are edges in flat arrays: a singly linked list per state (to enumerate a
 * state's continuations) and an open-addressing table keyed by (state, token) (to follow
 * one), so no state holds an array of vocabulary size. At most 2n states and 3n edges for
 * n tokens.
 */
final class SuffixAutomaton {

    /** The empty string's state. */
    static final int ROOT = 0;

    private static final long EMPTY = -1L;

    /** Per state: the length of its longest string. */
    private int[] maxLength;

    /**
     * Per state: the state of its longest suffix that ends at more positions; -1 for the
     * root.
     */
    private int[] link;

    /** Occurrences are counted up to this many. */
    private final int countCap;

    /**
     * Per state: how many positions its strings end at, at most {@link #countCap} (0 for
     * the root).
     */
    private int[] occurrences;

    /**
     * Per state: the position (index in the sequence) its last counted occurrence ends
     * at.
     */
    private int[] latestEnd;

    /** Per state: its first edge in {@link #nextEdge}'s list; -1: none. */
    private int[] firstEdge;

    private int states;

    /** Per edge: the token it reads. */
    private int[] edgeToken;

    /** Per edge: the state it leads to. */
    private int[] edgeTarget;

    /** Per edge: the next edge of the same source state; -1: the last. */
    private int[] nextEdge;

    private int edges;

    /**
     * (source state << 32 | token), or {@link #EMPTY}; slot i's edge is
     * {@link #slotEdge}[i].
     */
    private long[] slotKey;

    private int[] slotEdge;

    /** The state of the whole sequence. */
    private int last = ROOT;

    /** Tokens appended. */
    private int length;

    /**
     * An empty automaton.
     * @param countCap occurrences are counted up to this many, >= 1
     */
    SuffixAutomaton(int countCap) {
        if (countCap < 1) {
            throw new IllegalArgumentException("countCap must be >= 1 but was " + countCap);
        }
        this.countCap = countCap;
        maxLength = new int[16];
        link = new int[16];
        occurrences = new int[16];
        latestEnd = new int[16];
        firstEdge = new int[16];
        edgeToken = new int[16];
        edgeTarget = new int[16];
        nextEdge = new int[16];
        slotKey = new long[64];
        Arrays.fill(slotKey, EMPTY);
        slotEdge = new int[64];
        states = 1;
        link[ROOT] = -1;
        firstEdge[ROOT] = -1;
        latestEnd[ROOT] = -1;
    }

    /** Occurrences are counted up to this many. */
    int countCap() {
        return countCap;
    }

    /** Tokens appended so far. */
    int length() {
        return length;
    }

    /** The state of the whole sequence. */
    int last() {
        return last;
    }

    /**
     * The state of {@code state}'s longest suffix that ends at more positions; -1 for the
     * root.
     */
    int link(int state) {
        return link[state];
    }

    /** The length of {@code state}'s longest string. */
    int maxLength(int state) {
        return maxLength[state];
    }

    /** How many times {@code state}'s strings occur in the sequence, at most the cap. */
    int occurrences(int state) {
        return occurrences[state];
    }

    /**
     * Where {@code state}'s last counted occurrence ends (an index in the sequence): its
     * latest while fewer than the cap.
     */
    int latestEnd(int state) {
        return latestEnd[state];
    }

    /** The state {@code state}'s strings followed by {@code token} lead to; -1: none. */
    int next(int state, int token) {
        int edge = edge(state, token);
        return edge < 0 ? -1 : edgeTarget[edge];
    }

    /**
     * The most frequent continuation of {@code state}'s strings: the edge whose target
     * has the most occurrences counted, of equal counts the one whose last counted
     * occurrence ends latest (two continuations never end at the same position, so this
     * picks one edge); -1 when the strings occur only at the end of the sequence.
     */
    int mostFrequentEdge(int state) {
        int best = -1;
        for (int e = firstEdge[state]; e >= 0; e = nextEdge[e]) {
            if (best < 0 || beats(edgeTarget[e], edgeTarget[best])) {
                best = e;
            }
        }
        return best;
    }

    private boolean beats(int state, int other) {
        return occurrences[state] > occurrences[other]
                || (occurrences[state] == occurrences[other] && latestEnd[state] > latestEnd[other]);
    }

    /** The token {@code edge} reads. */
    int edgeToken(int edge) {
        return edgeToken[edge];
    }

    /** The state {@code edge} leads to. */
    int edgeTarget(int edge) {
        return edgeTarget[edge];
    }

    /** Appends {@code token} (>= 0) to the sequence. */
    void append(int token) {
        if (token < 0) {
            throw new IllegalArgumentException("token must be >= 0 but was " + token);
        }
        int current = newState(maxLength[last] + 1);
        int p = last;
        while (p >= 0 && edge(p, token) < 0) {
            addEdge(p, token, current);
            p = link[p];
        }
        if (p < 0) {
            link[current] = ROOT;
        }
        else {
            int q = edgeTarget[edge(p, token)];
            if (maxLength[p] + 1 == maxLength[q]) {
                link[current] = q;
            }
            else {
                int clone = newState(maxLength[p] + 1);
                for (int e = firstEdge[q]; e >= 0; e = nextEdge[e]) {
                    addEdge(clone, edgeToken[e], edgeTarget[e]);
                }
                link[clone] = link[q];
                occurrences[clone] = occurrences[q];
                latestEnd[clone] = latestEnd[q];
                // the suffixes that led to q by token now lead to the clone
                while (p >= 0) {
                    int e = edge(p, token);
                    if (e < 0 || edgeTarget[e] != q) {
                        break;
                    }
                    edgeTarget[e] = clone;
                    p = link[p];
                }
                link[q] = clone;
                link[current] = clone;
            }
        }
        last = current;
        // every suffix of the sequence now also ends here; past a state at the cap, all
        // are (a suffix occurs at least once more than the longer strings it ends)
        for (int s = current; s != ROOT && occurrences[s] < countCap; s = link[s]) {
            occurrences[s]++;
            latestEnd[s] = length;
        }
        length++;
    }

    private int newState(int longest) {
        if (states == maxLength.length) {
            int capacity = states * 2;
            maxLength = Arrays.copyOf(maxLength, capacity);
            link = Arrays.copyOf(link, capacity);
            occurrences = Arrays.copyOf(occurrences, capacity);
            latestEnd = Arrays.copyOf(latestEnd, capacity);
            firstEdge = Arrays.copyOf(firstEdge, capacity);
        }
        int state = states++;
        maxLength[state] = longest;
        link[state] = -1;
        occurrences[state] = 0;
        latestEnd[state] = -1;
        firstEdge[state] = -1;
        return state;
    }

    private void addEdge(int source, int token, int target) {
        if (edges == edgeToken.length) {
            int capacity = edges * 2;
            edgeToken = Arrays.copyOf(edgeToken, capacity);
            edgeTarget = Arrays.copyOf(edgeTarget, capacity);
            nextEdge = Arrays.copyOf(nextEdge, capacity);
        }
        int edge = edges++;
        edgeToken[edge] = token;
        edgeTarget[edge] = target;
        nextEdge[edge] = firstEdge[source];
        firstEdge[source] = edge;
        if (edges * 2 > slotKey.length) {
            rehash(slotKey.length * 2);
        }
        insert(key(source, token), edge);
    }

    /** The edge from {@code state} reading {@code token}; -1: none. */
    private int edge(int state, int token) {
        long key = key(state, token);
        int mask = slotKey.length - 1;
        for (int slot = slot(key, mask);; slot = (slot + 1) & mask) {
            long found = slotKey[slot];
            if (found == key) {
                return slotEdge[slot];
            }
            if (found == EMPTY) {
                return -1;
            }
        }
    }

    private void insert(long key, int edge) {
        int mask = slotKey.length - 1;
        int slot = slot(key, mask);
        while (slotKey[slot] != EMPTY) {
            slot = (slot + 1) & mask;
        }
        slotKey[slot] = key;
        slotEdge[slot] = edge;
    }

    private void rehash(int capacity) {
        long[] oldKeys = slotKey;
        int[] oldEdges = slotEdge;
        slotKey = new long[capacity];
        Arrays.fill(slotKey, EMPTY);
        slotEdge = new int[capacity];
        for (int i = 0; i < oldKeys.length; i++) {
            if (oldKeys[i] != EMPTY) {
                insert(oldKeys[i], oldEdges[i]);
            }
        }
    }

    private static long key(int state, int token) {
        return ((long) state << 32) | token;
    }

    private static int slot(long key, int mask) {
        return (int) ((key * 0x9E3779B97F4A7C15L) >>> 32) & mask;
    }

}
