package dev.specula.sampling;

import java.util.Arrays;

/**
 * The target's log-probability of an output token, and of the most likely tokens at its
 * position: log-softmax of the target's raw logits row, before penalties, bias, grammar
 * and temperature (vLLM's default, {@code raw_logprobs}). Under speculation the row is
 * the target's verification row for that position, never the draft's.
 *
 * @param token the output token
 * @param logprob its log-probability
 * @param topTokens the most likely tokens at the position, most likely first (ties: lower
 * id first); empty when none were asked for
 * @param topLogprobs their log-probabilities, in the same order
 */
public record TokenLogprob(int token, float logprob, int[] topTokens, float[] topLogprobs) {

    /** The most top tokens a request may ask for (OpenAI's limit). */
    public static final int MAX_TOP = 20;

    /**
     * The log-probabilities of row {@code [offset, offset + width)} for {@code token} and
     * its {@code top} most likely tokens.
     */
    public static TokenLogprob of(float[] logits, int offset, int width, int token, int top) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < width; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        double sum = 0;
        for (int i = 0; i < width; i++) {
            sum += Math.exp(logits[offset + i] - max);
        }
        float logNormalizer = (float) (max + Math.log(sum));
        float tokenLogit = token < width ? logits[offset + token] : Float.NEGATIVE_INFINITY;
        int[] topTokens = topIds(logits, offset, width, Math.min(top, width));
        float[] topLogprobs = new float[topTokens.length];
        for (int i = 0; i < topTokens.length; i++) {
            topLogprobs[i] = logits[offset + topTokens[i]] - logNormalizer;
        }
        return new TokenLogprob(token, tokenLogit - logNormalizer, topTokens, topLogprobs);
    }

    /**
     * The {@code k} largest of the row, largest first, the lower id first on ties: one
     * pass keeping a sorted window of k.
     */
    private static int[] topIds(float[] logits, int offset, int width, int k) {
        int[] ids = new int[k];
        int filled = 0;
        for (int i = 0; i < width && k > 0; i++) {
            float value = logits[offset + i];
            if (filled == k && value <= logits[offset + ids[k - 1]]) {
                continue;
            }
            int position = filled == k ? k - 1 : filled++;
            while (position > 0 && logits[offset + ids[position - 1]] < value) {
                ids[position] = ids[position - 1];
                position--;
            }
            ids[position] = i;
        }
        return ids;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof TokenLogprob that && token == that.token && Float.compare(logprob, that.logprob) == 0
                && Arrays.equals(topTokens, that.topTokens) && Arrays.equals(topLogprobs, that.topLogprobs);
    }

    @Override
    public int hashCode() {
        return token * 31 + Float.hashCode(logprob);
    }

    @Override
    public String toString() {
        return "TokenLogprob[token=" + token + ", logprob=" + logprob + ", top=" + Arrays.toString(topTokens) + "]";
    }

}
