package dev.specula.sample;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import org.reactivestreams.Subscription;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.http.MediaType;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import reactor.core.publisher.BaseSubscriber;
import tools.jackson.databind.ObjectMapper;

/**
 * Relays a model's {@code Flux<ChatResponse>} to the client as OpenAI's server-sent
 * events:
 *
 * <pre>
 * data: {"object": "chat.completion.chunk", "choices": [{"delta": {"role": "assistant", "content": ""}, ...}], ...}
 * data: {... "choices": [{"delta": {"content": "def"}, "finish_reason": null}]}     one per piece of text
 *                                                 (with speculation.provenance: and "speculation": {"tokens": [...]};
 *                                                 with logprobs: "logprobs": {"content": [its own tokens']})
 * data: {... "choices": [{"delta": {}, "finish_reason": "stop"}], "speculation": {...}}
 * data: {... "choices": [], "usage": {...}}                                          if stream_options.include_usage
 * data: [DONE]
 * </pre>
 *
 * With {@code logprobs}, each chunk carries those of the tokens whose text first shows in
 * it; the last, those left (a token without text, such as the end of sequence): together
 * they are the whole answer's, as OpenAI streams them.
 *
 * <p>
 * The controller waits for the first signal ({@link #awaitStart}) before it answers, so
 * that a request that fails before any text (models loading, busy, prompt too long) gets
 * a proper JSON error with its status. When the client goes away (a write fails, the
 * connection errors or times out) the subscription is cancelled, which stops the
 * generation.
 */
final class CompletionStream extends BaseSubscriber<ChatResponse> {

    private static final Logger logger = LoggerFactory.getLogger(CompletionStream.class);

    private static final MediaType EVENT_STREAM = new MediaType("text", "event-stream", StandardCharsets.UTF_8);

    private static final String DONE = "data: [DONE]\n\n";

    private final ResponseBodyEmitter emitter;

    private final ObjectMapper json;

    private final String id;

    private final long created;

    private final String model;

    private final boolean includeUsage;

    private final String requestId;

    /**
     * The backend that serves the stream, {@link Backends#LOCAL} or
     * {@link Backends#OVERFLOW}.
     */
    private final String backend;

    /** Told the usage when the answer ends (not when it fails or the client goes). */
    private final Consumer<OpenAiJson.Usage> onUsage;

    private final CountDownLatch started = new CountDownLatch(1);

    // Written by the Reactive Streams signals, which never overlap; read by the
    // controller after `started`.
    private volatile Throwable failedBeforeStart;

    private boolean roleSent;

    private boolean finished;

    private volatile boolean clientGone;

    CompletionStream(ResponseBodyEmitter emitter, ObjectMapper json, String id, long created, String model,
            boolean includeUsage, String requestId, Consumer<OpenAiJson.Usage> onUsage) {
        this(emitter, json, id, created, model, includeUsage, requestId, Backends.LOCAL, onUsage);
    }

    CompletionStream(ResponseBodyEmitter emitter, ObjectMapper json, String id, long created, String model,
            boolean includeUsage, String requestId, String backend, Consumer<OpenAiJson.Usage> onUsage) {
        this.backend = backend;
        this.emitter = emitter;
        this.json = json;
        this.id = id;
        this.created = created;
        this.model = model;
        this.includeUsage = includeUsage;
        this.requestId = requestId;
        this.onUsage = onUsage;
        emitter.onTimeout(() -> {
            logger.warn("Chat completion stream {} (request {}) timed out after {} ms: generation cancelled", id,
                    requestId, emitter.getTimeout());
            clientGone();
            emitter.complete();
        });
        emitter.onError((error) -> clientGone());
        emitter.onCompletion(this::clientGone);
    }

    /**
     * Waits until the stream has its first chunk (or ended), at most {@code timeout}.
     * @throws RuntimeException the model's error, when the stream failed before it sent
     * anything
     */
    void awaitStart(Duration timeout) {
        try {
            if (!started.await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                logger.warn("Chat completion stream {} (request {}) sent nothing for {}: answering with an open stream",
                        id, requestId, timeout);
            }
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            cancel();
            throw new IllegalStateException("Interrupted while waiting for the first chunk", ex);
        }
        Throwable failure = failedBeforeStart;
        if (failure instanceof RuntimeException runtime) {
            throw runtime;
        }
        if (failure instanceof Error error) {
            throw error;
        }
        if (failure != null) {
            throw new IllegalStateException(failure.getMessage(), failure);
        }
    }

    @Override
    protected void hookOnSubscribe(Subscription subscription) {
        subscription.request(Long.MAX_VALUE);
    }

    @Override
    protected void hookOnNext(ChatResponse response) {
        if (!roleSent) {
            roleSent = true;
            send(delta(new OpenAiJson.Delta(OpenAiJson.ASSISTANT, "")));
            started.countDown();
        }
        String text = OpenAiJson.text(response);
        // with provenance a chunk carries its tokens (and may have none but the end of
        // sequence, without text)
        List<Map<String, Object>> tokens = OpenAiJson.tokens(response);
        String finishReason = OpenAiJson.finishReason(response);
        // the tokens' log-probabilities of a last response go with the finish reason
        Map<String, Object> logprobs = finishReason == null ? OpenAiJson.logprobs(response) : null;
        if (tokens != null) {
            send(delta(new OpenAiJson.Delta(null, text), logprobs, Map.of("tokens", tokens)));
        }
        else if (!text.isEmpty() || logprobs != null) {
            send(delta(new OpenAiJson.Delta(null, text), logprobs, null));
        }
        // tool calls come whole, in the last response
        List<Map<String, Object>> toolCalls = OpenAiJson.toolCalls(response, true);
        if (toolCalls != null) {
            send(delta(new OpenAiJson.Delta(null, null, toolCalls)));
        }
        if (finishReason != null && !finished) {
            finish(finishReason, response);
        }
    }

    @Override
    protected void hookOnComplete() {
        if (!roleSent) {
            roleSent = true;
            send(delta(new OpenAiJson.Delta(OpenAiJson.ASSISTANT, "")));
        }
        if (!finished) {
            finish("stop", null);
        }
        send(DONE);
        end();
        started.countDown();
    }

    @Override
    protected void hookOnError(Throwable error) {
        if (!roleSent) {
            failedBeforeStart = error;
            started.countDown();
            return;
        }
        OpenAiJson.ErrorResponse body = OpenAiErrors.toResponse(error, requestId).getBody();
        send("data: " + json.writeValueAsString(body) + "\n\n");
        end();
    }

    private void finish(String finishReason, ChatResponse last) {
        finished = true;
        // the log-probabilities no chunk carried yet come with the last
        OpenAiJson.ChunkChoice choice = new OpenAiJson.ChunkChoice(0, OpenAiJson.Delta.EMPTY,
                last == null ? null : OpenAiJson.logprobs(last), finishReason);
        send(event(new OpenAiJson.ChatCompletionChunk(id, OpenAiJson.CHAT_COMPLETION_CHUNK, created, model,
                List.of(choice), null,
                Backends.speculation(last == null ? null : OpenAiJson.speculation(last), backend))));
        OpenAiJson.Usage usage = last == null ? new OpenAiJson.Usage(0, 0, 0, null) : OpenAiJson.usage(last);
        onUsage.accept(usage);
        if (includeUsage) {
            send(event(new OpenAiJson.ChatCompletionChunk(id, OpenAiJson.CHAT_COMPLETION_CHUNK, created, model,
                    List.of(), usage, null)));
        }
    }

    private String delta(OpenAiJson.Delta delta) {
        return delta(delta, null, null);
    }

    /**
     * A chunk of {@code delta}, with its tokens' {@code logprobs} and a
     * {@code speculation} object when not null.
     */
    private String delta(OpenAiJson.Delta delta, Map<String, Object> logprobs, Map<String, Object> speculation) {
        OpenAiJson.ChunkChoice choice = new OpenAiJson.ChunkChoice(0, delta, logprobs, null);
        return event(new OpenAiJson.ChatCompletionChunk(id, OpenAiJson.CHAT_COMPLETION_CHUNK, created, model,
                List.of(choice), null, speculation));
    }

    private String event(OpenAiJson.ChatCompletionChunk chunk) {
        return "data: " + json.writeValueAsString(chunk) + "\n\n";
    }

    private void send(String event) {
        if (clientGone) {
            return;
        }
        try {
            emitter.send(event.getBytes(StandardCharsets.UTF_8), EVENT_STREAM);
        }
        catch (IOException | IllegalStateException ex) {
            logger.debug("Chat completion stream {}: client gone ({}), generation cancelled", id, ex.toString());
            clientGone();
        }
    }

    /**
     * Ends the response, unless the client is gone already (then the container ends it).
     */
    private void end() {
        if (!clientGone) {
            emitter.complete();
        }
    }

    /** Stops the generation: the client will read no more. */
    private void clientGone() {
        clientGone = true;
        cancel();
    }

}
