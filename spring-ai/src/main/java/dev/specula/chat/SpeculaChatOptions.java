package dev.specula.chat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.DefaultChatOptionsBuilder;
import org.springframework.ai.model.tool.StructuredOutputChatOptions;
import org.springframework.ai.model.tool.ToolCallingChatOptions;
import org.springframework.ai.tool.ToolCallback;

/**
 * Options of {@link SpeculaChatModel}: Spring AI's portable sampling options plus a seed
 * and how to speculate. Every field may be null, meaning "not set here": request options
 * are merged over the model's defaults field by field
 * ({@link #merge(ChatOptions, SpeculaChatOptions)}; ChatClient merges builders with
 * {@link Builder#combineWith}).
 *
 * <p>
 * {@code frequencyPenalty}, {@code presencePenalty}, {@code repetitionPenalty} and
 * {@code logitBias} change the target's distribution; speculation reproduces the changed
 * distribution exactly (each draft and target row is penalized for the tokens before it).
 * {@code logprobs} and {@code topLogprobs} report the target's log-probability of each
 * output token (before penalties and temperature) in the generation's metadata
 * ({@link ChatLogprob#METADATA_KEY}); {@code promptLogprobs} reports each prompt token's
 * (vLLM's {@code prompt_logprobs}) under {@link ChatLogprob#PROMPT_METADATA_KEY}.
 *
 * <p>
 * Structured output ({@link StructuredOutputChatOptions}): an {@code outputSchema} (JSON
 * Schema) or {@code jsonMode} (any JSON object) constrains decoding with a grammar, so
 * even a weak model writes valid JSON; {@code .entity(Record.class)} with native
 * structured output sets the schema.
 *
 * <p>
 * Tools ({@link ToolCallingChatOptions}): the tool callbacks are offered to the model
 * through its chat template, and the calls it writes come back as the assistant message's
 * tool calls; ChatClient's {@code ToolCallingAdvisor} runs them. {@link #getToolChoice()}
 * and {@link #getParallelToolCalls()} are OpenAI's {@code tool_choice} and
 * {@code parallel_tool_calls}.
 */
public final class SpeculaChatOptions implements ToolCallingChatOptions, StructuredOutputChatOptions {

    /** {@link #getToolChoice()}: the model decides whether to call a tool (default). */
    public static final String TOOL_CHOICE_AUTO = "auto";

    /** {@link #getToolChoice()}: the model may not call tools. */
    public static final String TOOL_CHOICE_NONE = "none";

    /** {@link #getToolChoice()}: the model must call at least one tool. */
    public static final String TOOL_CHOICE_REQUIRED = "required";

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

    private final String proposer;

    private final String prediction;

    private final Double frequencyPenalty;

    private final Double presencePenalty;

    private final List<ToolCallback> toolCallbacks;

    private final Map<String, Object> toolContext;

    private final String toolChoice;

    private final Boolean parallelToolCalls;

    private final Double repetitionPenalty;

    private final Map<Integer, Double> logitBias;

    private final Boolean logprobs;

    private final Integer topLogprobs;

    private final Integer promptLogprobs;

    private final String outputSchema;

    private final Boolean jsonMode;

    private final Boolean provenance;

    private SpeculaChatOptions(String model, Double temperature, Double topP, Integer topK, Integer maxTokens,
            List<String> stopSequences, Long seed, String policy, Integer gamma, Boolean speculation, String proposer,
            String prediction, Double frequencyPenalty, Double presencePenalty, List<ToolCallback> toolCallbacks,
            Map<String, Object> toolContext, String toolChoice, Boolean parallelToolCalls, Double repetitionPenalty,
            Map<Integer, Double> logitBias, Boolean logprobs, Integer topLogprobs, Integer promptLogprobs,
            String outputSchema, Boolean jsonMode, Boolean provenance) {
        this.model = model;
        this.temperature = temperature;
        this.topP = topP;
        this.topK = topK;
        this.maxTokens = maxTokens;
        this.stopSequences = stopSequences == null ? null : List.copyOf(stopSequences);
        this.seed = seed;
        this.policy = policy;
        this.gamma = gamma;
        this.speculation = speculation;
        this.proposer = proposer;
        this.prediction = prediction;
        this.frequencyPenalty = frequencyPenalty;
        this.presencePenalty = presencePenalty;
        this.toolCallbacks = toolCallbacks == null ? null : List.copyOf(toolCallbacks);
        this.toolContext = toolContext == null ? null : Map.copyOf(toolContext);
        this.toolChoice = toolChoice;
        this.parallelToolCalls = parallelToolCalls;
        this.repetitionPenalty = repetitionPenalty;
        this.logitBias = logitBias == null ? null : Map.copyOf(logitBias);
        this.logprobs = logprobs;
        this.topLogprobs = topLogprobs;
        this.promptLogprobs = promptLogprobs;
        this.outputSchema = outputSchema;
        this.jsonMode = jsonMode;
        this.provenance = provenance;
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * {@code overrides} over {@code defaults}, field by field: a field set in
     * {@code overrides} wins. Any {@link ChatOptions} can override (e.g.
     * {@code ChatOptions.builder().temperature(0.7)} from a ChatClient); the Specula
     * fields come only from a {@code SpeculaChatOptions}. Stop sequences given replace
     * the defaults' (options from a ChatClient already hold them, appended by
     * {@link Builder#combineWith}); so do tool callbacks, while tool contexts are merged
     * key by key (Spring AI's {@link ToolCallingChatOptions#mergeToolCallbacks} and
     * {@link ToolCallingChatOptions#mergeToolContext}).
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
        if (overrides instanceof ToolCallingChatOptions tools) {
            merged.toolCallbacks(
                    ToolCallingChatOptions.mergeToolCallbacks(tools.getToolCallbacks(), defaults.toolCallbacks));
            merged.toolContext(ToolCallingChatOptions.mergeToolContext(tools.getToolContext(), defaults.toolContext));
        }
        if (overrides instanceof StructuredOutputChatOptions structured && structured.getOutputSchema() != null) {
            merged.outputSchema(structured.getOutputSchema());
        }
        if (overrides instanceof SpeculaChatOptions specula) {
            if (specula.toolChoice != null) {
                merged.toolChoice(specula.toolChoice);
            }
            if (specula.repetitionPenalty != null) {
                merged.repetitionPenalty(specula.repetitionPenalty);
            }
            if (specula.logitBias != null) {
                merged.logitBias(specula.logitBias);
            }
            if (specula.logprobs != null) {
                merged.logprobs(specula.logprobs);
            }
            if (specula.topLogprobs != null) {
                merged.topLogprobs(specula.topLogprobs);
            }
            if (specula.promptLogprobs != null) {
                merged.promptLogprobs(specula.promptLogprobs);
            }
            if (specula.jsonMode != null) {
                merged.jsonMode(specula.jsonMode);
            }
            if (specula.provenance != null) {
                merged.provenance(specula.provenance);
            }
            if (specula.parallelToolCalls != null) {
                merged.parallelToolCalls(specula.parallelToolCalls);
            }
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
            if (specula.proposer != null) {
                merged.proposer(specula.proposer);
            }
            if (specula.prediction != null) {
                merged.prediction(specula.prediction);
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

    /**
     * What proposes the drafts: {@code model} (the draft model), {@code ngram} (prompt
     * lookup, needs no draft), {@code model+ngram}, {@code suffix} (suffix lookup, needs
     * no draft), {@code model+suffix} or {@code griffin} (the GRIFFIN feature head, needs
     * one loaded); null = the configured default.
     */
    public String getProposer() {
        return proposer;
    }

    /**
     * The predicted output (OpenAI's Predicted Outputs): text the answer is expected to
     * repeat mostly, such as a file before a small edit. It is the draft (proposer
     * {@code prediction}); the answer is still the model's own. Null = none.
     */
    public String getPrediction() {
        return prediction;
    }

    /**
     * The tools the model may call (their definitions go into the prompt); null or empty
     * = none.
     */
    @Override
    public List<ToolCallback> getToolCallbacks() {
        return toolCallbacks;
    }

    /** Context handed to the tools when ChatClient runs them; null = none. */
    @Override
    public Map<String, Object> getToolContext() {
        return toolContext;
    }

    /**
     * OpenAI's {@code tool_choice}: {@link #TOOL_CHOICE_AUTO} (null means auto),
     * {@link #TOOL_CHOICE_NONE} (no tool is offered to the model and its output is not
     * read for calls), {@link #TOOL_CHOICE_REQUIRED} or the name of one of the tools
     * (only that tool is offered). With {@code required} or a name a grammar forces a
     * valid call: a name of the offered tools, arguments valid for its schema.
     */
    public String getToolChoice() {
        return toolChoice;
    }

    /**
     * OpenAI's {@code parallel_tool_calls}: false keeps only the first call the model
     * writes; null or true keeps them all.
     */
    public Boolean getParallelToolCalls() {
        return parallelToolCalls;
    }

    /**
     * Hugging Face's and vLLM's repetition penalty: divides a positive logit and
     * multiplies a negative one of every token already in the prompt or the output; 1 =
     * off.
     */
    public Double getRepetitionPenalty() {
        return repetitionPenalty;
    }

    /**
     * Added to the logits of these token ids, each in [-100, 100] (OpenAI's logit_bias).
     */
    public Map<Integer, Double> getLogitBias() {
        return logitBias;
    }

    /** Whether to report each output token's log-probability. */
    public Boolean getLogprobs() {
        return logprobs;
    }

    /**
     * How many most likely tokens to report at each position (0 to 20); needs
     * {@code logprobs}.
     */
    public Integer getTopLogprobs() {
        return topLogprobs;
    }

    /**
     * Whether, and with how many most likely tokens (0 to 20), to report each prompt
     * token's log-probability as the target computes it (vLLM's {@code prompt_logprobs}):
     * the generation's metadata then holds prompt tokens 2.. under
     * {@link ChatLogprob#PROMPT_METADATA_KEY} (the first has nothing before it); a
     * stream, in its first chunk. With it {@code maxTokens} may be 0: the prompt is
     * scored, nothing generated. Null: not reported.
     */
    public Integer getPromptLogprobs() {
        return promptLogprobs;
    }

    /**
     * A JSON Schema the answer must match: decoding is constrained by a grammar compiled
     * from it (an unsupported keyword is refused by name). Null = unconstrained.
     */
    @Override
    public String getOutputSchema() {
        return outputSchema;
    }

    /**
     * Whether the answer must be a JSON object (OpenAI's {@code json_object} response
     * format); an {@code outputSchema} says more and wins.
     */
    public Boolean getJsonMode() {
        return jsonMode;
    }

    /**
     * Whether the answer tells how each of its tokens was made: every streamed chunk
     * carries its tokens in the generation metadata
     * ({@link SpeculaChatModel#METADATA_TOKENS}), a whole answer all of them. Such a
     * request is always decoded, never replayed from the response cache; it cannot offer
     * tools whose calls are read from the output. Null or false: no tokens.
     */
    public Boolean getProvenance() {
        return provenance;
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
            .proposer(proposer)
            .prediction(prediction)
            .frequencyPenalty(frequencyPenalty)
            .presencePenalty(presencePenalty)
            .toolCallbacks(toolCallbacks)
            .toolContext(toolContext)
            .toolChoice(toolChoice)
            .parallelToolCalls(parallelToolCalls)
            .repetitionPenalty(repetitionPenalty)
            .logitBias(logitBias)
            .logprobs(logprobs)
            .topLogprobs(topLogprobs)
            .promptLogprobs(promptLogprobs)
            .outputSchema(outputSchema)
            .jsonMode(jsonMode)
            .provenance(provenance);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof SpeculaChatOptions that && Objects.equals(model, that.model)
                && Objects.equals(temperature, that.temperature) && Objects.equals(topP, that.topP)
                && Objects.equals(topK, that.topK) && Objects.equals(maxTokens, that.maxTokens)
                && Objects.equals(stopSequences, that.stopSequences) && Objects.equals(seed, that.seed)
                && Objects.equals(policy, that.policy) && Objects.equals(gamma, that.gamma)
                && Objects.equals(speculation, that.speculation) && Objects.equals(proposer, that.proposer)
                && Objects.equals(prediction, that.prediction)
                && Objects.equals(frequencyPenalty, that.frequencyPenalty)
                && Objects.equals(presencePenalty, that.presencePenalty)
                && Objects.equals(toolCallbacks, that.toolCallbacks) && Objects.equals(toolContext, that.toolContext)
                && Objects.equals(toolChoice, that.toolChoice)
                && Objects.equals(parallelToolCalls, that.parallelToolCalls)
                && Objects.equals(repetitionPenalty, that.repetitionPenalty)
                && Objects.equals(logitBias, that.logitBias) && Objects.equals(logprobs, that.logprobs)
                && Objects.equals(topLogprobs, that.topLogprobs) && Objects.equals(promptLogprobs, that.promptLogprobs)
                && Objects.equals(outputSchema, that.outputSchema) && Objects.equals(jsonMode, that.jsonMode)
                && Objects.equals(provenance, that.provenance);
    }

    @Override
    public int hashCode() {
        return Objects.hash(model, temperature, topP, topK, maxTokens, stopSequences, seed, policy, gamma, speculation,
                proposer, prediction, toolCallbacks, toolContext, toolChoice, parallelToolCalls, outputSchema);
    }

    @Override
    public String toString() {
        return "SpeculaChatOptions[model=" + model + ", temperature=" + temperature + ", topP=" + topP + ", topK="
                + topK + ", maxTokens=" + maxTokens + ", stopSequences=" + stopSequences + ", seed=" + seed
                + ", policy=" + policy + ", gamma=" + gamma + ", speculation=" + speculation + ", proposer=" + proposer
                + ", prediction=" + (prediction == null ? null : prediction.length() + " characters") + ", tools="
                + (toolCallbacks == null ? null
                        : toolCallbacks.stream().map((tool) -> tool.getToolDefinition().name()).toList())
                + ", toolContext=" + (toolContext == null ? null : toolContext.keySet()) + ", toolChoice=" + toolChoice
                + ", parallelToolCalls=" + parallelToolCalls + ", frequencyPenalty=" + frequencyPenalty
                + ", presencePenalty=" + presencePenalty + ", repetitionPenalty=" + repetitionPenalty + ", logitBias="
                + logitBias + ", logprobs=" + logprobs + ", topLogprobs=" + topLogprobs + ", promptLogprobs="
                + promptLogprobs + ", outputSchema="
                + (outputSchema == null ? null : outputSchema.length() + " characters") + ", jsonMode=" + jsonMode
                + ", provenance=" + provenance + "]";
    }

    /**
     * Builds options; unset fields stay null (inherit the defaults when merged). Extends
     * Spring AI's {@link DefaultChatOptionsBuilder}, as the options of Spring AI's own
     * models do, so that ChatClient can merge it with any portable builder either way; a
     * {@link ToolCallingChatOptions.Builder}, so that ChatClient's {@code .tools(...)}
     * reach the model.
     */
    public static final class Builder extends DefaultChatOptionsBuilder<Builder>
            implements ToolCallingChatOptions.Builder<Builder>, StructuredOutputChatOptions.Builder<Builder> {

        private Long seed;

        private String policy;

        private Integer gamma;

        private Boolean speculation;

        private String proposer;

        private String prediction;

        private List<ToolCallback> toolCallbacks;

        private Map<String, Object> toolContext;

        private String toolChoice;

        private Boolean parallelToolCalls;

        private Double repetitionPenalty;

        private Map<Integer, Double> logitBias;

        private Boolean logprobs;

        private Integer topLogprobs;

        private Integer promptLogprobs;

        private String outputSchema;

        private Boolean jsonMode;

        private Boolean provenance;

        private Builder() {
        }

        /** Repetition penalty, > 0; 1 = off. */
        public Builder repetitionPenalty(Double repetitionPenalty) {
            this.repetitionPenalty = repetitionPenalty;
            return this;
        }

        /** Token id to the bias added to its logit, in [-100, 100]. */
        public Builder logitBias(Map<Integer, Double> logitBias) {
            this.logitBias = logitBias;
            return this;
        }

        public Builder logprobs(Boolean logprobs) {
            this.logprobs = logprobs;
            return this;
        }

        public Builder topLogprobs(Integer topLogprobs) {
            this.topLogprobs = topLogprobs;
            return this;
        }

        /**
         * Most likely tokens to report at each prompt position (0 to 20); null = none.
         */
        public Builder promptLogprobs(Integer promptLogprobs) {
            this.promptLogprobs = promptLogprobs;
            return this;
        }

        /** A JSON Schema the answer must match; null = unconstrained. */
        @Override
        public Builder outputSchema(String outputSchema) {
            this.outputSchema = outputSchema;
            return this;
        }

        /** Whether the answer must be a JSON object. */
        public Builder jsonMode(Boolean jsonMode) {
            this.jsonMode = jsonMode;
            return this;
        }

        /** Whether the answer tells how each of its tokens was made. */
        public Builder provenance(Boolean provenance) {
            this.provenance = provenance;
            return this;
        }

        @Override
        public Builder clone() {
            Builder copy = super.clone();
            copy.toolCallbacks = toolCallbacks == null ? null : new ArrayList<>(toolCallbacks);
            copy.toolContext = toolContext == null ? null : new LinkedHashMap<>(toolContext);
            return copy;
        }

        @Override
        public Builder toolCallbacks(List<ToolCallback> toolCallbacks) {
            this.toolCallbacks = toolCallbacks == null ? null : new ArrayList<>(toolCallbacks);
            return this;
        }

        @Override
        public Builder toolCallbacks(ToolCallback... toolCallbacks) {
            return toolCallbacks(Arrays.asList(toolCallbacks));
        }

        @Override
        public Builder toolContext(Map<String, Object> context) {
            this.toolContext = context == null ? null : new LinkedHashMap<>(context);
            return this;
        }

        @Override
        public Builder toolContext(String key, Object value) {
            if (this.toolContext == null) {
                this.toolContext = new LinkedHashMap<>();
            }
            this.toolContext.put(key, value);
            return this;
        }

        /**
         * {@code auto} (null = auto), {@code none}, {@code required} or a tool's name.
         */
        public Builder toolChoice(String toolChoice) {
            this.toolChoice = toolChoice;
            return this;
        }

        /** False keeps only the model's first call; null = all. */
        public Builder parallelToolCalls(Boolean parallelToolCalls) {
            this.parallelToolCalls = parallelToolCalls;
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

        /**
         * {@code model}, {@code ngram}, {@code model+ngram}, {@code suffix},
         * {@code model+suffix} or {@code griffin}; null = the default.
         */
        public Builder proposer(String proposer) {
            this.proposer = proposer;
            return this;
        }

        /** The predicted output; null = none. */
        public Builder prediction(String prediction) {
            this.prediction = prediction;
            return this;
        }

        /**
         * Merges {@code other} into this builder and returns this builder (Spring AI 2's
         * contract): the fields {@code other} sets win; stop sequences are appended, as
         * Spring AI's builders do, and so are tool callbacks (tool contexts merged key by
         * key). The Specula fields come only from a Specula builder; tools from any
         * {@link ToolCallingChatOptions.Builder}.
         */
        @Override
        public Builder combineWith(ChatOptions.Builder<?> other) {
            super.combineWith(other);
            List<ToolCallback> otherCallbacks = null;
            Map<String, Object> otherContext = null;
            if (other instanceof Builder specula) {
                otherCallbacks = specula.toolCallbacks;
                otherContext = specula.toolContext;
            }
            else if (other instanceof ToolCallingChatOptions.Builder<?> tools) {
                ToolCallingChatOptions built = tools.clone().build();
                otherCallbacks = built.getToolCallbacks();
                otherContext = built.getToolContext();
            }
            if (otherCallbacks != null) {
                List<ToolCallback> merged = toolCallbacks == null ? new ArrayList<>() : new ArrayList<>(toolCallbacks);
                merged.addAll(otherCallbacks);
                this.toolCallbacks = merged;
            }
            if (otherContext != null) {
                Map<String, Object> merged = toolContext == null ? new LinkedHashMap<>()
                        : new LinkedHashMap<>(toolContext);
                merged.putAll(otherContext);
                this.toolContext = merged;
            }
            if (other instanceof Builder specula) {
                if (specula.toolChoice != null) {
                    this.toolChoice = specula.toolChoice;
                }
                if (specula.parallelToolCalls != null) {
                    this.parallelToolCalls = specula.parallelToolCalls;
                }
                if (specula.repetitionPenalty != null) {
                    this.repetitionPenalty = specula.repetitionPenalty;
                }
                if (specula.logitBias != null) {
                    this.logitBias = specula.logitBias;
                }
                if (specula.logprobs != null) {
                    this.logprobs = specula.logprobs;
                }
                if (specula.topLogprobs != null) {
                    this.topLogprobs = specula.topLogprobs;
                }
                if (specula.promptLogprobs != null) {
                    this.promptLogprobs = specula.promptLogprobs;
                }
                if (specula.outputSchema != null) {
                    this.outputSchema = specula.outputSchema;
                }
                if (specula.jsonMode != null) {
                    this.jsonMode = specula.jsonMode;
                }
                if (specula.provenance != null) {
                    this.provenance = specula.provenance;
                }
                if (specula.seed != null) {
                    this.seed = specula.seed;
                }
                if (specula.policy != null) {
                    this.policy = specula.policy;
                }
                if (specula.gamma != null) {
                    this.gamma = specula.gamma;
                }
                if (specula.speculation != null) {
                    this.speculation = specula.speculation;
                }
                if (specula.proposer != null) {
                    this.proposer = specula.proposer;
                }
                if (specula.prediction != null) {
                    this.prediction = specula.prediction;
                }
            }
            return this;
        }

        @Override
        public SpeculaChatOptions build() {
            return new SpeculaChatOptions(this.model, this.temperature, this.topP, this.topK, this.maxTokens,
                    this.stopSequences, this.seed, this.policy, this.gamma, this.speculation, this.proposer,
                    this.prediction, this.frequencyPenalty, this.presencePenalty, this.toolCallbacks, this.toolContext,
                    this.toolChoice, this.parallelToolCalls, this.repetitionPenalty, this.logitBias, this.logprobs,
                    this.topLogprobs, this.promptLogprobs, this.outputSchema, this.jsonMode, this.provenance);
        }

    }

}
