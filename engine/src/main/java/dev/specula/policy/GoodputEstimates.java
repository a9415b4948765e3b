package dev.specula.policy;

import java.util.Arrays;

/**
 * What the goodput policy measures, shared by the sequences of one model pair and one
 * owner ({@link PolicyResources}: the prior a new sequence starts from): acceptance per
 * draft position, and the ONNX Runtime cost of a draft step and of verifying k drafts.
 * Counts decay (factor {@link #DECAY} per update) so the estimates follow drift; all
 * methods are thread-safe.
 *
 * <pre>
 * α_i      = accepted_i / judged_i        P(draft i accepted | drafts 0..i−1 accepted)
 * draft    = EWMA of one draft step's time (rounds after the prefill round)
 * verify(k)= a + b·k                       least squares over (k drafted, verification time) samples
 * probe    = EWMA of a probe's round time  (a draft from plain steps: the draft model catches up first)
 * </pre>
 */
final class GoodputEstimates {

    static final double DECAY = 0.999;

    private final double[] judged;

    private final double[] accepted;

    private final double[] roundNanos;

    private final double[] roundWeight;

    // decayed sums for the least-squares line T(k) = a + b·k
    private double n;

    private double sumK;

    private double sumT;

    private double sumKK;

    private double sumKT;

    /** EWMA of the wall time of a probe from plain steps; NaN before the first. */
    private double probeNanos = Double.NaN;

    GoodputEstimates(int positions) {
        this.judged = new double[positions];
        this.accepted = new double[positions];
        this.roundNanos = new double[positions + 1];
        this.roundWeight = new double[positions + 1];
    }

    synchronized void recordAcceptance(int drafted, int acceptedDrafts) {
        int judgedUpTo = Math.min(drafted, acceptedDrafts + 1);
        for (int i = 0; i < Math.min(judgedUpTo, judged.length); i++) {
            judged[i] = judged[i] * DECAY + 1;
            accepted[i] = accepted[i] * DECAY + (i < acceptedDrafts ? 1 : 0);
        }
    }

    synchronized void recordRound(int drafted, double nanos) {
        if (drafted < roundNanos.length) {
            roundNanos[drafted] = roundWeight[drafted] == 0 ? nanos : 0.9 * roundNanos[drafted] + 0.1 * nanos;
            roundWeight[drafted] = roundWeight[drafted] * DECAY + 1;
        }
        n = n * DECAY + 1;
        sumK = sumK * DECAY + drafted;
        sumT = sumT * DECAY + nanos;
        sumKK = sumKK * DECAY + (double) drafted * drafted;
        sumKT = sumKT * DECAY + drafted * nanos;
    }

    /** A probe from plain steps took {@code nanos} of wall time. */
    synchronized void recordProbe(double nanos) {
        probeNanos = Double.isNaN(probeNanos) ? nanos : 0.8 * probeNanos + 0.2 * nanos;
    }

    /** Expected wall time of a probe from plain steps; NaN before one was measured. */
    synchronized double probeNanos() {
        return probeNanos;
    }

    /**
     * P(draft i accepted | the drafts before it were), with {@code priorWeight}
     * pseudo-observations of {@code prior}.
     */
    synchronized double acceptance(int position, double prior, double priorWeight) {
        if (position >= judged.length) {
            return prior;
        }
        return (accepted[position] + prior * priorWeight) / (judged[position] + priorWeight);
    }

    synchronized double judged(int position) {
        return position < judged.length ? judged[position] : 0;
    }

    /**
     * Expected wall time of a round drafting {@code drafted} tokens; NaN before anything
     * can be said.
     */
    synchronized double roundNanos(int drafted) {
        if (drafted < roundWeight.length && roundWeight[drafted] >= 3) {
            return roundNanos[drafted];
        }
        double denominator = n * sumKK - sumK * sumK;
        if (n < 2 || denominator < 1e-9 * n * n) {
            return Double.NaN;
        }
        double slope = Math.max(0, (n * sumKT - sumK * sumT) / denominator);
        double intercept = (sumT - slope * sumK) / n;
        return Math.max(1, intercept + slope * drafted);
    }

    @Override
    public synchronized String toString() {
        return "GoodputEstimates[judged=" + Arrays.toString(judged) + ", roundNanos=" + Arrays.toString(roundNanos)
                + "]";
    }

}
