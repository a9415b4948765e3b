package dev.specula.policy;

/**
 * What one round of speculation produced, for a policy to learn from.
 *
 * @param requested the draft length the policy asked for
 * @param drafted drafts actually proposed (fewer if drafting stopped early or the budget
 * ran out)
 * @param accepted drafts the target accepted (0..drafted); the round emitted accepted + 1
 * tokens
 * @param draftNanos ONNX Runtime time of this round's draft calls
 * @param targetNanos ONNX Runtime time of this round's verification call
 * @param roundNanos wall time of the whole round (draft, verification, acceptance, the
 * engine's own work)
 */
public record RoundOutcome(int requested, int drafted, int accepted, long draftNanos, long targetNanos,
        long roundNanos) {

    /** An outcome whose wall time is taken to be its ONNX Runtime time. */
    public RoundOutcome(int requested, int drafted, int accepted, long draftNanos, long targetNanos) {
        this(requested, drafted, accepted, draftNanos, targetNanos, draftNanos + targetNanos);
    }

    /** Whether every proposed draft was accepted (and at least one was proposed). */
    public boolean allAccepted() {
        return drafted > 0 && accepted == drafted;
    }
}
