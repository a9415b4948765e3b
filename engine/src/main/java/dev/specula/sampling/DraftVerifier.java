package dev.specula.sampling;

import java.util.random.RandomGenerator;

import org.jspecify.annotations.Nullable;

/**
 * Decides which drafted tokens the target accepts: the lossless rule of speculative
 * decoding (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative
 * Decoding"; Chen et al. 2023, "Accelerating Large Language Model Decoding with
 * Speculative Sampling").
 *
 * <p>
 * Vocabulary, as in vLLM's rejection sampler: the <em>drafts</em> d_1..d_γ come from the
 * draft model with distributions q_1..q_γ; one target call over γ + 1 positions gives
 * p_1..p_{γ+1}. <em>Accepted</em> tokens are the longest prefix of drafts the rule keeps;
 * at the first rejection a <em>recovered</em> token is drawn from norm(max(0, p_i −
 * q_i)); when all γ are accepted, a <em>bonus</em> token is drawn from p_{γ+1}. The
 * result is distributed exactly as sampling the target alone.
 *
 * <p>
 * Greedy (temperature 0) is the limit where p and q are one-hot: accept while argmax(p_i)
 * = d_i, then emit argmax of the first disagreeing (or the bonus) row, so the output
 * equals the target's greedy output.
 *
 * <p>
 * Width: draft and target logits may differ in width (embedding rows padded differently,
 * e.g. Qwen2.5-0.5B vs 7B); a token beyond a model's width has probability 0 in that
 * model.
 *
 * <p>
 * Internal to the engine: public because the decode loop ({@code dev.specula.engine})
 * calls it.
 */
public final class DraftVerifier {

    private DraftVerifier() {
    }

    /**
     * Greedy verification.
     * @param drafts drafted ids, the first {@code drafted} used
     * @param targetLogits target logits rows [drafted + 1, width]
     */
    public static Verdict greedy(int[] drafts, int drafted, float[] targetLogits, int width) {
        return greedy(drafts, drafted, targetLogits, width, null);
    }

    /**
     * Greedy verification of the target as rewritten by {@code processor}: row i is
     * rewritten for the tokens before it (the committed ones, then drafts 1..i-1), which
     * is what the target alone would see at that position.
     * @param processor at the committed position; left after the accepted drafts; null:
     * none (the rows are read, never written)
     * @param targetLogits target logits rows [drafted + 1, width], rewritten in place
     */
    public static Verdict greedy(int[] drafts, int drafted, float[] targetLogits, int width,
            @Nullable LogitsProcessor processor) {
        checkRows(targetLogits, drafted, width);
        for (int i = 0; i < drafted; i++) {
            int targetChoice = choice(targetLogits, i * width, width, processor);
            if (targetChoice != drafts[i]) {
                return new Verdict(i, targetChoice);
            }
            if (processor != null) {
                processor.advance(drafts[i]);
            }
        }
        return new Verdict(drafted, choice(targetLogits, drafted * width, width, processor));
    }

    private static int choice(float[] logits, int offset, int width, @Nullable LogitsProcessor processor) {
        return processor == null ? Distributions.argmax(logits, offset, width)
                : processor.greedyChoice(logits, offset, width);
    }

    /**
     * Rejection-sampling verification; temperature, top-k and top-p were applied to the
     * drafts' distributions and are applied here to the target's, the same way.
     * @param drafts drafted ids, the first {@code drafted} used
     * @param draftDistributions q_i, the processed distribution each draft was sampled
     * from; a null q_i is one-hot on d_i (a deterministic proposer: prompt lookup), so
     * d_i is accepted with probability p_i(d_i) and a rejection samples p_i without d_i
     * @param targetLogits target logits rows [drafted + 1, width]
     */
    public static Verdict sample(int[] drafts, int drafted, float[] @Nullable [] draftDistributions,
            float[] targetLogits, int width, SamplingParams params, RandomGenerator random) {
        return sample(drafts, drafted, draftDistributions, targetLogits, width, params, random, null);
    }

    /**
     * Rejection sampling against the target as rewritten by {@code processor}, each row
     * for the tokens before it; the drafts' q must come from draft rows rewritten the
     * same way (or be one-hot), so a token the rewrite forbids is never accepted.
     * @param processor at the committed position; left after the accepted drafts; null:
     * none
     * @param targetLogits target logits rows [drafted + 1, width], rewritten in place
     */
    public static Verdict sample(int[] drafts, int drafted, float[] @Nullable [] draftDistributions,
            float[] targetLogits, int width, SamplingParams params, RandomGenerator random,
            @Nullable LogitsProcessor processor) {
        checkRows(targetLogits, drafted, width);
        for (int i = 0; i < drafted; i++) {
            if (processor != null) {
                processor.process(targetLogits, i * width, width);
            }
            float[] p = Distributions.sampling(targetLogits, i * width, width, params);
            float[] q = draftDistributions[i];
            int token = drafts[i];
            float pToken = token < p.length ? p[token] : 0f;
            float qToken = q == null ? 1f : q[token];
            // accept with probability min(1, p/q): u < p/q <=> u * q < p (q > 0: the
            // draft sampled it)
            if (random.nextDouble() * qToken < pToken) {
                if (processor != null) {
                    processor.advance(token);
                }
                continue;
            }
            float[] residual = new float[width];
            double mass = 0;
            for (int v = 0; v < width; v++) {
                float qv = q == null ? (v == token ? 1f : 0f) : v < q.length ? q[v] : 0f;
                residual[v] = Math.max(0f, p[v] - qv);
                mass += residual[v];
            }
            // p == q to float precision: then rejection has probability ~0 and p itself
            // is the residual
            return new Verdict(i, Distributions.sample(mass > 0 ? residual : p, random));
        }
        if (processor != null) {
            processor.process(targetLogits, drafted * width, width);
        }
        float[] bonus = Distributions.sampling(targetLogits, drafted * width, width, params);
        return new Verdict(drafted, Distributions.sample(bonus, random));
    }

    private static void checkRows(float[] targetLogits, int drafted, int width) {
        if (targetLogits.length < (drafted + 1) * width) {
            throw new IllegalArgumentException("Verification needs " + (drafted + 1) + " target rows of width " + width
                    + " but got " + targetLogits.length / width);
        }
    }

}
