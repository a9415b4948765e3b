package dev.specula.sample;

import java.time.Instant;
import java.util.List;
import java.util.UUID;

import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.http.CacheControl;
import org.springframework.http.HttpHeaders;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

import dev.specula.chat.PromptTokenLimitException;
import dev.specula.chat.SpeculaChatModel;
import dev.specula.engine.CancellationToken;
import dev.specula.engine.ContextLengthExceededException;
import dev.specula.request.InvalidRequestException;

/**
 * OpenAI's legacy completions API, what code completers call: {@code POST
 * /v1/completions} continues a raw prompt (text or token ids, optionally with a
 * {@code suffix} to fill in the middle), answered at once or streamed. The prompt reaches
 * the model as it is, through {@link SpeculaChatModel#callTokens} and
 * {@link SpeculaChatModel#streamTokens}, never through the chat template. Requests are
 * checked before they reach the model ({@link CompletionRequest},
 * {@link CompletionPrompt}); failures become OpenAI's error bodies
 * ({@link OpenAiErrors}). As for chat completions, a prompt over
 * {@code specula.gateway.max-prompt-tokens} is refused (before tokenizing when its
 * characters prove it), a generation reserves its caller's tokens per minute
 * ({@link RateLimits}: {@code max_tokens} + the prompt's tokens, reconciled with the
 * usage) and stops when its client goes ({@link NonStreamedCalls} when not streamed).
 * With {@code specula.overflow.enabled}, a request the local engine cannot take goes to
 * the overflow remote as chat requests do ({@link CompletionOverflow},
 * {@link OverflowCompletionResponses}), and the answer says which backend served it
 * ({@link Backends}).
 */
@RestController
@RequestMapping("/v1")
public class CompletionsController {

    private final ObjectProvider<SpeculaChatModel> models;

    private final ObjectMapper json;

    private final JsonRequestReader bodies;

    /** {@code specula.gateway.max-prompt-tokens}; 0: the model's context length. */
    private final int maxPromptTokens;

    private final RateLimits rateLimits;

    private final NonStreamedCalls calls;

    /** Specula's model with the gateway's prompt-token limit, made on first use. */
    private volatile SpeculaChatModel limited;

    /** The overflow remote, or null when {@code specula.overflow.enabled} is false. */
    private final CompletionOverflow overflow;

    /** The remote's answers in this API's shapes; null without overflow. */
    private final OverflowCompletionResponses overflowResponses;

    public CompletionsController(ObjectProvider<SpeculaChatModel> models, ObjectMapper json,
            GatewayProperties properties, RateLimits rateLimits, NonStreamedCalls calls,
            ObjectProvider<CompletionOverflow> overflow) {
        this.overflow = overflow.getIfAvailable();
        this.overflowResponses = this.overflow == null ? null : new OverflowCompletionResponses(this.overflow, json);
        this.models = models;
        this.json = json;
        this.bodies = new JsonRequestReader(json, properties, "prompt");
        this.maxPromptTokens = properties.getMaxPromptTokens();
        this.rateLimits = rateLimits;
        this.calls = calls;
    }

    /**
     * Answers a {@link org.springframework.web.context.request.async.DeferredResult}
     * (non-streamed) or the event stream; the overflow remote's answer instead when the
     * request names the remote model, or the local engine refused it and overflow takes
     * it ({@link CompletionOverflow}).
     */
    @PostMapping("/completions")
    Object completions(HttpServletRequest http, HttpServletResponse httpResponse) {
        SpeculaChatModel model = model();
        if (model == null) {
            throw new InvalidRequestException(null, "unsupported_endpoint",
                    "POST /v1/completions needs Specula's own ChatModel (a raw prompt skips the chat template), and "
                            + "this gateway serves another ChatModel: send messages to POST /v1/chat/completions");
        }
        JsonNode body = bodies.read(http);
        String id = "cmpl-" + UUID.randomUUID().toString().replace("-", "");
        long created = Instant.now().getEpochSecond();
        String requestId = RequestIds.of(http);
        if (overflow != null && overflow.isNamedIn(body) && !overflow.model().equals(model.getModelName())) {
            return remote(body, model, id, created, http, httpResponse);
        }
        CompletionRequest request = CompletionRequest.read(body, model.getModelName());
        int maxTokens = ChatCompletionsController.maxTokens(request.options().getMaxTokens(), model);
        CompletionPrompt prompt;
        try {
            if (request.promptText() != null) {
                model.checkPromptCharacters(request.promptText().length());
            }
            prompt = CompletionPrompt.of(request, model.getService().models().get().target().tokenizer(),
                    model.getModelName());
        }
        catch (RuntimeException refused) {
            // the models are not ready, or the prompt is too long for them: nothing is
            // reserved yet
            if (overflow == null || !overflow.takes(refused, body)) {
                throw localRefusal(refused);
            }
            long promptTokens = estimatePromptTokens(request);
            RateLimits.Reservation tokens = rateLimits.reserveTokens(Callers.of(http), maxTokens, promptTokens,
                    httpResponse);
            return overflowResponses.answerOr(localRefusal(refused), request, maxTokens, id, created, requestId,
                    new OverflowCharge(tokens, promptTokens));
        }
        RateLimits.Reservation tokens = rateLimits.reserveTokens(Callers.of(http), maxTokens, prompt.ids().length,
                httpResponse);
        try {
            if (request.stream()) {
                return Backends.local(stream(model, request, prompt, id, created, requestId, tokens));
            }
            return calls.run(http, ChatCompletionsController.STREAM_TIMEOUT, (cancellation) -> {
                try {
                    return Backends
                        .local(ResponseEntity.ok(complete(model, request, prompt, id, created, cancellation, tokens)));
                }
                catch (RuntimeException ex) {
                    return overflowOr(ex, body, request, maxTokens, id, created, requestId, tokens,
                            prompt.ids().length);
                }
            });
        }
        catch (RuntimeException ex) {
            return overflowOr(ex, body, request, maxTokens, id, created, requestId, tokens, prompt.ids().length);
        }
    }

    /**
     * The overflow remote's answer to a request naming the remote model, its tokens
     * reserved as a local request's (the local default max_tokens when it has none).
     */
    private ResponseEntity<?> remote(JsonNode body, SpeculaChatModel model, String id, long created,
            HttpServletRequest http, HttpServletResponse httpResponse) {
        overflow.checkPortable(body);
        CompletionRequest request = CompletionRequest.read(body, overflow.model());
        int maxTokens = ChatCompletionsController.maxTokens(request.options().getMaxTokens(), model);
        long promptTokens = estimatePromptTokens(request);
        RateLimits.Reservation tokens = rateLimits.reserveTokens(Callers.of(http), maxTokens, promptTokens,
                httpResponse);
        return overflowResponses.answerRemote(request, maxTokens, id, created, RequestIds.of(http),
                new OverflowCharge(tokens, promptTokens));
    }

    /**
     * The overflow remote's answer to a request the local engine refused with {@code ex}
     * after its tokens were reserved, when overflow takes it: charged to that
     * reservation. Else the local refusal, the request costing nothing.
     */
    private ResponseEntity<?> overflowOr(RuntimeException ex, JsonNode body, CompletionRequest request, int maxTokens,
            String id, long created, String requestId, RateLimits.Reservation tokens, long promptTokens) {
        if (overflow == null || !overflow.takes(ex, body)) {
            tokens.settle(0);
            throw localRefusal(ex);
        }
        return overflowResponses.answerOr(localRefusal(ex), request, maxTokens, id, created, requestId,
                new OverflowCharge(tokens, promptTokens));
    }

    /**
     * A request's prompt tokens before it is tokenized: its token ids, its text (and
     * suffix) estimated ({@link RateLimits#estimateTokens}).
     */
    static long estimatePromptTokens(CompletionRequest request) {
        long suffix = request.suffix() == null ? 0 : RateLimits.estimateTokens(request.suffix().length());
        return suffix + (request.promptIds() != null ? request.promptIds().length
                : RateLimits.estimateTokens(request.promptText().length()));
    }

    /**
     * What the client is answered for the local engine's refusal {@code ex}: a prompt
     * over the context or the prompt-token limit in this API's words, else {@code ex}.
     */
    private static RuntimeException localRefusal(RuntimeException ex) {
        if (ex instanceof ContextLengthExceededException tooLong) {
            return promptTooLong(tooLong);
        }
        if (ex instanceof PromptTokenLimitException tooMany) {
            return promptTooLong(tooMany);
        }
        return ex;
    }

    /**
     * Specula's model, with {@code specula.gateway.max-prompt-tokens} when set; null when
     * the gateway serves another ChatModel.
     */
    private SpeculaChatModel model() {
        SpeculaChatModel model = limited;
        if (model == null) {
            SpeculaChatModel specula = models.getIfAvailable();
            if (specula == null) {
                return null;
            }
            model = maxPromptTokens > 0 ? specula.mutate().maxPromptTokens(maxPromptTokens).build() : specula;
            limited = model;
        }
        return model;
    }

    private TextCompletionJson.TextCompletion complete(SpeculaChatModel model, CompletionRequest request,
            CompletionPrompt prompt, String id, long created, CancellationToken cancellation,
            RateLimits.Reservation tokens) {
        // a failure leaves the reservation to the caller: the remote may answer instead
        ChatResponse response = model.callTokens(prompt.ids(), request.options(), cancellation);
        tokens.settle(OpenAiJson.usage(response).totalTokens());
        String finishReason = OpenAiJson.finishReason(response);
        String text = OpenAiJson.text(response);
        TextCompletionJson.Choice choice = new TextCompletionJson.Choice(
                prompt.echo() == null ? text : prompt.echo() + text, 0,
                request.logprobs() == null ? null : CompletionLogprobs.of(response, prompt.firstToken()),
                finishReason != null ? finishReason : "stop");
        return new TextCompletionJson.TextCompletion(id, TextCompletionJson.TEXT_COMPLETION, created,
                model.getModelName(), List.of(choice), OpenAiJson.usage(response),
                Backends.speculation(OpenAiJson.speculation(response), Backends.LOCAL));
    }

    /**
     * Starts the generation, waits for its first event and only then answers 200 with the
     * event stream, so a request that fails before any text still gets its JSON error and
     * status.
     */
    private ResponseEntity<ResponseBodyEmitter> stream(SpeculaChatModel model, CompletionRequest request,
            CompletionPrompt prompt, String id, long created, String requestId, RateLimits.Reservation tokens) {
        ResponseBodyEmitter emitter = new ResponseBodyEmitter(ChatCompletionsController.STREAM_TIMEOUT.toMillis());
        TextCompletionStream stream = new TextCompletionStream(emitter, json, id, created, model.getModelName(),
                prompt.echo(), prompt.firstToken(), request.includeUsage(), requestId,
                (usage) -> tokens.settle(usage.totalTokens()));
        model.streamTokens(prompt.ids(), request.options()).subscribe(stream);
        stream.awaitStart(ChatCompletionsController.STREAM_TIMEOUT);
        return ResponseEntity.ok()
            .header(HttpHeaders.CONTENT_TYPE, "text/event-stream;charset=UTF-8")
            .cacheControl(CacheControl.noCache())
            .header("X-Accel-Buffering", "no")
            .body(emitter);
    }

    /**
     * The prompt-token limit's error in this API's words: its prompt is {@code prompt},
     * not {@code messages}.
     */
    private static InvalidRequestException promptTooLong(PromptTokenLimitException tooMany) {
        return new InvalidRequestException("prompt", ContextLengthExceededException.CODE,
                OpenAiErrors.promptTooLong(tooMany, "prompt"), tooMany);
    }

    /**
     * The context-length error in this API's words: its prompt is {@code prompt}, not
     * {@code messages}.
     */
    private static InvalidRequestException promptTooLong(ContextLengthExceededException tooLong) {
        int requested = tooLong.getPromptTokens() + tooLong.getMaxNewTokens();
        return new InvalidRequestException("prompt", ContextLengthExceededException.CODE,
                "This model's maximum context length is " + tooLong.getContextLength() + " tokens, however you "
                        + "requested " + requested + " tokens (" + tooLong.getPromptTokens() + " in your prompt; "
                        + tooLong.getMaxNewTokens() + " for the completion). Please reduce your prompt, or set "
                        + "max_tokens to at most " + Math.max(0, tooLong.getContextLength() - tooLong.getPromptTokens())
                        + ".",
                tooLong);
    }

}
