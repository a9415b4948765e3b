package dev.specula.chat;

import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationRegistry;
import io.micrometer.observation.contextpropagation.ObservationThreadLocalAccessor;
import org.jspecify.annotations.Nullable;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.Message;
import org.springframework.ai.chat.metadata.ChatGenerationMetadata;
import org.springframework.ai.chat.metadata.ChatResponseMetadata;
import org.springframework.ai.chat.metadata.DefaultUsage;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.model.Generation;
import org.springframework.ai.chat.observation.ChatModelObservationContext;
import org.springframework.ai.chat.observation.ChatModelObservationConvention;
import org.springframework.ai.chat.observation.ChatModelObservationDocumentation;
import org.springframework.ai.chat.observation.DefaultChatModelObservationConvention;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.model.tool.ToolCallingChatOptions;
import reactor.core.publisher.Flux;
import reactor.core.publisher.FluxSink;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

import dev.specula.engine.CancellationToken;
import dev.specula.engine.FinishReason;
import dev.specula.engine.GenerationResult;
import dev.specula.engine.GenerationStats;
import dev.specula.engine.ModelPair;
import dev.specula.engine.OutputToken;
import dev.specula.engine.TokenStreamListener;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.proposer.ProposerKind;
import dev.specula.request.InvalidRequestException;
import dev.specula.sampling.SamplingParams;
import dev.specula.sampling.TokenLogprob;
import dev.specula.sampling.TokenPenalties;
import dev.specula.serving.GenerationService;
import dev.specula.serving.ServiceRequest;
import dev.specula.serving.ServiceResult;
import dev.specula.tokenizer.ChatMessage;
import dev.specula.tokenizer.PromptEncoder;
import dev.specula.toolcall.ParsedOutput;
import dev.specula.toolcall.ToolCallStreamFilter;

/**
 * Spring AI {@link ChatModel} (and so {@code StreamingChatModel}) over a
 * {@link GenerationService}: local ONNX models with lossless speculative decoding.
 * {@code call} answers at once, {@code stream} sends text as the target accepts it (a
 * cached answer in the chunks it was generated in); both report {@code Usage}, a finish
 * reason, the requested and the effective policy and the speculation figures in the
 * response metadata (keys {@code specula.*} below), inside a
 * {@code gen_ai.client.operation} observation.
 *
 * <p>
 * Tools: the options' tool callbacks are offered to the model through its chat template
 * (their name, description and input schema, as transformers'
 * {@code apply_chat_template(tools=...)}); the calls the model writes, in the format its
 * template teaches ({@link dev.specula.toolcall.ToolCallFormat}), come back as the
 * assistant message's tool calls with finish reason {@value #FINISH_REASON_TOOL_CALLS},
 * for ChatClient's {@code ToolCallingAdvisor} to run. When streaming, call markup never
 * reaches the text chunks: the calls arrive whole in the last chunk. History with tool
 * calls and {@code ToolResponseMessage}s is rendered as the template expects. A model
 * whose template knows no tool-call format refuses tools ({@code tools}); messages with
 * media are refused ({@code media}).
 *
 * <p>
 * Provenance ({@link SpeculaChatOptions#getProvenance()}): each streamed chunk carries
 * the tokens its text is made of and how each was made, a draft the target accepted, the
 * target's correction, its bonus token or a plain token ({@link OutputToken},
 * {@link dev.specula.engine.TokenKind}), in the generation metadata under
 * {@link #METADATA_TOKENS}; a whole answer carries all of them.
 */
public class SpeculaChatModel implements ChatModel {

    /**
     * Error code of a prompt over the character limit
     * ({@link Builder#maxPromptCharacters}).
     */
    public static final String PROMPT_TOO_LONG = "prompt_too_long";

    /**
     * Finish reason of an answer that calls tools (OpenAI's {@code tool_calls}, in the
     * lower case of this model's other reasons; Spring AI compares finish reasons
     * ignoring case).
     */
    public static final String FINISH_REASON_TOOL_CALLS = "tool_calls";

    /** Provider name in observations ({@code gen_ai.provider.name}). */
    public static final String PROVIDER = "specula";

    /**
     * Response metadata: the policy that ran ("plain" when it did not speculate, "cache"
     * when the answer was replayed from the response cache).
     */
    public static final String METADATA_POLICY = "specula.policy";

    /**
     * Response metadata: the policy the request asked for (the default when it named
     * none; "plain" when it asked not to speculate).
     */
    public static final String METADATA_REQUESTED_POLICY = "specula.requested-policy";

    /**
     * Response metadata: why the policy that ran is not the one asked for (or why
     * speculation stopped part-way): probe, goodput, breaker-open, draft-error, timeout,
     * or cache; absent when it ran as asked.
     */
    public static final String METADATA_POLICY_REASON = "specula.policy-reason";

    /**
     * Response metadata: what proposed the drafts ({@code model}, {@code ngram},
     * {@code model+ngram}, {@code griffin}, ...); absent when nothing was proposed.
     */
    public static final String METADATA_PROPOSER = "specula.proposer";

    /**
     * Response metadata, with a prediction: its tokens the answer took (long), OpenAI's
     * {@code accepted_prediction_tokens}.
     */
    public static final String METADATA_ACCEPTED_PREDICTION_TOKENS = "specula.accepted-prediction-tokens";

    /**
     * Response metadata, with a prediction: its tokens proposed and rejected (long),
     * OpenAI's {@code rejected_prediction_tokens}.
     */
    public static final String METADATA_REJECTED_PREDICTION_TOKENS = "specula.rejected-prediction-tokens";

    /** Response metadata: draft tokens proposed to the target (long). */
    public static final String METADATA_DRAFTED = "specula.drafted";

    /** Response metadata: draft tokens the target accepted (long). */
    public static final String METADATA_ACCEPTED = "specula.accepted";

    /** Response metadata: tokens per verification round, accepted drafts + 1 (double). */
    public static final String METADATA_MEAN_ACCEPTED_LENGTH = "specula.mean-accepted-length";

    /** Response metadata: target model calls (long). */
    public static final String METADATA_TARGET_CALLS = "specula.target-calls";

    /**
     * Response metadata: whether plain decoding served (part of) the request instead of
     * speculation (boolean).
     */
    public static final String METADATA_FALLBACK = "specula.fallback";

    /**
     * Response metadata: why it fell back (draft-error, timeout, breaker-open, goodput);
     * absent otherwise.
     */
    public static final String METADATA_FALLBACK_REASON = "specula.fallback-reason";

    /**
     * Response metadata: whether the answer was replayed from the response cache
     * (boolean).
     */
    public static final String METADATA_CACHED = "specula.cached";

    /**
     * Generation metadata, when the options ask for
     * {@link SpeculaChatOptions#getProvenance() provenance}: the tokens of the response's
     * text and how each was made, a {@code List<OutputToken>}. In a streamed chunk, the
     * pieces of its text, in order (their texts concatenate to it; a token whose text
     * comes in two chunks has a piece in each, with the same index, and the end of
     * sequence comes as a piece without text, in a chunk of its own when nothing else is
     * new); in a whole answer, one entry per token.
     */
    public static final String METADATA_TOKENS = "specula.tokens";

    /**
     * Longest prompt by default, in characters of message text: checked before the chat
     * template and the tokenizer run, so an oversized prompt costs nothing (a million
     * characters are ~250k tokens, far beyond the context of the models Specula runs).
     */
    public static final int DEFAULT_MAX_PROMPT_CHARACTERS = 1_000_000;

    private static final ChatModelObservationConvention DEFAULT_OBSERVATION_CONVENTION = new DefaultChatModelObservationConvention();

    private static final int DEFAULT_MAX_TOKENS = dev.specula.engine.GenerationRequest.DEFAULT_MAX_NEW_TOKENS;

    private static final String UNSUPPORTED_VALUE = "unsupported_value";

    private final GenerationService service;

    private final SpeculaChatOptions defaultOptions;

    private final String modelName;

    private final int maxPromptCharacters;

    /** Most tokens a prompt may have; 0: the target's context length. */
    private final int maxPromptTokens;

    private final ObservationRegistry observationRegistry;

    private final Scheduler streamScheduler;

    private ChatModelObservationConvention observationConvention = DEFAULT_OBSERVATION_CONVENTION;

    protected SpeculaChatModel(Builder builder) {
        if (builder.service == null) {
            throw new IllegalArgumentException("service must not be null");
        }
        this.service = builder.service;
        if (builder.maxPromptCharacters < 1) {
            throw new IllegalArgumentException(
                    "maxPromptCharacters must be >= 1 but was " + builder.maxPromptCharacters);
        }
        if (builder.maxPromptTokens < 0) {
            throw new IllegalArgumentException(
                    "maxPromptTokens must be >= 0 (0 = the context length) but was " + builder.maxPromptTokens);
        }
        this.modelName = builder.modelName;
        this.maxPromptCharacters = builder.maxPromptCharacters;
        this.maxPromptTokens = builder.maxPromptTokens;
        this.defaultOptions = builder.defaultOptions.mutate().model(builder.modelName).build();
        this.observationRegistry = builder.observationRegistry;
        this.streamScheduler = builder.streamScheduler;
        if (builder.observationConvention != null) {
            this.observationConvention = builder.observationConvention;
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * A builder holding this model's settings (the same service, defaults, limits,
     * observations and stream scheduler), for a model that differs in a few.
     */
    public Builder mutate() {
        Builder builder = new Builder().service(service)
            .defaultOptions(defaultOptions)
            .modelName(modelName)
            .maxPromptCharacters(maxPromptCharacters)
            .maxPromptTokens(maxPromptTokens)
            .observationRegistry(observationRegistry)
            .streamScheduler(streamScheduler);
        builder.observationConvention = observationConvention;
        return builder;
    }

    @Override
    public ChatResponse call(Prompt prompt) {
        return call(prompt, null);
    }

    /**
     * {@link #call(Prompt)} that stops when {@code cancellation} is cancelled (inside
     * ONNX Runtime when it runs alone; between steps in a batch; at once while queued):
     * the answer then holds the text generated so far, with finish reason "cancelled".
     * @param cancellation cancels the generation; null: never cancelled
     */
    public ChatResponse call(Prompt prompt, CancellationToken cancellation) {
        Prompt requestPrompt = buildRequestPrompt(prompt);
        ChatModelObservationContext observationContext = ChatModelObservationContext.builder()
            .prompt(requestPrompt)
            .provider(PROVIDER)
            .build();
        return ChatModelObservationDocumentation.CHAT_MODEL_OPERATION
            .observation(observationConvention, DEFAULT_OBSERVATION_CONVENTION, () -> observationContext,
                    observationRegistry)
            .observe(() -> {
                ToolPlan tools = toolPlan(requestPrompt);
                TokenRecorder tokens = TokenRecorder.of((SpeculaChatOptions) requestPrompt.getOptions());
                ServiceResult result = service.generate(serviceRequest(requestPrompt, tools, tokens, cancellation));
                String text = result.generation().text();
                ChatResponse response = completeResponse(UUID.randomUUID().toString(), result,
                        tools.readsCalls() ? tools.format().parse(text) : new ParsedOutput(text, List.of()), tools,
                        TokenRecorder.tokensOf(tokens));
                observationContext.setResponse(response);
                return response;
            });
    }

    /**
     * Streams the answer: one {@link ChatResponse} per piece of accepted text, then a
     * last one with no text that carries the finish reason, usage and speculation
     * figures. Log-probabilities, when asked for, come with the chunks: each carries
     * those of the tokens whose text first shows in it ({@link Chunks}), the last those
     * left (a token without text of its own, such as the end of sequence); the prompt's,
     * in the first chunk. Cancelling the subscription stops the generation (inside ONNX
     * Runtime when it runs alone; between steps in a batch). Text is emitted on the
     * generating thread when unbatched, on one of the engine's output threads when
     * batched — never on the batch thread, so a slow subscriber delays only its own
     * stream.
     */
    @Override
    public Flux<ChatResponse> stream(Prompt prompt) {
        return Flux.deferContextual((contextView) -> {
            Prompt requestPrompt = buildRequestPrompt(prompt);
            ChatModelObservationContext observationContext = ChatModelObservationContext.builder()
                .prompt(requestPrompt)
                .provider(PROVIDER)
                .streaming(true)
                .build();
            Observation observation = ChatModelObservationDocumentation.CHAT_MODEL_OPERATION.observation(
                    observationConvention, DEFAULT_OBSERVATION_CONVENTION, () -> observationContext,
                    observationRegistry);
            observation.parentObservation(contextView.getOrDefault(ObservationThreadLocalAccessor.KEY, null)).start();
            String id = UUID.randomUUID().toString();
            Flux<ChatResponse> chunks = Flux.create((sink) -> {
                CancellationToken cancellation = new CancellationToken();
                sink.onCancel(cancellation::cancel);
                ToolPlan tools = toolPlan(requestPrompt);
                StreamedText streamed = new StreamedText(tools.readsCalls() ? tools.format().streamFilter() : null);
                Chunks stream = new Chunks(id, sink, streamed, (SpeculaChatOptions) requestPrompt.getOptions());
                ServiceRequest request = serviceRequest(requestPrompt, tools, stream, cancellation);
                streamScheduler.schedule(() -> {
                    try {
                        ServiceResult result = service.generate(request);
                        ParsedOutput rest = streamed.finish();
                        if (!rest.content().isEmpty() && tools.readsCalls()) {
                            sink.next(stream.chunk(rest.content(), List.of()));
                        }
                        ParsedOutput whole = tools.readsCalls()
                                ? new ParsedOutput(streamed.shown(rest), rest.toolCalls())
                                : new ParsedOutput(result.generation().text(), List.of());
                        observationContext.setResponse(completeResponse(id, result, whole, tools, List.of()));
                        sink.next(stream.last(result, rest, tools));
                        sink.complete();
                    }
                    catch (RuntimeException ex) {
                        sink.error(ex);
                    }
                });
            }, FluxSink.OverflowStrategy.BUFFER);
            return chunks.doOnError(observation::error).doFinally((signal) -> observation.stop());
        });
    }

    /**
     * Answers a prompt given as token ids, read by the model as they are: no chat
     * template, no tools (a raw-text completion, as OpenAI's legacy
     * {@code /v1/completions} serves). The options are merged over this model's defaults
     * and checked as {@link #call(Prompt)} checks them; the response carries the same
     * usage, finish reason, log-probabilities and {@code specula.*} metadata. No
     * {@code gen_ai} observation is made: there are no messages to describe.
     * @param promptIds the prompt, tokenized (special tokens such as BOS included when
     * the model expects them)
     * @param options the request's options, or null for the defaults
     * @throws InvalidRequestException naming {@code promptIds} for an empty prompt or an
     * id outside the vocabulary, {@code tools} when the options offer tools, or the
     * option at fault
     */
    public ChatResponse callTokens(int[] promptIds, ChatOptions options) {
        return callTokens(promptIds, options, null);
    }

    /**
     * {@link #callTokens(int[], ChatOptions)} that stops when {@code cancellation} is
     * cancelled, as {@link #call(Prompt, CancellationToken)} does.
     * @param cancellation cancels the generation; null: never cancelled
     */
    public ChatResponse callTokens(int[] promptIds, ChatOptions options, CancellationToken cancellation) {
        SpeculaChatOptions merged = tokenOptions(promptIds, options);
        TokenRecorder tokens = TokenRecorder.of(merged);
        ServiceResult result = service.generate(serviceRequest(promptIds, merged, ToolPlan.NONE, tokens, cancellation));
        return completeResponse(UUID.randomUUID().toString(), result,
                new ParsedOutput(result.generation().text(), List.of()), ToolPlan.NONE, TokenRecorder.tokensOf(tokens));
    }

    /**
     * Streams the answer to a prompt given as token ids, as {@link #stream(Prompt)}
     * streams a chat's (pieces of text, then a last response with no text that carries
     * the finish reason, usage and figures); no chat template, no tools, no observation
     * ({@link #callTokens}). Cancelling the subscription stops the generation.
     */
    public Flux<ChatResponse> streamTokens(int[] promptIds, ChatOptions options) {
        return Flux.defer(() -> {
            SpeculaChatOptions merged = tokenOptions(promptIds, options);
            String id = UUID.randomUUID().toString();
            return Flux.create((sink) -> {
                CancellationToken cancellation = new CancellationToken();
                sink.onCancel(cancellation::cancel);
                Chunks stream = new Chunks(id, sink, new StreamedText(null), merged);
                ServiceRequest request = serviceRequest(promptIds, merged, ToolPlan.NONE, stream, cancellation);
                streamScheduler.schedule(() -> {
                    try {
                        ServiceResult result = service.generate(request);
                        sink.next(stream.last(result, new ParsedOutput("", List.of()), ToolPlan.NONE));
                        sink.complete();
                    }
                    catch (RuntimeException ex) {
                        sink.error(ex);
                    }
                });
            }, FluxSink.OverflowStrategy.BUFFER);
        });
    }

    /**
     * The options of a token prompt merged over the defaults and checked, with the prompt
     * itself.
     */
    private SpeculaChatOptions tokenOptions(int[] promptIds, ChatOptions options) {
        if (promptIds == null || promptIds.length == 0) {
            throw new InvalidRequestException("promptIds", "The prompt must have at least one token");
        }
        int vocabulary = service.models().get().target().tokenizer().vocabularySize();
        for (int i = 0; i < promptIds.length; i++) {
            if (promptIds[i] < 0 || promptIds[i] >= vocabulary) {
                throw new InvalidRequestException("promptIds", "Token id " + promptIds[i] + " at index " + i
                        + " is outside the vocabulary [0, " + vocabulary + ")");
            }
        }
        SpeculaChatOptions merged = SpeculaChatOptions.merge(options, defaultOptions);
        validate(merged);
        if (merged.getToolCallbacks() != null && !merged.getToolCallbacks().isEmpty()) {
            throw new InvalidRequestException("tools", UNSUPPORTED_VALUE,
                    "Tools are offered to the model through its chat template, which a token prompt skips: "
                            + "send messages (call or stream a Prompt) to use tools");
        }
        return merged;
    }

    /** The defaults requests are merged over (ChatClient reads them here). */
    @Override
    public ChatOptions getOptions() {
        return defaultOptions.mutate().build();
    }

    @Override
    @SuppressWarnings("deprecation")
    public ChatOptions getDefaultOptions() {
        return getOptions();
    }

    /** The model name requests may ask for (and responses report). */
    public String getModelName() {
        return modelName;
    }

    public GenerationService getService() {
        return service;
    }

    public void setObservationConvention(ChatModelObservationConvention observationConvention) {
        if (observationConvention == null) {
            throw new IllegalArgumentException("observationConvention must not be null");
        }
        this.observationConvention = observationConvention;
    }

    /**
     * The prompt with its options merged over the defaults and validated; its size
     * checked, before the chat template and the tokenizer run.
     * @throws InvalidRequestException for a bad option or messages, naming the option
     * (Spring AI's name) or {@code messages}
     */
    Prompt buildRequestPrompt(Prompt prompt) {
        checkSize(prompt.getInstructions());
        SpeculaChatOptions options = SpeculaChatOptions.merge(prompt.getOptions(), defaultOptions);
        validate(options);
        return new Prompt(prompt.getInstructions(), options);
    }

    /** Counts characters only: the text itself is never logged nor put in an error. */
    private void checkSize(List<Message> instructions) {
        long characters = ChatMessages.characters(instructions);
        if (characters > maxPromptCharacters) {
            throw new InvalidRequestException("messages", PROMPT_TOO_LONG,
                    "The messages hold " + characters + " characters, more than the limit of " + maxPromptCharacters
                            + " characters a prompt may have (the ChatModel's maxPromptCharacters, property "
                            + "specula.chat.max-prompt-characters): shorten the messages");
        }
    }

    /**
     * Refuses a prompt of {@code characters} (text the tokenizer reads as it is, such as
     * a raw completion prompt) when they alone prove it over the prompt-token limit
     * ({@link Builder#maxPromptTokens}, else the context length), before it is tokenized;
     * {@link #callTokens} checks the count of the tokens themselves.
     * @throws PromptTokenLimitException with a lower bound of the prompt's tokens
     */
    public void checkPromptCharacters(long characters) {
        ModelPair pair = service.models().get();
        checkTokensBeforeTokenizing(characters, promptTokenLimit(pair),
                pair.target().tokenizer().maxCharactersPerToken());
    }

    /**
     * The messages' characters that certainly reach the tokenizer: each message's text,
     * trimmed (the chat template writes it among its own text, at most trimmed; tool
     * calls' arguments may be re-serialized shorter and are not counted).
     */
    private static long templatedCharacters(List<Message> instructions) {
        long characters = 0;
        for (Message message : instructions) {
            characters += message.getText() == null ? 0 : message.getText().strip().length();
        }
        return characters;
    }

    /**
     * Refuses a text of {@code characters} when they alone prove it over {@code limit}
     * tokens: no token covers more than {@code maxCharactersPerToken} characters (0:
     * unknown, no check).
     */
    private void checkTokensBeforeTokenizing(long characters, int limit, int maxCharactersPerToken) {
        if (maxCharactersPerToken < 1) {
            return;
        }
        if (characters > (long) limit * maxCharactersPerToken) {
            long atLeast = (characters + maxCharactersPerToken - 1) / maxCharactersPerToken;
            throw new PromptTokenLimitException((int) Math.min(atLeast, Integer.MAX_VALUE), false, limit,
                    maxPromptTokens == 0);
        }
    }

    private void validate(SpeculaChatOptions options) {
        if (options.getModel() != null && !options.getModel().equals(modelName)) {
            throw new InvalidRequestException("model", "model_not_found",
                    "Unknown model '" + options.getModel() + "': this ChatModel serves '" + modelName
                            + "' (leave the model option out, or set it to '" + modelName + "')");
        }
        penaltiesOf(options);
        if (options.getTopLogprobs() != null && !Boolean.TRUE.equals(options.getLogprobs())) {
            throw new InvalidRequestException("topLogprobs",
                    "topLogprobs needs logprobs: set logprobs to true, or leave topLogprobs out");
        }
        Integer promptLogprobs = options.getPromptLogprobs();
        if (promptLogprobs != null && (promptLogprobs < 0 || promptLogprobs > TokenLogprob.MAX_TOP)) {
            throw new InvalidRequestException("promptLogprobs",
                    "promptLogprobs (the most likely tokens to report at each prompt position) must be in [0, "
                            + TokenLogprob.MAX_TOP + "] but was " + promptLogprobs + ": leave it out for none");
        }
        if (options.getMaxTokens() != null && options.getMaxTokens() < 1
                && !(options.getMaxTokens() == 0 && promptLogprobs != null)) {
            throw new InvalidRequestException("maxTokens", "maxTokens must be >= 1 but was " + options.getMaxTokens()
                    + " (0 generates nothing: it only scores the prompt, with promptLogprobs)");
        }
        if (options.getStopSequences() != null
                && options.getStopSequences().stream().anyMatch((s) -> s == null || s.isEmpty())) {
            throw new InvalidRequestException("stopSequences", "stopSequences must not contain empty strings");
        }
        if (options.getGamma() != null && options.getGamma() < 1) {
            throw new InvalidRequestException("gamma",
                    "gamma (draft length) must be >= 1 but was " + options.getGamma());
        }
        if (options.getPolicy() != null) {
            SpeculationPolicies.requireKnown(options.getPolicy());
        }
        if (options.getProposer() != null) {
            ProposerKind.parse(options.getProposer(), "proposer");
        }
        try {
            ToolCallingChatOptions.validateToolCallbacks(options.getToolCallbacks());
        }
        catch (IllegalStateException ex) {
            throw new InvalidRequestException("tools", ex.getMessage() + ": give each tool a distinct name");
        }
        ToolPlan.validateChoice(options);
        OutputGrammar.answer(options);
        samplingOf(options);
    }

    /**
     * The tools of the request and how its output is read; {@link #serviceRequest} builds
     * the grammar that forces a call ({@link ToolPlan#callRequired()}) from it.
     */
    private ToolPlan toolPlan(Prompt prompt) {
        return ToolPlan.of((SpeculaChatOptions) prompt.getOptions(), service.models().get().target().chatTemplate());
    }

    /**
     * The prompt as the model reads it: the messages and the offered tools rendered with
     * the target's chat template (generation prompt added). For tests and diagnostics.
     */
    String renderedPrompt(Prompt prompt) {
        Prompt requestPrompt = buildRequestPrompt(prompt);
        ModelPair pair = service.models().get();
        List<ChatMessage> turns = ChatMessages.of(requestPrompt.getInstructions());
        ToolPlan.checkHistory(turns, pair.target().chatTemplate());
        return new PromptEncoder(pair.target().tokenizer(), pair.target().chatTemplate(), modelName).render(turns,
                toolPlan(requestPrompt).offered());
    }

    /**
     * The generation request: the messages and the offered tools rendered and tokenized,
     * the sampling and speculation options, and the grammar of the output (a required
     * call, a schema, JSON; {@link OutputGrammar}).
     */
    private ServiceRequest serviceRequest(Prompt prompt, ToolPlan tools,
            dev.specula.engine.TokenStreamListener listener, CancellationToken cancellation) {
        SpeculaChatOptions options = (SpeculaChatOptions) prompt.getOptions();
        ModelPair pair = service.models().get();
        PromptEncoder encoder = new PromptEncoder(pair.target().tokenizer(), pair.target().chatTemplate(), modelName);
        List<ChatMessage> turns = ChatMessages.of(prompt.getInstructions());
        ToolPlan.checkHistory(turns, pair.target().chatTemplate());
        int limit = promptTokenLimit(pair);
        checkTokensBeforeTokenizing(templatedCharacters(prompt.getInstructions()), limit,
                pair.target().tokenizer().maxCharactersPerToken());
        return serviceRequest(encoder.chat(turns, tools.offered()), options, tools, listener, cancellation);
    }

    /**
     * Most tokens a prompt may have: maxPromptTokens, else the target's context length.
     */
    private int promptTokenLimit(ModelPair pair) {
        return maxPromptTokens > 0 ? maxPromptTokens : pair.target().contextLength();
    }

    /**
     * The generation request over {@code promptIds} as they are: the sampling and
     * speculation options, and the grammar of the output.
     * @throws PromptTokenLimitException when the prompt is over its limit
     */
    private ServiceRequest serviceRequest(int[] promptIds, SpeculaChatOptions options, ToolPlan tools,
            dev.specula.engine.TokenStreamListener listener, CancellationToken cancellation) {
        ModelPair pair = service.models().get();
        int limit = promptTokenLimit(pair);
        if (promptIds.length > limit) {
            throw new PromptTokenLimitException(promptIds.length, true, limit, maxPromptTokens == 0);
        }
        if (Boolean.TRUE.equals(options.getProvenance()) && tools.readsCalls()) {
            throw new InvalidRequestException("provenance", UNSUPPORTED_VALUE,
                    "provenance tells how each piece of the output's text was made, and an answer whose tool calls "
                            + "are read from its output holds back or drops part of that text: leave provenance out, "
                            + "or the tools (or set toolChoice to none)");
        }
        int maxTokens = options.getMaxTokens() != null ? options.getMaxTokens() : DEFAULT_MAX_TOKENS;
        boolean speculation = options.getSpeculation() == null || options.getSpeculation();
        int[] prediction = options.getPrediction() == null ? null
                : pair.target().tokenizer().encode(options.getPrediction(), false);
        return new ServiceRequest(promptIds, samplingOf(options), maxTokens, options.getStopSequences(),
                options.getPolicy(), options.getGamma(), speculation, listener, cancellation,
                options.getProposer() == null ? null : ProposerKind.parse(options.getProposer(), "proposer"),
                prediction, penaltiesOf(options), logprobsOf(options), OutputGrammar.of(options, tools),
                options.getPromptLogprobs() == null ? -1 : options.getPromptLogprobs());
    }

    private static TokenPenalties penaltiesOf(SpeculaChatOptions options) {
        return new TokenPenalties(orDefault(options.getFrequencyPenalty(), 0),
                orDefault(options.getPresencePenalty(), 0), orDefault(options.getRepetitionPenalty(), 1),
                options.getLogitBias());
    }

    private static double orDefault(Double value, double unset) {
        return value == null ? unset : value;
    }

    /** How many top tokens to report; -1: no log-probabilities. */
    private static int logprobsOf(SpeculaChatOptions options) {
        if (!Boolean.TRUE.equals(options.getLogprobs())) {
            return -1;
        }
        return options.getTopLogprobs() == null ? 0 : options.getTopLogprobs();
    }

    private static SamplingParams samplingOf(SpeculaChatOptions options) {
        double temperature = options.getTemperature() != null ? options.getTemperature() : 0;
        int topK = options.getTopK() != null ? options.getTopK() : 0;
        double topP = options.getTopP() != null ? options.getTopP() : 1;
        return new SamplingParams(temperature, topK, topP, options.getSeed());
    }

    /**
     * The whole answer: its text, the calls kept from {@code output}, and its
     * {@code tokens} when the request asked for provenance (else null).
     */
    private ChatResponse completeResponse(String id, ServiceResult result, ParsedOutput output, ToolPlan tools,
            List<OutputToken> tokens) {
        GenerationResult generation = result.generation();
        List<AssistantMessage.ToolCall> calls = tools.keptCalls(output);
        AssistantMessage message = AssistantMessage.builder().content(output.content()).toolCalls(calls).build();
        ChatGenerationMetadata metadata = generationMetadata(generation, calls, tokens,
                chatLogprobs(generation.logprobs()), chatLogprobs(generation.promptLogprobs()));
        return new ChatResponse(List.of(new Generation(message, metadata)), responseMetadata(id, result));
    }

    /**
     * A piece of text, with its tokens when the request asked for provenance, and the
     * log-probabilities it carries (none when null).
     */
    private ChatResponse textChunk(String id, String text, List<OutputToken> tokens,
            @Nullable List<ChatLogprob> logprobs, @Nullable List<ChatLogprob> promptLogprobs) {
        ChatGenerationMetadata.Builder metadata = ChatGenerationMetadata.builder();
        if (!tokens.isEmpty()) {
            metadata.metadata(METADATA_TOKENS, tokens);
        }
        if (logprobs != null) {
            metadata.metadata(ChatLogprob.METADATA_KEY, logprobs);
        }
        if (promptLogprobs != null) {
            metadata.metadata(ChatLogprob.PROMPT_METADATA_KEY, promptLogprobs);
        }
        Generation generation = tokens.isEmpty() && logprobs == null && promptLogprobs == null
                ? new Generation(new AssistantMessage(text))
                : new Generation(new AssistantMessage(text), metadata.build());
        return new ChatResponse(List.of(generation), ChatResponseMetadata.builder().id(id).model(modelName).build());
    }

    /**
     * The finish reason ({@code tool_calls} when the model called tools), the output's
     * and the prompt's log-probabilities given (none when null), and the {@code tokens}
     * when not empty.
     */
    private ChatGenerationMetadata generationMetadata(GenerationResult generation,
            List<AssistantMessage.ToolCall> calls, List<OutputToken> tokens, @Nullable List<ChatLogprob> logprobs,
            @Nullable List<ChatLogprob> promptLogprobs) {
        ChatGenerationMetadata.Builder metadata = ChatGenerationMetadata.builder()
            .finishReason(calls.isEmpty() ? finishReason(generation.finishReason()) : FINISH_REASON_TOOL_CALLS);
        if (logprobs != null) {
            metadata.metadata(ChatLogprob.METADATA_KEY, logprobs);
        }
        if (promptLogprobs != null) {
            metadata.metadata(ChatLogprob.PROMPT_METADATA_KEY, promptLogprobs);
        }
        if (!tokens.isEmpty()) {
            metadata.metadata(METADATA_TOKENS, tokens);
        }
        return metadata.build();
    }

    /** {@code logprobs} as OpenAI reports them; null when empty. */
    private @Nullable List<ChatLogprob> chatLogprobs(List<TokenLogprob> logprobs) {
        return logprobs.isEmpty() ? null : ChatLogprob.of(logprobs, service.models().get().target().tokenizer());
    }

    /**
     * OpenAI's vocabulary: "stop" (end of sequence or a stop string), "length", and
     * "cancelled".
     */
    static String finishReason(FinishReason reason) {
        return switch (reason) {
            case EOS, STOP -> "stop";
            case LENGTH -> "length";
            case CANCELLED -> "cancelled";
        };
    }

    private ChatResponseMetadata responseMetadata(String id, ServiceResult result) {
        GenerationResult generation = result.generation();
        GenerationStats stats = generation.stats();
        ChatResponseMetadata.Builder metadata = ChatResponseMetadata.builder()
            .id(id)
            .model(modelName)
            .usage(new DefaultUsage(generation.promptTokens(), generation.tokenIds().length))
            .keyValue(METADATA_REQUESTED_POLICY, result.requestedPolicy())
            .keyValue(METADATA_POLICY, result.policy())
            .keyValue(METADATA_DRAFTED, stats.drafted())
            .keyValue(METADATA_ACCEPTED, stats.accepted())
            .keyValue(METADATA_MEAN_ACCEPTED_LENGTH, stats.meanAcceptedLength())
            .keyValue(METADATA_TARGET_CALLS, stats.targetCalls())
            .keyValue(METADATA_FALLBACK, result.fellBack())
            .keyValue(METADATA_CACHED, result.cached());
        result.fallback().ifPresent((reason) -> metadata.keyValue(METADATA_FALLBACK_REASON, reason.tag()));
        if (generation.proposer() != null) {
            metadata.keyValue(METADATA_PROPOSER, generation.proposer());
        }
        if (ProposerKind.PREDICTION.id().equals(generation.proposer())) {
            metadata.keyValue(METADATA_ACCEPTED_PREDICTION_TOKENS, stats.accepted());
            metadata.keyValue(METADATA_REJECTED_PREDICTION_TOKENS, stats.drafted() - stats.accepted());
        }
        result.reason().ifPresent((reason) -> metadata.keyValue(METADATA_POLICY_REASON, reason.tag()));
        return metadata.build();
    }

    /**
     * Sends each piece of accepted text down a stream as a chunk (through
     * {@link StreamedText}); with provenance, with the tokens it is made of, a chunk also
     * for tokens without text.
     *
     * <p>
     * Log-probabilities, when asked for: a chunk carries those of the tokens whose text
     * first shows in it (the engine sends each token's with the first piece of its text,
     * {@link OutputToken#logprob()}); a token that shows no text of its own (the end of
     * sequence; a byte of a character the next token completes; text a tool-call filter
     * holds back) goes with the next chunk, or the last. So the chunks' lists,
     * concatenated, are the whole answer's. The prompt's come with the first chunk (the
     * last, when it is the only one).
     */
    private final class Chunks implements TokenStreamListener {

        private final String id;

        private final FluxSink<ChatResponse> sink;

        private final StreamedText streamed;

        private final boolean provenance;

        private final boolean logprobs;

        /** Log-probabilities heard that no chunk carried yet; guarded by this. */
        private final List<TokenLogprob> unsent = new ArrayList<>();

        /** Tokens whose log-probability was heard; guarded by this. */
        private int heard;

        /** The prompt's log-probabilities, heard and not sent yet; guarded by this. */
        private @Nullable List<TokenLogprob> promptLogprobs;

        /** Whether a chunk was sent; guarded by this. */
        private boolean begun;

        Chunks(String id, FluxSink<ChatResponse> sink, StreamedText streamed, SpeculaChatOptions options) {
            this.id = id;
            this.sink = sink;
            this.streamed = streamed;
            this.provenance = Boolean.TRUE.equals(options.getProvenance());
            this.logprobs = Boolean.TRUE.equals(options.getLogprobs());
        }

        @Override
        public void onText(String text) {
            String shown = streamed.accept(text);
            if (!shown.isEmpty()) {
                sink.next(chunk(shown, List.of()));
            }
        }

        /** Tokens when provenance or log-probabilities are asked for. */
        @Override
        public boolean wantsTokens() {
            return provenance || logprobs;
        }

        /** No tool filter runs with provenance: what is shown is {@code text}. */
        @Override
        public void onTokens(String text, List<OutputToken> tokens) {
            synchronized (this) {
                for (OutputToken token : tokens) {
                    if (token.logprob() != null) {
                        unsent.add(token.logprob());
                        heard++;
                    }
                }
            }
            String shown = streamed.accept(text);
            if (provenance || !shown.isEmpty()) {
                sink.next(chunk(shown, provenance ? tokens : List.of()));
            }
        }

        @Override
        public synchronized void onPromptLogprobs(List<TokenLogprob> logprobs) {
            promptLogprobs = logprobs;
        }

        /**
         * A chunk of {@code text} (and {@code tokens}) with the log-probabilities not
         * sent yet.
         */
        synchronized ChatResponse chunk(String text, List<OutputToken> tokens) {
            List<ChatLogprob> own = unsent.isEmpty() ? null : chatLogprobs(unsent);
            unsent.clear();
            ChatResponse chunk = textChunk(id, text, tokens, own, takePromptLogprobs());
            begun = true;
            return chunk;
        }

        /**
         * The last chunk: no text; the calls, finish reason, usage and figures, and the
         * log-probabilities no chunk carried (a cancelled output's tokens that never
         * showed included).
         */
        synchronized ChatResponse last(ServiceResult result, ParsedOutput rest, ToolPlan tools) {
            GenerationResult generation = result.generation();
            List<TokenLogprob> left = new ArrayList<>(unsent);
            if (heard < generation.logprobs().size()) {
                left.addAll(generation.logprobs().subList(heard, generation.logprobs().size()));
            }
            unsent.clear();
            if (!begun && promptLogprobs == null && !generation.promptLogprobs().isEmpty()) {
                promptLogprobs = generation.promptLogprobs();
            }
            List<AssistantMessage.ToolCall> calls = tools.keptCalls(rest);
            AssistantMessage message = AssistantMessage.builder().content("").toolCalls(calls).build();
            ChatGenerationMetadata metadata = generationMetadata(generation, calls, List.of(), chatLogprobs(left),
                    takePromptLogprobs());
            begun = true;
            return new ChatResponse(List.of(new Generation(message, metadata)), responseMetadata(id, result));
        }

        private @Nullable List<ChatLogprob> takePromptLogprobs() {
            if (promptLogprobs == null) {
                return null;
            }
            List<ChatLogprob> prompt = ChatLogprob.of(promptLogprobs, service.models().get().target().tokenizer());
            promptLogprobs = null;
            return prompt;
        }

    }

    /**
     * The text a stream showed: through the plan's filter when the output is read for
     * calls (call markup held back), as it comes otherwise.
     */
    private static final class StreamedText {

        private final ToolCallStreamFilter filter;

        private final StringBuilder shown = new StringBuilder();

        StreamedText(ToolCallStreamFilter filter) {
            this.filter = filter;
        }

        synchronized String accept(String text) {
            String visible = filter == null ? text : filter.accept(text);
            shown.append(visible);
            return visible;
        }

        /**
         * The end of the output: the text not shown yet and the calls (no text nor calls
         * without a filter).
         */
        synchronized ParsedOutput finish() {
            return filter == null ? new ParsedOutput("", List.of()) : filter.finish();
        }

        /** All the text of the answer: what was shown and {@code rest}. */
        synchronized String shown(ParsedOutput rest) {
            return shown + rest.content();
        }

    }

    /**
     * Builds the model; defaults: greedy, 256 max tokens, the service's default policy,
     * prompts up to {@link #DEFAULT_MAX_PROMPT_CHARACTERS} characters, no observations.
     */
    public static final class Builder {

        private GenerationService service;

        private SpeculaChatOptions defaultOptions = SpeculaChatOptions.builder().build();

        private String modelName = "specula";

        private int maxPromptCharacters = DEFAULT_MAX_PROMPT_CHARACTERS;

        private int maxPromptTokens;

        private ChatModelObservationConvention observationConvention;

        private ObservationRegistry observationRegistry = ObservationRegistry.NOOP;

        private Scheduler streamScheduler = Schedulers.boundedElastic();

        private Builder() {
        }

        public Builder service(GenerationService service) {
            this.service = service;
            return this;
        }

        public Builder defaultOptions(SpeculaChatOptions defaultOptions) {
            this.defaultOptions = defaultOptions;
            return this;
        }

        /** Name of the served model: requests naming another model are rejected. */
        public Builder modelName(String modelName) {
            this.modelName = modelName;
            return this;
        }

        /**
         * Longest prompt, in characters of message text, checked before the chat template
         * and the tokenizer run; longer ones are refused with an
         * {@link InvalidRequestException} on {@code messages}. Default
         * {@link #DEFAULT_MAX_PROMPT_CHARACTERS}.
         */
        public Builder maxPromptCharacters(int maxPromptCharacters) {
            this.maxPromptCharacters = maxPromptCharacters;
            return this;
        }

        /**
         * Most tokens a prompt (the messages and tools rendered by the chat template) may
         * have; more are refused with a {@link PromptTokenLimitException} on
         * {@code messages}, before the tokenizer runs when the characters alone prove it
         * (see {@link dev.specula.tokenizer.TextTokenizer#maxCharactersPerToken()}).
         * Default 0: the target's context length.
         */
        public Builder maxPromptTokens(int maxPromptTokens) {
            this.maxPromptTokens = maxPromptTokens;
            return this;
        }

        public Builder observationRegistry(ObservationRegistry observationRegistry) {
            this.observationRegistry = observationRegistry;
            return this;
        }

        /** Where streamed generations run (each holds a thread while it decodes). */
        public Builder streamScheduler(Scheduler streamScheduler) {
            this.streamScheduler = streamScheduler;
            return this;
        }

        public SpeculaChatModel build() {
            return new SpeculaChatModel(this);
        }

    }

}
