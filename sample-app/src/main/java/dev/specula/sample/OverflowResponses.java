package dev.specula.sample;

import java.util.List;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.http.CacheControl;
import org.springframework.http.HttpHeaders;
import org.springframework.http.ResponseEntity;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import tools.jackson.databind.ObjectMapper;

import dev.specula.request.InvalidRequestException;

/**
 * Chat completions answered by the overflow remote ({@link ChatOverflow}), in the same
 * shapes as local ones: a {@code chat.completion} or an event stream, named by the remote
 * model, with {@code X-Specula-Backend: overflow} and {@code speculation.backend}. The
 * caller's tokens per minute are charged with the remote's usage
 * ({@link OverflowCharge}).
 */
final class OverflowResponses {

    private static final Logger logger = LoggerFactory.getLogger(OverflowResponses.class);

    private OverflowResponses() {
    }

    /**
     * The remote's answer to a request the local engine refused with {@code local}; when
     * the remote fails too (or its breaker is open) the local refusal is thrown again, so
     * the client gets the 429 or 503 it got before overflow existed, and the request
     * costs nothing.
     */
    static ResponseEntity<?> answerOr(RuntimeException local, ChatOverflow overflow, ChatCompletionRequest request,
            String id, long created, String requestId, ObjectMapper json, OverflowCharge charge) {
        try {
            return answer(overflow, request, id, created, requestId, json, charge);
        }
        catch (RuntimeException remote) {
            charge.refund();
            logger.debug("Chat completion {} (request {}): overflow failed ({}), answering the local refusal", id,
                    requestId, remote.toString());
            local.addSuppressed(remote);
            throw local;
        }
    }

    /**
     * The remote's answer to a request for the overflow model.
     * @throws InvalidRequestException when the remote refused the request as the caller's
     * mistake ({@link RemoteRefusal})
     * @throws OverflowUnavailableException when the remote fails or its breaker is open
     */
    static ResponseEntity<?> answerRemote(ChatOverflow overflow, ChatCompletionRequest request, String id, long created,
            String requestId, ObjectMapper json, OverflowCharge charge) {
        try {
            return answer(overflow, request, id, created, requestId, json, charge);
        }
        catch (RuntimeException remote) {
            charge.refund();
            InvalidRequestException refused = RemoteRefusal.toInvalidRequest(overflow.model(), remote);
            throw refused != null ? refused : new OverflowUnavailableException(overflow.model(), remote);
        }
    }

    /**
     * The remote's answer: whole, or streamed once its first chunk has come; its usage
     * settles {@code charge}.
     */
    static ResponseEntity<?> answer(ChatOverflow overflow, ChatCompletionRequest request, String id, long created,
            String requestId, ObjectMapper json, OverflowCharge charge) {
        if (!request.stream()) {
            ChatResponse response = overflow.call(request);
            OpenAiJson.Usage usage = OpenAiJson.usage(response);
            charge.sent(OpenAiJson.text(response));
            charge.settle(usage.totalTokens());
            String finishReason = OpenAiJson.finishReason(response);
            OpenAiJson.Choice choice = new OpenAiJson.Choice(0, OpenAiJson.Message.of(response), null,
                    finishReason != null ? finishReason : "stop");
            return ResponseEntity.ok()
                .header(Backends.HEADER, Backends.OVERFLOW)
                .body(new OpenAiJson.ChatCompletion(id, OpenAiJson.CHAT_COMPLETION, created, overflow.model(),
                        List.of(choice), usage, Backends.speculation(null, Backends.OVERFLOW)));
        }
        ResponseBodyEmitter emitter = new ResponseBodyEmitter(ChatCompletionsController.STREAM_TIMEOUT.toMillis());
        CompletionStream stream = new CompletionStream(emitter, json, id, created, overflow.model(),
                request.includeUsage(), requestId, Backends.OVERFLOW, (usage) -> charge.settle(usage.totalTokens()));
        overflow.stream(request).doOnNext((response) -> charge.sent(OpenAiJson.text(response))).subscribe(stream);
        stream.awaitStart(ChatCompletionsController.STREAM_TIMEOUT);
        return ResponseEntity.ok()
            .header(HttpHeaders.CONTENT_TYPE, "text/event-stream;charset=UTF-8")
            .cacheControl(CacheControl.noCache())
            .header("X-Accel-Buffering", "no")
            .header(Backends.HEADER, Backends.OVERFLOW)
            .body(emitter);
    }

}
