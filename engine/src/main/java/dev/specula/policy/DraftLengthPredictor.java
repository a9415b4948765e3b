package dev.specula.policy;

/**
 * Predicts, before a round, how many drafts the target will accept (AdaEAGLE's LDLP is
 * the one we ship).
 */
@FunctionalInterface
public interface DraftLengthPredictor {

    /**
     * Predicts how many drafts the target will accept.
     * @param hiddenState the target's last hidden state at the position that predicted
     * {@code lastToken}
     * @param lastToken the last committed token
     * @return predicted accepted drafts (continuous)
     */
    double predict(float[] hiddenState, int lastToken);

}
