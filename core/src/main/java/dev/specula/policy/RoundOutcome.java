package dev.specula.policy;

/**
 * What one round of speculation produced, for a policy to learn from.
 *
 * @param requested the draft length the policy asked for
 * @param drafted drafts actually proposed (fewer if drafting stopped early or the budget ran out)
 * @param accepted drafts the target accepted (0..drafted); the round emitted accepted + 1 tokens
 * @param draftNanos ONNX Runtime time of this round's draft calls
 * @param targetNanos ONNX Runtime time of this round's verification call
 */
public record RoundOutcome(int requested, int drafted, int accepted, long draftNanos, long targetNanos) {

    /** Whether every proposed draft was accepted (and at least one was proposed). */
    public boolean allAccepted() {
        return drafted > 0 && accepted == drafted;
    }
}
