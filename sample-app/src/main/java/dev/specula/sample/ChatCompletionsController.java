package dev.specula.sample;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.UUID;

import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.http.CacheControl;
import org.springframework.http.HttpHeaders;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.request.async.DeferredResult;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

import dev.specula.chat.SpeculaChatModel;
import dev.specula.engine.CancellationToken;

/**
 * OpenAI's chat completions API over a Spring AI {@link ChatModel} (Specula's,
 * auto-configured): {@code POST /v1/chat/completions}, answered at once or streamed
 * ({@code "stream": true}), and {@code GET /v1/models}. Requests are checked before they
 * reach the model ({@link ChatCompletionRequest}); failures become OpenAI's error bodies
 * ({@link OpenAiErrors}). A generation reserves its caller's tokens per minute
 * ({@link RateLimits}) and stops when its client goes: a stream when a write fails
 * ({@link CompletionStream}), a non-streamed call when its connection closes
 * ({@link NonStreamedCalls}).
 */
@RestController
@RequestMapping("/v1")
public class ChatCompletionsController {

    /**
     * Longest an answer, streamed or not, may take; the generation is cancelled after it.
     */
    static final Duration STREAM_TIMEOUT = Duration.ofMinutes(10);

    /** Default of max_tokens when neither the request nor the model has one. */
    private static final int DEFAULT_MAX_TOKENS = 256;

    private static final String OWNER = "specula";

    /** The model answering; Specula's with the gateway's prompt-token limit. */
    private final ChatModel chatModel;

    private final ObjectMapper json;

    private final JsonRequestReader bodies;

    private final String modelName;

    private final RateLimits rateLimits;

    private final NonStreamedCalls calls;

    private final long startedAt = Instant.now().getEpochSecond();

    /** The overflow remote, or null when {@code specula.overflow.enabled} is false. */
    private final ChatOverflow overflow;

    public ChatCompletionsController(ChatModel chatModel, ObjectMapper json, GatewayProperties properties,
            RateLimits rateLimits, NonStreamedCalls calls, ObjectProvider<ChatOverflow> overflow) {
        this.chatModel = chatModel instanceof SpeculaChatModel specula && properties.getMaxPromptTokens() > 0
                ? specula.mutate().maxPromptTokens(properties.getMaxPromptTokens()).build() : chatModel;
        this.overflow = overflow.getIfAvailable();
        this.json = json;
        this.bodies = new JsonRequestReader(json, properties, "messages");
        this.modelName = servedModelName(chatModel);
        this.rateLimits = rateLimits;
        this.calls = calls;
    }

    @GetMapping("/models")
    OpenAiJson.ModelList models() {
        return new OpenAiJson.ModelList("list", List.of(new OpenAiJson.Model(modelName, "model", startedAt, OWNER)));
    }

    /**
     * Reads the body itself (any content type), at most
     * {@code specula.gateway.max-request-bytes} of it, so that an oversized body is
     * refused before it is parsed and malformed JSON is reported in OpenAI's error shape.
     * Answers a {@link DeferredResult} (non-streamed) or the event stream.
     */
    @PostMapping("/chat/completions")
    Object chatCompletions(HttpServletRequest http, HttpServletResponse httpResponse) {
        JsonNode body = bodies.read(http);
        String id = "chatcmpl-" + UUID.randomUUID().toString().replace("-", "");
        long created = Instant.now().getEpochSecond();
        String requestId = RequestIds.of(http);
        if (overflow != null && overflow.isNamedIn(body) && !overflow.model().equals(modelName)) {
            overflow.checkPortable(body);
            ChatCompletionRequest remote = ChatCompletionRequest.read(body, overflow.model())
                .withMaxTokensOr(maxTokens(null, chatModel));
            return OverflowResponses.answerRemote(overflow, remote, id, created, requestId, json,
                    charge(remote, reserveTokens(http, remote, httpResponse)));
        }
        ChatCompletionRequest request = ChatCompletionRequest.read(body, modelName);
        // a caller over its own rate limit gets its 429 here: that is not overflow's
        RateLimits.Reservation tokens = reserveTokens(http, request, httpResponse);
        try {
            if (request.stream()) {
                return Backends.local(stream(request, id, created, requestId, tokens));
            }
            return calls.run(http, STREAM_TIMEOUT, (cancellation) -> {
                try {
                    return Backends
                        .local(ResponseEntity.ok(complete(request.prompt(), id, created, cancellation, tokens)));
                }
                catch (RuntimeException ex) {
                    return overflowOr(ex, body, request, id, created, requestId, tokens);
                }
            });
        }
        catch (RuntimeException ex) {
            return overflowOr(ex, body, request, id, created, requestId, tokens);
        }
    }

    /**
     * Reserves the tokens {@code request} may use from its caller's tokens per minute:
     * its max_tokens (else the model's default) and its prompt, estimated.
     */
    private RateLimits.Reservation reserveTokens(HttpServletRequest http, ChatCompletionRequest request,
            HttpServletResponse httpResponse) {
        return rateLimits.reserveTokens(Callers.of(http), maxTokens(request.options().getMaxTokens(), chatModel),
                RateLimits.estimateTokens(request.promptCharacters()), httpResponse);
    }

    /** The reservation of {@code request}, to be settled with the remote's usage. */
    private static OverflowCharge charge(ChatCompletionRequest request, RateLimits.Reservation tokens) {
        return new OverflowCharge(tokens, RateLimits.estimateTokens(request.promptCharacters()));
    }

    /**
     * The overflow remote's answer to a request the local engine refused with {@code ex}
     * when overflow takes it, charged to the request's reservation; else {@code ex}
     * again, the request costing nothing.
     */
    private ResponseEntity<?> overflowOr(RuntimeException ex, JsonNode body, ChatCompletionRequest request, String id,
            long created, String requestId, RateLimits.Reservation tokens) {
        if (overflow == null || !overflow.takes(ex, body)) {
            tokens.settle(0);
            throw ex;
        }
        return OverflowResponses.answerOr(ex, overflow, request.withMaxTokensOr(maxTokens(null, chatModel)), id,
                created, requestId, json, charge(request, tokens));
    }

    /** A request's max_tokens ({@code requested}), else {@code model}'s default. */
    static int maxTokens(Integer requested, ChatModel model) {
        if (requested != null) {
            return requested;
        }
        Integer modelDefault = model.getOptions() != null ? model.getOptions().getMaxTokens() : null;
        return modelDefault != null ? modelDefault : DEFAULT_MAX_TOKENS;
    }

    private OpenAiJson.ChatCompletion complete(Prompt prompt, String id, long created, CancellationToken cancellation,
            RateLimits.Reservation tokens) {
        // a failure leaves the reservation to the caller: the remote may answer instead
        ChatResponse response = chatModel instanceof SpeculaChatModel specula ? specula.call(prompt, cancellation)
                : chatModel.call(prompt);
        OpenAiJson.Usage usage = OpenAiJson.usage(response);
        tokens.settle(usage.totalTokens());
        String finishReason = OpenAiJson.finishReason(response);
        OpenAiJson.Choice choice = new OpenAiJson.Choice(0, OpenAiJson.Message.of(response),
                OpenAiJson.logprobs(response), finishReason != null ? finishReason : "stop");
        return new OpenAiJson.ChatCompletion(id, OpenAiJson.CHAT_COMPLETION, created, modelName, List.of(choice), usage,
                Backends.speculation(OpenAiJson.speculation(response), Backends.LOCAL));
    }

    /**
     * Starts the generation, waits for its first chunk and only then answers 200 with the
     * event stream, so a request that fails before any text still gets its JSON error and
     * status.
     */
    private ResponseEntity<ResponseBodyEmitter> stream(ChatCompletionRequest request, String id, long created,
            String requestId, RateLimits.Reservation tokens) {
        ResponseBodyEmitter emitter = new ResponseBodyEmitter(STREAM_TIMEOUT.toMillis());
        CompletionStream stream = new CompletionStream(emitter, json, id, created, modelName, request.includeUsage(),
                requestId, (usage) -> tokens.settle(usage.totalTokens()));
        chatModel.stream(request.prompt()).subscribe(stream);
        stream.awaitStart(STREAM_TIMEOUT);
        return ResponseEntity.ok()
            .header(HttpHeaders.CONTENT_TYPE, "text/event-stream;charset=UTF-8")
            .cacheControl(CacheControl.noCache())
            .header("X-Accel-Buffering", "no")
            .body(emitter);
    }

    /**
     * The name requests may use: the Specula model's, else the ChatModel's model option.
     */
    static String servedModelName(ChatModel chatModel) {
        if (chatModel instanceof SpeculaChatModel specula) {
            return specula.getModelName();
        }
        String model = chatModel.getOptions() != null ? chatModel.getOptions().getModel() : null;
        return model != null ? model : OWNER;
    }

}
