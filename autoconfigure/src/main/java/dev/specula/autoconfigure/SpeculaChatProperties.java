package dev.specula.autoconfigure;

import java.util.ArrayList;
import java.util.List;

import org.springframework.beans.factory.InitializingBean;
import org.springframework.boot.context.properties.ConfigurationProperties;

import dev.specula.chat.SpeculaChatOptions;
import dev.specula.engine.GenerationRequest;
import dev.specula.sampling.SamplingParams;

/**
 * The chat model: the options of requests that set none (defaults:
 * {@link SamplingParams#GREEDY}, {@link GenerationRequest#DEFAULT_MAX_NEW_TOKENS}
 * tokens), the longest prompt (default
 * {@link dev.specula.chat.SpeculaChatModel#DEFAULT_MAX_PROMPT_CHARACTERS}) and the
 * threads streamed answers run on.
 */
@ConfigurationProperties(SpeculaChatProperties.CONFIG_PREFIX)
public class SpeculaChatProperties implements InitializingBean {

    public static final String CONFIG_PREFIX = "specula.chat";

    /** Default chat options. */
    private final Options options = new Options();

    /**
     * Longest prompt, in characters of message text, checked before the chat template and
     * the tokenizer run; longer prompts are refused (prompt_too_long).
     */
    private int maxPromptCharacters = 1_000_000;

    /**
     * Threads that run streamed generations (each stream holds one while it decodes); 0 =
     * specula.resilience.max-concurrent-generations.
     */
    private int streamThreads = 0;

    public Options getOptions() {
        return options;
    }

    public int getMaxPromptCharacters() {
        return maxPromptCharacters;
    }

    public void setMaxPromptCharacters(int maxPromptCharacters) {
        this.maxPromptCharacters = maxPromptCharacters;
    }

    public int getStreamThreads() {
        return streamThreads;
    }

    public void setStreamThreads(int streamThreads) {
        this.streamThreads = streamThreads;
    }

    @Override
    public void afterPropertiesSet() {
        String prefix = CONFIG_PREFIX + ".options.";
        Double temperature = options.getTemperature();
        if (temperature != null && !(temperature >= 0 && Double.isFinite(temperature))) {
            throw PropertyChecks.invalid(prefix + "temperature", temperature, "a number >= 0 (0 = greedy)");
        }
        Double topP = options.getTopP();
        if (topP != null && !(topP > 0 && topP <= 1)) {
            throw PropertyChecks.invalid(prefix + "top-p", topP, "a number in (0, 1], 0 excluded (1 = off)");
        }
        if (options.getTopK() != null) {
            PropertyChecks.requireAtLeast(prefix + "top-k", options.getTopK(), 0, "an integer >= 0 (0 = off)");
        }
        if (options.getMaxTokens() != null) {
            PropertyChecks.requireAtLeast(prefix + "max-tokens", options.getMaxTokens(), 1, "an integer >= 1");
        }
        List<String> stops = options.getStopSequences();
        for (int i = 0; stops != null && i < stops.size(); i++) {
            if (stops.get(i) == null || stops.get(i).isEmpty()) {
                throw PropertyChecks.invalid(prefix + "stop-sequences[" + i + "]", stops.get(i), "a non-empty text");
            }
        }
        for (String penalty : new String[] { "frequency-penalty", "presence-penalty" }) {
            Double value = penalty.startsWith("frequency") ? options.getFrequencyPenalty()
                    : options.getPresencePenalty();
            if (value != null && !(value >= -2 && value <= 2)) {
                throw PropertyChecks.invalid(prefix + penalty, value, "a number in [-2, 2] (0 = off)");
            }
        }
        Double repetition = options.getRepetitionPenalty();
        if (repetition != null && !(repetition > 0 && Double.isFinite(repetition))) {
            throw PropertyChecks.invalid(prefix + "repetition-penalty", repetition, "a number > 0 (1 = off)");
        }
        PropertyChecks.requireAtLeast(CONFIG_PREFIX + ".max-prompt-characters", maxPromptCharacters, 1,
                "an integer >= 1");
        PropertyChecks.requireAtLeast(CONFIG_PREFIX + ".stream-threads", streamThreads, 0,
                "an integer >= 0 (0 = specula.resilience.max-concurrent-generations)");
    }

    /** The default options, with the default policy's name and γ. */
    public SpeculaChatOptions toOptions(SpeculaPolicyProperties policy) {
        return SpeculaChatOptions.builder()
            .temperature(options.getTemperature())
            .topP(options.getTopP())
            .topK(options.getTopK())
            .maxTokens(options.getMaxTokens())
            .stopSequences(options.getStopSequences())
            .seed(options.getSeed())
            .frequencyPenalty(options.getFrequencyPenalty())
            .presencePenalty(options.getPresencePenalty())
            .repetitionPenalty(options.getRepetitionPenalty())
            .speculation(options.isSpeculation())
            .policy(policy.getName())
            .gamma(policy.getGamma())
            .build();
    }

    /** Default chat options. */
    public static class Options {

        /** Sampling temperature, at least 0; 0 = greedy (deterministic, cacheable). */
        private Double temperature = 0.0;

        /**
         * Nucleus sampling: keep the most likely tokens up to this probability mass, in
         * (0, 1].
         */
        private Double topP = 1.0;

        /** Keep only the k most likely tokens when sampling; 0 = off. */
        private Integer topK = 0;

        /** Most tokens to generate per answer, at least 1. */
        private Integer maxTokens = 256;

        /** Texts that end an answer (not included in it). */
        private List<String> stopSequences = new ArrayList<>();

        /**
         * Seed of the sampler: with a seed, sampled answers are reproducible (and
         * cacheable).
         */
        private Long seed;

        /** Whether to speculate; false = plain target decoding. */
        private boolean speculation = true;

        /**
         * OpenAI's frequency penalty, in [-2, 2]: subtracted once per earlier occurrence
         * of a token in the answer; 0 = off. Speculation reproduces the penalized model.
         */
        private Double frequencyPenalty = 0.0;

        /**
         * OpenAI's presence penalty, in [-2, 2]: subtracted from every token already in
         * the answer; 0 = off.
         */
        private Double presencePenalty = 0.0;

        /**
         * Hugging Face's repetition penalty, greater than 0: divides positive and
         * multiplies negative logits of tokens in the prompt or the answer; 1 = off.
         */
        private Double repetitionPenalty = 1.0;

        public Double getFrequencyPenalty() {
            return frequencyPenalty;
        }

        public void setFrequencyPenalty(Double frequencyPenalty) {
            this.frequencyPenalty = frequencyPenalty;
        }

        public Double getPresencePenalty() {
            return presencePenalty;
        }

        public void setPresencePenalty(Double presencePenalty) {
            this.presencePenalty = presencePenalty;
        }

        public Double getRepetitionPenalty() {
            return repetitionPenalty;
        }

        public void setRepetitionPenalty(Double repetitionPenalty) {
            this.repetitionPenalty = repetitionPenalty;
        }

        public Double getTemperature() {
            return temperature;
        }

        public void setTemperature(Double temperature) {
            this.temperature = temperature;
        }

        public Double getTopP() {
            return topP;
        }

        public void setTopP(Double topP) {
            this.topP = topP;
        }

        public Integer getTopK() {
            return topK;
        }

        public void setTopK(Integer topK) {
            this.topK = topK;
        }

        public Integer getMaxTokens() {
            return maxTokens;
        }

        public void setMaxTokens(Integer maxTokens) {
            this.maxTokens = maxTokens;
        }

        public List<String> getStopSequences() {
            return stopSequences;
        }

        public void setStopSequences(List<String> stopSequences) {
            this.stopSequences = stopSequences;
        }

        public Long getSeed() {
            return seed;
        }

        public void setSeed(Long seed) {
            this.seed = seed;
        }

        public boolean isSpeculation() {
            return speculation;
        }

        public void setSpeculation(boolean speculation) {
            this.speculation = speculation;
        }

    }

}
