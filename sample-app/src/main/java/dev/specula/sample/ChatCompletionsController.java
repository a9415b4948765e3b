package dev.specula.sample;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.UUID;

import jakarta.servlet.http.HttpServletRequest;
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
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

import dev.specula.chat.SpeculaChatModel;

/**
 * OpenAI's chat completions API over a Spring AI {@link ChatModel} (Specula's,
 * auto-configured): {@code POST /v1/chat/completions}, answered at once or streamed
 * ({@code "stream": true}), and {@code GET /v1/models}. Requests are checked before they
 * reach the model ({@link ChatCompletionRequest}); failures become OpenAI's error bodies
 * ({@link OpenAiErrors}).
 */
@RestController
@RequestMapping("/v1")
public class ChatCompletionsController {

    /** Longest a streamed answer may take; the generation is cancelled after it. */
    static final Duration STREAM_TIMEOUT = Duration.ofMinutes(10);

    private static final String OWNER = "specula";

    private final ChatModel chatModel;

    private final ObjectMapper json;

    private final JsonRequestReader bodies;

    private final String modelName;

    private final long startedAt = Instant.now().getEpochSecond();

    /** The overflow remote, or null when {@code specula.overflow.enabled} is false. */
    private final ChatOverflow overflow;

    public ChatCompletionsController(ChatModel chatModel, ObjectMapper json, GatewayProperties properties,
            ObjectProvider<ChatOverflow> overflow) {
        this.chatModel = chatModel;
        this.overflow = overflow.getIfAvailable();
        this.json = json;
        this.bodies = new JsonRequestReader(json, properties, "messages");
        this.modelName = servedModelName(chatModel);
    }

    @GetMapping("/models")
    OpenAiJson.ModelList models() {
        return new OpenAiJson.ModelList("list", List.of(new OpenAiJson.Model(modelName, "model", startedAt, OWNER)));
    }

    /**
     * Reads the body itself (any content type), at most
     * {@code specula.gateway.max-request-size} of it, so that an oversized body is
     * refused before it is parsed and malformed JSON is reported in OpenAI's error shape.
     */
    @PostMapping("/chat/completions")
    ResponseEntity<?> chatCompletions(HttpServletRequest http) {
        JsonNode body = bodies.read(http);
        String id = "chatcmpl-" + UUID.randomUUID().toString().replace("-", "");
        long created = Instant.now().getEpochSecond();
        if (overflow != null && overflow.isNamedIn(body) && !overflow.model().equals(modelName)) {
            overflow.checkPortable(body);
            ChatCompletionRequest remote = ChatCompletionRequest.read(body, overflow.model());
            return OverflowResponses.answerRemote(overflow, remote, id, created, RequestIds.of(http), json);
        }
        ChatCompletionRequest request = ChatCompletionRequest.read(body, modelName);
        try {
            ResponseEntity<?> local = request.stream() ? stream(request, id, created, RequestIds.of(http))
                    : ResponseEntity.ok(complete(request.prompt(), id, created));
            return ResponseEntity.status(local.getStatusCode())
                .headers(local.getHeaders())
                .header(Backends.HEADER, Backends.LOCAL)
                .body(local.getBody());
        }
        catch (RuntimeException ex) {
            if (overflow == null || !overflow.takes(ex, body)) {
                throw ex;
            }
            return OverflowResponses.answerOr(ex, overflow, request, id, created, RequestIds.of(http), json);
        }
    }

    private OpenAiJson.ChatCompletion complete(Prompt prompt, String id, long created) {
        ChatResponse response = chatModel.call(prompt);
        String finishReason = OpenAiJson.finishReason(response);
        OpenAiJson.Choice choice = new OpenAiJson.Choice(0, OpenAiJson.Message.of(response),
                OpenAiJson.logprobs(response), finishReason != null ? finishReason : "stop");
        return new OpenAiJson.ChatCompletion(id, OpenAiJson.CHAT_COMPLETION, created, modelName, List.of(choice),
                OpenAiJson.usage(response), Backends.speculation(OpenAiJson.speculation(response), Backends.LOCAL));
    }

    /**
     * Starts the generation, waits for its first chunk and only then answers 200 with the
     * event stream, so a request that fails before any text still gets its JSON error and
     * status.
     */
    private ResponseEntity<ResponseBodyEmitter> stream(ChatCompletionRequest request, String id, long created,
            String requestId) {
        ResponseBodyEmitter emitter = new ResponseBodyEmitter(STREAM_TIMEOUT.toMillis());
        CompletionStream stream = new CompletionStream(emitter, json, id, created, modelName, request.includeUsage(),
                requestId);
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
