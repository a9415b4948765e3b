package dev.specula.sampling;

import java.util.Arrays;
import java.util.random.RandomGenerator;

/**
 * Turning logits into the distribution a token is drawn from, and drawing from it.
 * Internal to the engine: public because the decode loop ({@code dev.specula.engine}) and
 * the policies ({@code dev.specula.policy}) use it.
 */
public final class Distributions {

    private Distributions() {
    }

    /**
     * Index of the largest of {@code width} logits from {@code offset}; the first one on
     * ties, as torch.argmax.
     */
    public static int argmax(float[] logits, int offset, int width) {
        int best = 0;
        float bestValue = logits[offset];
        for (int i = 1; i < width; i++) {
            float value = logits[offset + i];
            if (value > bestValue) {
                bestValue = value;
                best = i;
            }
        }
        return best;
    }

    /**
     * softmax(logits / 1) of one row: the model's own distribution, for confidence and
     * entropy measures.
     */
    public static float[] softmax(float[] logits, int offset, int width) {
        float[] probabilities = new float[width];
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < width; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        double sum = 0;
        for (int i = 0; i < width; i++) {
            float e = (float) Math.exp(logits[offset + i] - max);
            probabilities[i] = e;
            sum += e;
        }
        float scale = (float) (1 / sum);
        for (int i = 0; i < width; i++) {
            probabilities[i] *= scale;
        }
        return probabilities;
    }

    /**
     * The sampling distribution of one row under {@code params} (temperature > 0):
     * softmax(logits / T), then only the top-k tokens kept, then only the top-p nucleus
     * kept, renormalized.
     */
    public static float[] sampling(float[] logits, int offset, int width, SamplingParams params) {
        float[] scaled = new float[width];
        float inverseTemperature = (float) (1 / params.temperature());
        for (int i = 0; i < width; i++) {
            scaled[i] = logits[offset + i] * inverseTemperature;
        }
        if (params.topK() > 0 && params.topK() < width) {
            float kth = kthLargest(scaled, params.topK());
            for (int i = 0; i < width; i++) {
                if (scaled[i] < kth) {
                    scaled[i] = Float.NEGATIVE_INFINITY;
                }
            }
        }
        float[] probabilities = softmax(scaled, 0, width);
        if (params.topP() < 1) {
            keepNucleus(probabilities, params.topP());
        }
        return probabilities;
    }

    /**
     * Zeroes every token outside the smallest most-likely set whose mass reaches
     * {@code topP}, renormalizes.
     */
    static void keepNucleus(float[] probabilities, double topP) {
        float[] sorted = probabilities.clone();
        Arrays.sort(sorted);
        double cumulative = 0;
        float threshold = sorted[sorted.length - 1];
        for (int i = sorted.length - 1; i >= 0; i--) {
            cumulative += sorted[i];
            threshold = sorted[i];
            if (cumulative >= topP) {
                break;
            }
        }
        double kept = 0;
        for (int i = 0; i < probabilities.length; i++) {
            if (probabilities[i] < threshold) {
                probabilities[i] = 0;
            }
            else {
                kept += probabilities[i];
            }
        }
        float scale = (float) (1 / kept);
        for (int i = 0; i < probabilities.length; i++) {
            probabilities[i] *= scale;
        }
    }

    private static float kthLargest(float[] values, int k) {
        float[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length - k];
    }

    /** Draws an index from non-negative weights (need not sum to 1). */
    public static int sample(float[] weights, RandomGenerator random) {
        double total = 0;
        for (float weight : weights) {
            total += weight;
        }
        double target = random.nextDouble() * total;
        double cumulative = 0;
        int last = -1;
        for (int i = 0; i < weights.length; i++) {
            if (weights[i] > 0) {
                cumulative += weights[i];
                last = i;
                if (target < cumulative) {
                    return i;
                }
            }
        }
        return last; // rounding left target at the very end
    }

}
