package dev.specula.sampling;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * {@link TokenPenalties} for one sequence: the prompt's distinct tokens, and a count per
 * token of the output so far (committed and speculative), undone token by token on
 * {@link #resetTo}. A row costs O(bias + distinct prompt and output tokens), not
 * O(vocabulary).
 */
final class PenaltyProcessor implements LogitsProcessor {

    private final int[] biasIds;

    private final float[] biasValues;

    private final float frequency;

    private final float presence;

    private final float repetition;

    /** The prompt's distinct ids, sorted; empty unless the repetition penalty is on. */
    private final int[] promptDistinct;

    /** Output token → how often it occurs in the output up to the current position. */
    private final Map<Integer, Integer> outputCounts = new HashMap<>();

    /** The output tokens advanced by, in order: [mark]. */
    private int[] advanced = new int[64];

    private int mark;

    PenaltyProcessor(TokenPenalties penalties, int[] promptIds) {
        this.biasIds = new int[penalties.logitBias().size()];
        this.biasValues = new float[biasIds.length];
        int i = 0;
        for (Map.Entry<Integer, Double> bias : penalties.logitBias().entrySet()) {
            biasIds[i] = bias.getKey();
            biasValues[i] = bias.getValue().floatValue();
            i++;
        }
        this.frequency = (float) penalties.frequencyPenalty();
        this.presence = (float) penalties.presencePenalty();
        this.repetition = (float) penalties.repetitionPenalty();
        this.promptDistinct = repetition == 1f ? new int[0] : Arrays.stream(promptIds).distinct().sorted().toArray();
    }

    @Override
    public void process(float[] logits, int offset, int width) {
        for (int i = 0; i < biasIds.length; i++) {
            if (biasIds[i] < width) {
                logits[offset + biasIds[i]] += biasValues[i];
            }
        }
        if (repetition != 1f) {
            for (int token : promptDistinct) {
                penalizeRepetition(logits, offset, width, token);
            }
            for (Integer token : outputCounts.keySet()) {
                if (Arrays.binarySearch(promptDistinct, token) < 0) {
                    penalizeRepetition(logits, offset, width, token);
                }
            }
        }
        if (frequency != 0f || presence != 0f) {
            for (Map.Entry<Integer, Integer> count : outputCounts.entrySet()) {
                int token = count.getKey();
                if (token < width) {
                    logits[offset + token] -= frequency * count.getValue() + presence;
                }
            }
        }
    }

    private void penalizeRepetition(float[] logits, int offset, int width, int token) {
        if (token < width) {
            float logit = logits[offset + token];
            logits[offset + token] = logit > 0 ? logit / repetition : logit * repetition;
        }
    }

    @Override
    public void advance(int token) {
        if (mark == advanced.length) {
            advanced = Arrays.copyOf(advanced, mark * 2);
        }
        advanced[mark++] = token;
        outputCounts.merge(token, 1, Integer::sum);
    }

    @Override
    public int mark() {
        return mark;
    }

    @Override
    public void resetTo(int target) {
        if (target < 0 || target > mark) {
            throw new IllegalArgumentException("Cannot reset to " + target + " from " + mark);
        }
        while (mark > target) {
            int token = advanced[--mark];
            outputCounts.computeIfPresent(token, (id, count) -> count == 1 ? null : count - 1);
        }
    }

}
