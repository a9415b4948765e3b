package dev.specula.sample;

import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
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
final class CompletionStream extends EventStreamRelay<ChatResponse> {

    private final long created;

    private final String model;

    private final boolean includeUsage;

    /**
     * The backend that serves the stream, {@link Backends#LOCAL} or
     * {@link Backends#OVERFLOW}.
     */
    private final String backend;

    /** Told the usage when the answer ends (not when it fails or the client goes). */
    private final Consumer<OpenAiJson.Usage> onUsage;

    private boolean finished;

    CompletionStream(ResponseBodyEmitter emitter, ObjectMapper json, String id, long created, String model,
            boolean includeUsage, String requestId, Consumer<OpenAiJson.Usage> onUsage) {
        this(emitter, json, id, created, model, includeUsage, requestId, Backends.LOCAL, onUsage);
    }

    CompletionStream(ResponseBodyEmitter emitter, ObjectMapper json, String id, long created, String model,
            boolean includeUsage, String requestId, String backend, Consumer<OpenAiJson.Usage> onUsage) {
        super(emitter, json, "Chat completion stream", id, requestId);
        this.backend = backend;
        this.created = created;
        this.model = model;
        this.includeUsage = includeUsage;
        this.onUsage = onUsage;
    }

    @Override
    protected void hookOnNext(ChatResponse response) {
        if (!begun()) {
            sendJson(delta(new OpenAiJson.Delta(OpenAiJson.ASSISTANT, "")));
            started();
        }
        String text = OpenAiJson.text(response);
        // with provenance a chunk carries its tokens (and may have none but the end of
        // sequence, without text)
        List<Map<String, Object>> tokens = OpenAiJson.tokens(response);
        String finishReason = OpenAiJson.finishReason(response);
        // the tokens' log-probabilities of a last response go with the finish reason
        Map<String, Object> logprobs = finishReason == null ? OpenAiJson.logprobs(response) : null;
        if (tokens != null) {
            sendJson(delta(new OpenAiJson.Delta(null, text), logprobs, Map.of("tokens", tokens)));
        }
        else if (!text.isEmpty() || logprobs != null) {
            sendJson(delta(new OpenAiJson.Delta(null, text), logprobs, null));
        }
        // tool calls come whole, in the last response
        List<Map<String, Object>> toolCalls = OpenAiJson.toolCalls(response, true);
        if (toolCalls != null) {
            sendJson(delta(new OpenAiJson.Delta(null, null, toolCalls)));
        }
        if (finishReason != null && !finished) {
            finish(finishReason, response);
        }
    }

    @Override
    protected void hookOnComplete() {
        boolean first = !begun();
        if (first) {
            sendJson(delta(new OpenAiJson.Delta(OpenAiJson.ASSISTANT, "")));
        }
        if (!finished) {
            finish("stop", null);
        }
        sendDone();
        if (first) {
            started();
        }
    }

    private void finish(String finishReason, ChatResponse last) {
        finished = true;
        // the log-probabilities no chunk carried yet come with the last
        OpenAiJson.ChunkChoice choice = new OpenAiJson.ChunkChoice(0, OpenAiJson.Delta.EMPTY,
                last == null ? null : OpenAiJson.logprobs(last), finishReason);
        sendJson(new OpenAiJson.ChatCompletionChunk(id, OpenAiJson.CHAT_COMPLETION_CHUNK, created, model,
                List.of(choice), null,
                Backends.speculation(last == null ? null : OpenAiJson.speculation(last), backend)));
        OpenAiJson.Usage usage = last == null ? new OpenAiJson.Usage(0, 0, 0, null) : OpenAiJson.usage(last);
        onUsage.accept(usage);
        if (includeUsage) {
            sendJson(new OpenAiJson.ChatCompletionChunk(id, OpenAiJson.CHAT_COMPLETION_CHUNK, created, model, List.of(),
                    usage, null));
        }
    }

    private OpenAiJson.ChatCompletionChunk delta(OpenAiJson.Delta delta) {
        return delta(delta, null, null);
    }

    /**
     * A chunk of {@code delta}, with its tokens' {@code logprobs} and a
     * {@code speculation} object when not null.
     */
    private OpenAiJson.ChatCompletionChunk delta(OpenAiJson.Delta delta, Map<String, Object> logprobs,
            Map<String, Object> speculation) {
        OpenAiJson.ChunkChoice choice = new OpenAiJson.ChunkChoice(0, delta, logprobs, null);
        return new OpenAiJson.ChatCompletionChunk(id, OpenAiJson.CHAT_COMPLETION_CHUNK, created, model, List.of(choice),
                null, speculation);
    }

}
