package dev.specula.chat;

import java.util.List;
import java.util.Objects;

import org.springframework.ai.chat.prompt.ChatOptions;

/**
 * Options of {@link SpeculaChatModel}: Spring AI's portable sampling options plus a seed
 * and how to speculate. Every field may be null, meaning "not set here": request options
 * are merged over the model's defaults field by field
 * ({@link #merge(ChatOptions, SpeculaChatOptions)}).
 *
 * <p>
 * {@code frequencyPenalty} and {@code presencePenalty} are part of the
 * {@link ChatOptions} contract but change the target's distribution, which speculation
 * must reproduce exactly; only 0 (or unset) is accepted.
 */
public final class SpeculaChatOptions implements ChatOptions {

    private final String model;

    private final Double temperature;

    private final Double topP;

    private final Integer topK;

    private final Integer maxTokens;

    private final List<String> stopSequences;

    private final Long seed;

    private final String policy;

    private final Integer gamma;

    private final Boolean speculation;

    private final Double frequencyPenalty;

    private final Double presencePenalty;

    private SpeculaChatOptions(Builder builder) {
        this.model = builder.model;
        this.temperature = builder.temperature;
        this.topP = builder.topP;
        this.topK = builder.topK;
        this.maxTokens = builder.maxTokens;
        this.stopSequences = builder.stopSequences == null ? null : List.copyOf(builder.stopSequences);
        this.seed = builder.seed;
        this.policy = builder.policy;
        this.gamma = builder.gamma;
        this.speculation = builder.speculation;
        this.frequencyPenalty = builder.frequencyPenalty;
        this.presencePenalty = builder.presencePenalty;
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * {@code overrides} over {@code defaults}, field by field: a field set in
     * {@code overrides} wins. Any {@link ChatOptions} can override (e.g.
     * {@code ChatOptions.builder().temperature(0.7)} from a ChatClient); the Specula
     * fields come only from a {@code SpeculaChatOptions}.
     */
    public static SpeculaChatOptions merge(ChatOptions overrides, SpeculaChatOptions defaults) {
        if (overrides == null) {
            return defaults;
        }
        Builder merged = defaults.mutate();
        if (overrides.getModel() != null) {
            merged.model(overrides.getModel());
        }
        if (overrides.getTemperature() != null) {
            merged.temperature(overrides.getTemperature());
        }
        if (overrides.getTopP() != null) {
            merged.topP(overrides.getTopP());
        }
        if (overrides.getTopK() != null) {
            merged.topK(overrides.getTopK());
        }
        if (overrides.getMaxTokens() != null) {
            merged.maxTokens(overrides.getMaxTokens());
        }
        if (overrides.getStopSequences() != null) {
            merged.stopSequences(overrides.getStopSequences());
        }
        if (overrides.getFrequencyPenalty() != null) {
            merged.frequencyPenalty(overrides.getFrequencyPenalty());
        }
        if (overrides.getPresencePenalty() != null) {
            merged.presencePenalty(overrides.getPresencePenalty());
        }
        if (overrides instanceof SpeculaChatOptions specula) {
            if (specula.seed != null) {
                merged.seed(specula.seed);
            }
            if (specula.policy != null) {
                merged.policy(specula.policy);
            }
            if (specula.gamma != null) {
                merged.gamma(specula.gamma);
            }
            if (specula.speculation != null) {
                merged.speculation(specula.speculation);
            }
        }
        return merged.build();
    }

    @Override
    public String getModel() {
        return model;
    }

    @Override
    public Double getFrequencyPenalty() {
        return frequencyPenalty;
    }

    @Override
    public Integer getMaxTokens() {
        return maxTokens;
    }

    @Override
    public Double getPresencePenalty() {
        return presencePenalty;
    }

    @Override
    public List<String> getStopSequences() {
        return stopSequences;
    }

    @Override
    public Double getTemperature() {
        return temperature;
    }

    @Override
    public Integer getTopK() {
        return topK;
    }

    @Override
    public Double getTopP() {
        return topP;
    }

    /** Seed of the sampler: with it, sampled output is reproducible (and cacheable). */
    public Long getSeed() {
        return seed;
    }

    /** Speculation policy, {@code name} or {@code name:γ} (e.g. {@code fixed:4}). */
    public String getPolicy() {
        return policy;
    }

    /** Draft length γ for the policy. */
    public Integer getGamma() {
        return gamma;
    }

    /** Whether to speculate; false = plain target decoding. */
    public Boolean getSpeculation() {
        return speculation;
    }

    @Override
    public Builder mutate() {
        return new Builder().model(model)
            .temperature(temperature)
            .topP(topP)
            .topK(topK)
            .maxTokens(maxTokens)
            .stopSequences(stopSequences)
            .seed(seed)
            .policy(policy)
            .gamma(gamma)
            .speculation(speculation)
            .frequencyPenalty(frequencyPenalty)
            .presencePenalty(presencePenalty);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof SpeculaChatOptions that && Objects.equals(model, that.model)
                && Objects.equals(temperature, that.temperature) && Objects.equals(topP, that.topP)
                && Objects.equals(topK, that.topK) && Objects.equals(maxTokens, that.maxTokens)
                && Objects.equals(stopSequences, that.stopSequences) && Objects.equals(seed, that.seed)
                && Objects.equals(policy, that.policy) && Objects.equals(gamma, that.gamma)
                && Objects.equals(speculation, that.speculation)
                && Objects.equals(frequencyPenalty, that.frequencyPenalty)
                && Objects.equals(presencePenalty, that.presencePenalty);
    }

    @Override
    public int hashCode() {
        return Objects.hash(model, temperature, topP, topK, maxTokens, stopSequences, seed, policy, gamma, speculation);
    }

    @Override
    public String toString() {
        return "SpeculaChatOptions[model=" + model + ", temperature=" + temperature + ", topP=" + topP + ", topK="
                + topK + ", maxTokens=" + maxTokens + ", stopSequences=" + stopSequences + ", seed=" + seed
                + ", policy=" + policy + ", gamma=" + gamma + ", speculation=" + speculation + "]";
    }

    /** Builds options; unset fields stay null (inherit the defaults when merged). */
    public static final class Builder implements ChatOptions.Builder<Builder> {

        private String model;

        private Double temperature;

        private Double topP;

        private Integer topK;

        private Integer maxTokens;

        private List<String> stopSequences;

        private Long seed;

        private String policy;

        private Integer gamma;

        private Boolean speculation;

        private Double frequencyPenalty;

        private Double presencePenalty;

        private Builder() {
        }

        @Override
        public Builder clone() {
            return build().mutate();
        }

        @Override
        public Builder model(String model) {
            this.model = model;
            return this;
        }

        @Override
        public Builder frequencyPenalty(Double frequencyPenalty) {
            this.frequencyPenalty = frequencyPenalty;
            return this;
        }

        @Override
        public Builder maxTokens(Integer maxTokens) {
            this.maxTokens = maxTokens;
            return this;
        }

        @Override
        public Builder presencePenalty(Double presencePenalty) {
            this.presencePenalty = presencePenalty;
            return this;
        }

        @Override
        public Builder stopSequences(List<String> stopSequences) {
            this.stopSequences = stopSequences;
            return this;
        }

        @Override
        public Builder temperature(Double temperature) {
            this.temperature = temperature;
            return this;
        }

        @Override
        public Builder topK(Integer topK) {
            this.topK = topK;
            return this;
        }

        @Override
        public Builder topP(Double topP) {
            this.topP = topP;
            return this;
        }

        public Builder seed(Long seed) {
            this.seed = seed;
            return this;
        }

        public Builder policy(String policy) {
            this.policy = policy;
            return this;
        }

        public Builder gamma(Integer gamma) {
            this.gamma = gamma;
            return this;
        }

        public Builder speculation(Boolean speculation) {
            this.speculation = speculation;
            return this;
        }

        /** Fields set in {@code other} win (the Spring AI 2 builder contract). */
        @Override
        public Builder combineWith(ChatOptions.Builder<?> other) {
            return merge(other.build(), build()).mutate();
        }

        @Override
        public SpeculaChatOptions build() {
            return new SpeculaChatOptions(this);
        }

    }

}
