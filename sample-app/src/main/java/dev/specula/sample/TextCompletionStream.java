package dev.specula.sample;

import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import tools.jackson.databind.ObjectMapper;

import dev.specula.chat.ChatLogprob;

/**
 * Relays a model's {@code Flux<ChatResponse>} of a raw prompt to the client as the legacy
 * completions API's server-sent events:
 *
 * <pre>
 * data: {"object": "text_completion", "choices": [{"text": "prompt", ...}], ...}        with echo: the prompt first
 * data: {... "choices": [{"text": "def", "logprobs": {...}, "finish_reason": null}]}   one per piece of text
 * data: {... "choices": [{"text": "", "logprobs": {...}, "finish_reason": "stop"}], "speculation": {...}}
 * data: {... "choices": [], "usage": {...}}                                            if stream_options.include_usage
 * data: [DONE]
 * </pre>
 *
 * With {@code logprobs}, each event carries the log-probabilities of its own tokens
 * ({@link CompletionLogprobs}): a piece of text, those of the tokens whose text first
 * shows in it; the echoed prompt, the prompt's (its first token's null); the finish
 * reason, those left (a token without text, such as the end of sequence). Their offsets
 * go on from event to event, so that together they are the whole answer's.
 *
 * As {@link CompletionStream} does for chats: the controller waits for the first signal
 * ({@link #awaitStart}) before it answers, so a request that fails before any text gets a
 * JSON error with its status; a failure later ends the stream with a {@code data:
 * {"error": ...}} event; when the client goes away the subscription is cancelled, which
 * stops the generation.
 */
final class TextCompletionStream extends EventStreamRelay<ChatResponse> {

    private final long created;

    private final String model;

    /** The prompt's text, sent first; null without echo. */
    private final String echo;

    /**
     * The text of the prompt's first token, which leads the echo's log-probabilities;
     * null unless the request asks for echo and logprobs.
     */
    private final String firstPromptToken;

    /**
     * Where the next event's first token starts in the answer's text (vLLM's
     * {@code text_offset}: the lengths of the tokens before it).
     */
    private int textOffset;

    private final boolean includeUsage;

    /** Told the usage when the answer ends (not when it fails or the client goes). */
    private final Consumer<OpenAiJson.Usage> onUsage;

    private boolean finished;

    TextCompletionStream(ResponseBodyEmitter emitter, ObjectMapper json, String id, long created, String model,
            String echo, boolean includeUsage, String requestId, Consumer<OpenAiJson.Usage> onUsage) {
        this(emitter, json, id, created, model, echo, null, includeUsage, requestId, onUsage);
    }

    /**
     * A stream whose echo leads with the prompt's log-probabilities: those of the tokens
     * after {@code firstPromptToken} (null: the echo carries none).
     */
    TextCompletionStream(ResponseBodyEmitter emitter, ObjectMapper json, String id, long created, String model,
            String echo, String firstPromptToken, boolean includeUsage, String requestId,
            Consumer<OpenAiJson.Usage> onUsage) {
        super(emitter, json, "Completion stream", id, requestId);
        this.firstPromptToken = firstPromptToken;
        this.created = created;
        this.model = model;
        this.echo = echo;
        this.includeUsage = includeUsage;
        this.onUsage = onUsage;
    }

    @Override
    protected void hookOnNext(ChatResponse response) {
        begin(response);
        String text = OpenAiJson.text(response);
        String finishReason = OpenAiJson.finishReason(response);
        // with provenance an event carries its tokens (and may have none but the end of
        // sequence, without text)
        List<Map<String, Object>> tokens = OpenAiJson.tokens(response);
        // the tokens' log-probabilities of a last response go with the finish reason
        Map<String, Object> logprobs = finishReason == null ? ownLogprobs(response) : null;
        if (tokens != null) {
            sendJson(event(new TextCompletionJson.Choice(text, 0, logprobs, null), null, Map.of("tokens", tokens)));
        }
        else if (!text.isEmpty() || logprobs != null) {
            sendJson(event(new TextCompletionJson.Choice(text, 0, logprobs, null), null, null));
        }
        if (finishReason != null && !finished) {
            finish(finishReason, response);
        }
    }

    @Override
    protected void hookOnComplete() {
        begin(null);
        if (!finished) {
            finish("stop", null);
        }
        sendDone();
    }

    /**
     * On the first signal: the echoed prompt (with its log-probabilities, which
     * {@code first}, the first response, carries), then the controller may answer.
     */
    private void begin(ChatResponse first) {
        if (begun()) {
            return;
        }
        if (firstPromptToken != null) {
            CompletionLogprobs prompt = new CompletionLogprobs(textOffset).first(firstPromptToken)
                .add(CompletionLogprobs.list(first, ChatLogprob.PROMPT_METADATA_KEY));
            textOffset = prompt.end();
            sendJson(event(new TextCompletionJson.Choice(echo == null ? "" : echo, 0, prompt.toMap(), null), null,
                    null));
        }
        else if (echo != null && !echo.isEmpty()) {
            sendJson(event(new TextCompletionJson.Choice(echo, 0, null, null), null, null));
        }
        started();
    }

    /**
     * The {@code logprobs} object of the tokens {@code response} carries, their offsets
     * going on from the events before; null when it carries none.
     */
    private Map<String, Object> ownLogprobs(ChatResponse response) {
        List<ChatLogprob> own = CompletionLogprobs.list(response, ChatLogprob.METADATA_KEY);
        if (own.isEmpty()) {
            return null;
        }
        CompletionLogprobs logprobs = new CompletionLogprobs(textOffset).add(own);
        textOffset = logprobs.end();
        return logprobs.toMap();
    }

    private void finish(String finishReason, ChatResponse last) {
        finished = true;
        // the log-probabilities no event carried yet (the end of sequence's) come with
        // the finish reason
        Map<String, Object> logprobs = last == null ? null : ownLogprobs(last);
        sendJson(event(new TextCompletionJson.Choice("", 0, logprobs, finishReason), null,
                Backends.speculation(last == null ? null : OpenAiJson.speculation(last), Backends.LOCAL)));
        OpenAiJson.Usage usage = last == null ? new OpenAiJson.Usage(0, 0, 0, null) : OpenAiJson.usage(last);
        onUsage.accept(usage);
        if (includeUsage) {
            sendJson(event(null, usage, null));
        }
    }

    /** An event with {@code choice} (none when null), and the usage and figures. */
    private TextCompletionJson.TextCompletion event(TextCompletionJson.Choice choice, OpenAiJson.Usage usage,
            Map<String, Object> speculation) {
        return new TextCompletionJson.TextCompletion(id, TextCompletionJson.TEXT_COMPLETION, created, model,
                choice == null ? List.of() : List.of(choice), usage, speculation);
    }

}
