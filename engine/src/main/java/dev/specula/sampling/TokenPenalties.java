package dev.specula.sampling;

import java.util.Map;

import dev.specula.request.InvalidRequestException;

/**
 * Penalties and a bias on token logits, as OpenAI's and Hugging Face's samplers define
 * them. Applied to each row in this order, before temperature (as vLLM): the bias, then
 * the repetition penalty, then the frequency and presence penalties.
 *
 * @param frequencyPenalty subtracted once per earlier occurrence of the token in the
 * output (OpenAI {@code frequency_penalty}); in [-2, 2], 0 = off
 * @param presencePenalty subtracted once if the token occurs in the output (OpenAI
 * {@code presence_penalty}); in [-2, 2], 0 = off
 * @param repetitionPenalty divides a positive logit and multiplies a negative one of
 * every token in the prompt or the output (Hugging Face's and vLLM's
 * {@code repetition_penalty}, CTRL's rule); > 0, 1 = off
 * @param logitBias added to the logit of each listed token id (OpenAI
 * {@code logit_bias}); each in [-100, 100]
 * @throws InvalidRequestException naming the component whose value is out of range
 */
public record TokenPenalties(double frequencyPenalty, double presencePenalty, double repetitionPenalty,
        Map<Integer, Double> logitBias) {

    /** No penalty, no bias. */
    public static final TokenPenalties NONE = new TokenPenalties(0, 0, 1, Map.of());

    public TokenPenalties {
        if (!(frequencyPenalty >= -2 && frequencyPenalty <= 2)) {
            throw new InvalidRequestException("frequencyPenalty",
                    "frequency_penalty must be in [-2, 2] but was " + frequencyPenalty);
        }
        if (!(presencePenalty >= -2 && presencePenalty <= 2)) {
            throw new InvalidRequestException("presencePenalty",
                    "presence_penalty must be in [-2, 2] but was " + presencePenalty);
        }
        if (!(repetitionPenalty > 0) || Double.isInfinite(repetitionPenalty)) {
            throw new InvalidRequestException("repetitionPenalty",
                    "repetition_penalty must be > 0 (1 = off) but was " + repetitionPenalty);
        }
        logitBias = logitBias == null ? Map.of() : Map.copyOf(logitBias);
        for (Map.Entry<Integer, Double> bias : logitBias.entrySet()) {
            if (bias.getKey() < 0) {
                throw new InvalidRequestException("logitBias",
                        "logit_bias keys are token ids >= 0 but one was " + bias.getKey());
            }
            if (!(bias.getValue() >= -100 && bias.getValue() <= 100)) {
                throw new InvalidRequestException("logitBias", "logit_bias values must be in [-100, 100] but token "
                        + bias.getKey() + " had " + bias.getValue());
            }
        }
    }

    /** Whether it changes nothing. */
    public boolean isNone() {
        return frequencyPenalty == 0 && presencePenalty == 0 && repetitionPenalty == 1 && logitBias.isEmpty();
    }

    /**
     * Checks the bias's token ids against the vocabulary.
     * @throws InvalidRequestException naming {@code logitBias} for an id at or past
     * {@code vocabularySize}
     */
    public void checkVocabulary(int vocabularySize) {
        for (Integer id : logitBias.keySet()) {
            if (id >= vocabularySize) {
                throw new InvalidRequestException("logitBias", "logit_bias names token id " + id
                        + " but the model's vocabulary has ids 0 to " + (vocabularySize - 1));
            }
        }
    }

    /**
     * A processor for one sequence whose prompt is {@code promptIds}; its position starts
     * after the prompt.
     */
    public LogitsProcessor newProcessor(int[] promptIds) {
        return new PenaltyProcessor(this, promptIds);
    }

}
