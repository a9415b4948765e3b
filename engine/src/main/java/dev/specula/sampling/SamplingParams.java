package dev.specula.sampling;

import org.jspecify.annotations.Nullable;

import dev.specula.request.InvalidRequestException;

/**
 * How the next token is chosen from a distribution, applied in this order (as
 * transformers does): temperature, then top-k, then top-p.
 *
 * @param temperature 0 = greedy (argmax); otherwise logits are divided by it; must be >=
 * 0
 * @param topK keep the k most likely tokens; 0 = off
 * @param topP keep the smallest set of most likely tokens whose probability reaches p; 1
 * = off; in (0, 1]
 * @param seed seed of the request's random generator; null = a fresh random seed
 * @throws dev.specula.request.InvalidRequestException for a value out of range, naming
 * the component
 */
public record SamplingParams(double temperature, int topK, double topP, @Nullable Long seed) {

    /** Greedy decoding: the target's argmax at every step. */
    public static final SamplingParams GREEDY = new SamplingParams(0, 0, 1, null);

    public SamplingParams {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new InvalidRequestException("temperature",
                    "temperature must be >= 0 (0 = greedy) but was " + temperature);
        }
        if (topK < 0) {
            throw new InvalidRequestException("topK", "top_k must be >= 0 (0 = off) but was " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new InvalidRequestException("topP", "top_p must be in (0, 1] but was " + topP);
        }
    }

    /** Whether the next token is the argmax (temperature 0). */
    public boolean isGreedy() {
        return temperature == 0;
    }
}
