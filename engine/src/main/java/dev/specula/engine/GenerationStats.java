package dev.specula.engine;

import java.util.Arrays;

/**
 * Counters of one request (vLLM's spec-decode metrics: publish counts, derive rates when
 * asked). Times are ONNX Runtime wall times of the calls; {@link #outsideRuntimeNanos()}
 * is the rest of the request's wall time: the engine's own overhead.
 */
public final class GenerationStats {

    private long targetCalls;

    /**
     * Of {@link #targetCalls}, those that only fed prompt tokens to score them (prefill).
     */
    private long scoringCalls;

    private long draftCalls;

    private long drafted;

    private long accepted;

    private long rounds;

    private long[] draftedAtPosition = new long[8];

    private long[] acceptedAtPosition = new long[8];

    private long targetNanos;

    private long draftNanos;

    private long wallNanos;

    private long generatedTokens;

    private long requests;

    private long rejectedRounds;

    private long targetPrefillNanos;

    private long draftPrefillNanos;

    private long draftedRequests;

    private long grammarNanos;

    private long treeRounds;

    private long treeNodes;

    void recordDraftCall(long nanos) {
        if (draftCalls == 0) {
            draftPrefillNanos += nanos;
            draftedRequests++;
        }
        draftCalls++;
        draftNanos += nanos;
    }

    void recordTargetCall(long nanos) {
        if (targetCalls == scoringCalls) {
            targetPrefillNanos += nanos;
        }
        targetCalls++;
        targetNanos += nanos;
    }

    /**
     * A target call that only fed prompt tokens to score them: part of the prefill, as
     * the first verification is.
     */
    void recordScoringCall(long nanos) {
        targetPrefillNanos += nanos;
        scoringCalls++;
        targetCalls++;
        targetNanos += nanos;
    }

    void recordRound(int roundDrafted, int roundAccepted) {
        rounds++;
        if (roundAccepted < roundDrafted) {
            rejectedRounds++;
        }
        drafted += roundDrafted;
        accepted += roundAccepted;
        if (roundDrafted > draftedAtPosition.length) {
            draftedAtPosition = Arrays.copyOf(draftedAtPosition, roundDrafted);
            acceptedAtPosition = Arrays.copyOf(acceptedAtPosition, roundDrafted);
        }
        for (int i = 0; i < roundDrafted; i++) {
            draftedAtPosition[i]++;
        }
        for (int i = 0; i < roundAccepted; i++) {
            acceptedAtPosition[i]++;
        }
    }

    /**
     * A tree round: {@code nodes} drafted, the path of {@code accepted} accepted; the
     * positions count by depth, up to the tree's {@code depth}.
     */
    void recordTreeRound(int nodes, int depth, int accepted) {
        recordRound(depth, accepted);
        drafted += nodes - depth;
        treeRounds++;
        treeNodes += nodes;
    }

    void recordGrammar(long nanos) {
        grammarNanos += nanos;
    }

    void recordWall(long nanos, long generated) {
        wallNanos += nanos;
        generatedTokens = generated;
        requests = 1;
    }

    /** {@link #add} under this object's lock, for totals that many threads add to. */
    public synchronized void addSynchronized(GenerationStats other) {
        add(other);
    }

    /** A consistent copy of totals kept with {@link #addSynchronized}. */
    public synchronized GenerationStats snapshot() {
        GenerationStats copy = new GenerationStats();
        copy.add(this);
        return copy;
    }

    /** Adds another request's counters (for totals over a benchmark). */
    public void add(GenerationStats other) {
        targetCalls += other.targetCalls;
        scoringCalls += other.scoringCalls;
        draftCalls += other.draftCalls;
        drafted += other.drafted;
        accepted += other.accepted;
        rounds += other.rounds;
        int width = Math.max(draftedAtPosition.length, other.draftedAtPosition.length);
        draftedAtPosition = Arrays.copyOf(draftedAtPosition, width);
        acceptedAtPosition = Arrays.copyOf(acceptedAtPosition, width);
        for (int i = 0; i < other.draftedAtPosition.length; i++) {
            draftedAtPosition[i] += other.draftedAtPosition[i];
            acceptedAtPosition[i] += other.acceptedAtPosition[i];
        }
        targetNanos += other.targetNanos;
        draftNanos += other.draftNanos;
        wallNanos += other.wallNanos;
        generatedTokens += other.generatedTokens;
        requests += other.requests;
        rejectedRounds += other.rejectedRounds;
        targetPrefillNanos += other.targetPrefillNanos;
        draftPrefillNanos += other.draftPrefillNanos;
        draftedRequests += other.draftedRequests;
        grammarNanos += other.grammarNanos;
        treeRounds += other.treeRounds;
        treeNodes += other.treeNodes;
    }

    /** Rounds that verified a draft tree. */
    public long treeRounds() {
        return treeRounds;
    }

    /** Nodes of the draft trees verified (each tree's root not counted). */
    public long treeNodes() {
        return treeNodes;
    }

    /** Mean nodes of a verified draft tree; 0 without trees. */
    public double meanTreeNodes() {
        return treeRounds == 0 ? 0 : (double) treeNodes / treeRounds;
    }

    /**
     * Time spent in the grammar (masks, greedy choices, advancing), over the target's and
     * the draft's rows; 0 without one.
     */
    public long grammarNanos() {
        return grammarNanos;
    }

    public long targetCalls() {
        return targetCalls;
    }

    public long draftCalls() {
        return draftCalls;
    }

    /** Draft tokens proposed to the target. */
    public long drafted() {
        return drafted;
    }

    /** Draft tokens the target accepted. */
    public long accepted() {
        return accepted;
    }

    /**
     * Verification rounds: target calls that produced tokens (a plain step is a round
     * with nothing drafted).
     */
    public long rounds() {
        return rounds;
    }

    /** rounds in which draft position i (0-based) was proposed. */
    public long[] draftedAtPosition() {
        return trimmed(draftedAtPosition);
    }

    /** rounds in which draft position i (0-based) was accepted. */
    public long[] acceptedAtPosition() {
        return trimmed(acceptedAtPosition);
    }

    public long targetNanos() {
        return targetNanos;
    }

    public long draftNanos() {
        return draftNanos;
    }

    public long wallNanos() {
        return wallNanos;
    }

    public long generatedTokens() {
        return generatedTokens;
    }

    /** Wall time not spent inside ONNX Runtime calls. */
    public long outsideRuntimeNanos() {
        return Math.max(0, wallNanos - targetNanos - draftNanos);
    }

    /**
     * Tokens produced per target call: (accepted + rounds) / rounds; 1.0 means no draft
     * was ever accepted.
     */
    public double meanAcceptedLength() {
        return rounds == 0 ? 0 : (double) (accepted + rounds) / rounds;
    }

    /** accepted / drafted: the share of proposed draft tokens that were kept. */
    public double acceptanceRate() {
        return drafted == 0 ? 0 : (double) accepted / drafted;
    }

    /**
     * The per-token acceptance probability α of Leviathan et al.: accepted / (accepted +
     * rejections), i.e. of the draft tokens the target actually judged (those after a
     * rejection are never judged), the share kept.
     */
    public double perTokenAcceptance() {
        long judged = accepted + rejectedRounds;
        return judged == 0 ? 0 : (double) accepted / judged;
    }

    /** Requests counted in these stats. */
    public long requests() {
        return requests;
    }

    /**
     * Mean ONNX Runtime time of a target call after the first of each request (which also
     * prefills the prompt; so do the calls before it that score the prompt).
     */
    public double meanTargetStepNanos() {
        long steps = targetCalls - scoringCalls - requests;
        return steps <= 0 ? Double.NaN : (double) (targetNanos - targetPrefillNanos) / steps;
    }

    /**
     * Mean ONNX Runtime time of a draft call after the first of each request (which also
     * prefills the prompt).
     */
    public double meanDraftStepNanos() {
        long steps = draftCalls - draftedRequests;
        return steps <= 0 ? Double.NaN : (double) (draftNanos - draftPrefillNanos) / steps;
    }

    /** Mean draft tokens proposed per round. */
    public double meanDrafted() {
        return rounds == 0 ? 0 : (double) drafted / rounds;
    }

    /**
     * Tokens per second after the first round (which also prefills the prompt): the
     * decoding speed a policy controls, comparable between requests of different prompt
     * lengths. NaN with fewer than 2 tokens.
     */
    public double decodeTokensPerSecond() {
        long decodeNanos = wallNanos - targetPrefillNanos - draftPrefillNanos;
        return generatedTokens < 2 || decodeNanos <= 0 ? Double.NaN : (generatedTokens - requests) * 1e9 / decodeNanos;
    }

    public double tokensPerSecond() {
        return wallNanos == 0 ? 0 : generatedTokens * 1e9 / wallNanos;
    }

    private static long[] trimmed(long[] counts) {
        int length = counts.length;
        while (length > 0 && counts[length - 1] == 0) {
            length--;
        }
        return Arrays.copyOf(counts, length);
    }

}
