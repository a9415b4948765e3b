package dev.specula.sample;

import java.util.Map;

import jakarta.servlet.http.HttpServletRequest;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.context.request.async.AsyncRequestTimeoutException;

import dev.specula.chat.PromptTokenLimitException;
import dev.specula.engine.ContextLengthExceededException;
import dev.specula.engine.KvCapacityExceededException;
import dev.specula.request.InvalidRequestException;
import dev.specula.serving.ModelsNotReadyException;
import dev.specula.serving.ServiceBusyException;

/**
 * Turns every failure of a chat or text completion into OpenAI's error response,
 * {@code {"error": {"message", "type", "param", "code"}}}, with the status OpenAI clients
 * expect:
 *
 * <pre>
 * 400 invalid_request_error  the caller's mistake ({@link InvalidRequestException}: param names the field),
 *                            e.g. context_length_exceeded (also over specula.gateway.max-prompt-tokens),
 *                            unknown_policy, prompt_too_long
 * 401 invalid_request_error  code invalid_api_key: no or a wrong API key ({@link OpenAiAuthenticationEntryPoint})
 * 403 invalid_request_error  code insufficient_permissions: an Actuator write without an admin key
 * 413 invalid_request_error  code request_too_large: the body is over specula.gateway.max-request-bytes
 * 429 rate_limit_error       code rate_limit_exceeded: the caller's requests or tokens per minute are spent
 *                            (Retry-After, x-ratelimit-* headers; {@link RateLimits})
 * 429 rate_limit_error       code busy: every generation slot is taken, the batch queue is full, or the request
 *                            waited specula.kv.max-wait for KV memory in vain (Retry-After: 1)
 * 429 rate_limit_error       code kv_capacity_exceeded: prompt + max_tokens need more KV than specula.kv.max-bytes
 *                            holds, even alone (no Retry-After: the same request never fits; like OpenAI's 429
 *                            "request too large" for a tokens-per-minute limit)
 * 503 server_error           code models_loading (Retry-After: 5) or models_failed; shutting_down while the
 *                            gateway drains (Retry-After: 5; {@link DrainGate}); timeout after 10 minutes
 * 503 server_error           code overflow_unavailable: the request named the overflow model and the remote failed
 *                            or its breaker is open (Retry-After: 5)
 * 500 server_error           anything else (IllegalArgumentException included: a bug of ours, not the caller's),
 *                            logged with its stack trace under the request id the message quotes ({@link RequestIds})
 * </pre>
 *
 * Streams use the same bodies: an error before the first chunk is answered like a
 * non-streamed request, one after it ends the stream with a {@code data: {"error": ...}}
 * event. Nothing logged here holds the messages, the prompt or token ids.
 */
@RestControllerAdvice(assignableTypes = { ChatCompletionsController.class, CompletionsController.class })
class OpenAiErrors {

    static final String INVALID_REQUEST = "invalid_request_error";
    static final String RATE_LIMIT = "rate_limit_error";
    static final String SERVER_ERROR = "server_error";
    static final String REQUEST_TOO_LARGE = "request_too_large";

    /** Seconds a client should wait before retrying while the models load. */
    static final int LOADING_RETRY_AFTER_SECONDS = 5;

    /** The request fields behind the ChatModel's and the engine's option names. */
    private static final Map<String, String> PARAMS = Map.ofEntries(Map.entry("topP", "top_p"),
            Map.entry("topK", "top_k"), Map.entry("maxTokens", "max_tokens"), Map.entry("maxNewTokens", "max_tokens"),
            Map.entry("stopSequences", "stop"), Map.entry("stopStrings", "stop"),
            Map.entry("frequencyPenalty", "frequency_penalty"), Map.entry("presencePenalty", "presence_penalty"),
            Map.entry("policy", "speculation.policy"), Map.entry("gamma", "speculation.gamma"),
            Map.entry("promptIds", "messages"));

    private static final Logger logger = LoggerFactory.getLogger(OpenAiErrors.class);

    private final tools.jackson.databind.ObjectMapper json;

    OpenAiErrors(tools.jackson.databind.ObjectMapper json) {
        this.json = json;
    }

    /**
     * The error as JSON text whatever the request's Accept header says: a streaming
     * client often accepts only {@code text/event-stream}, and content negotiation would
     * then turn every error into a bare 500.
     */
    @ExceptionHandler(RuntimeException.class)
    ResponseEntity<String> handle(RuntimeException ex, HttpServletRequest request) {
        ResponseEntity<OpenAiJson.ErrorResponse> error = toResponse(ex, RequestIds.of(request));
        return ResponseEntity.status(error.getStatusCode())
            .headers(error.getHeaders())
            .contentType(org.springframework.http.MediaType.APPLICATION_JSON)
            .body(json.writeValueAsString(error.getBody()));
    }

    /**
     * The status, headers and body that answer {@code failure} of request
     * {@code requestId}.
     */
    static ResponseEntity<OpenAiJson.ErrorResponse> toResponse(Throwable failure, String requestId) {
        if (failure instanceof PromptTokenLimitException tooMany) {
            return error(HttpStatus.BAD_REQUEST, INVALID_REQUEST, promptTooLong(tooMany, "messages"), "messages",
                    ContextLengthExceededException.CODE);
        }
        if (failure instanceof RateLimitExceededException limited) {
            ResponseEntity.BodyBuilder response = ResponseEntity.status(HttpStatus.TOO_MANY_REQUESTS);
            if (limited.getRetryAfterSeconds() > 0) {
                response.header(HttpHeaders.RETRY_AFTER, Long.toString(limited.getRetryAfterSeconds()));
            }
            limited.getHeaders().forEach((name, value) -> response.header(name, value));
            return response.body(new OpenAiJson.ErrorResponse(
                    new OpenAiJson.ErrorBody(limited.getMessage(), RATE_LIMIT, null, RateLimitExceededException.CODE)));
        }
        if (failure instanceof AsyncRequestTimeoutException) {
            return error(HttpStatus.SERVICE_UNAVAILABLE, SERVER_ERROR,
                    "The answer took longer than the gateway's limit of "
                            + ChatCompletionsController.STREAM_TIMEOUT.toMinutes()
                            + " minutes and was cancelled: ask for fewer tokens (max_tokens) or stream it",
                    null, "timeout");
        }
        if (failure instanceof ContextLengthExceededException tooLong) {
            int requested = tooLong.getPromptTokens() + tooLong.getMaxNewTokens();
            return error(HttpStatus.BAD_REQUEST, INVALID_REQUEST, "This model's maximum context length is "
                    + tooLong.getContextLength() + " tokens. However, you requested " + requested + " tokens ("
                    + tooLong.getPromptTokens() + " in the messages, " + tooLong.getMaxNewTokens()
                    + " in the completion). Please reduce the length of the messages, or set max_tokens to at most "
                    + Math.max(0, tooLong.getContextLength() - tooLong.getPromptTokens()) + ".", "messages",
                    ContextLengthExceededException.CODE);
        }
        if (failure instanceof InvalidRequestException invalid) {
            HttpStatus status = REQUEST_TOO_LARGE.equals(invalid.getCode()) ? HttpStatus.PAYLOAD_TOO_LARGE
                    : HttpStatus.BAD_REQUEST;
            String param = invalid.getField() == null ? null
                    : PARAMS.getOrDefault(invalid.getField(), invalid.getField());
            return error(status, INVALID_REQUEST, invalid.getMessage(), param, invalid.getCode());
        }
        if (failure instanceof KvCapacityExceededException tooLarge) {
            long fitting = tooLarge.getMaxBytes() / tooLarge.getBytesPerToken() - tooLarge.getPromptTokens();
            return error(HttpStatus.TOO_MANY_REQUESTS, RATE_LIMIT, "This request needs " + tooLarge.getNeededBytes()
                    + " bytes of KV cache (" + tooLarge.getPromptTokens() + " tokens in the messages + "
                    + tooLarge.getMaxNewTokens() + " in the completion, at " + tooLarge.getBytesPerToken()
                    + " bytes per token) but the server's " + KvCapacityExceededException.PROPERTY + " is "
                    + tooLarge.getMaxBytes() + " bytes for all requests together. Please "
                    + (fitting >= 1 ? "set max_tokens to at most " + fitting + ", or reduce the length of the messages"
                            : "reduce the length of the messages")
                    + "; the server's operator can raise " + KvCapacityExceededException.PROPERTY + ".", null,
                    KvCapacityExceededException.CODE);
        }
        if (failure instanceof ServiceBusyException busy) {
            return error(HttpStatus.TOO_MANY_REQUESTS, RATE_LIMIT, busy.getMessage(), null, "busy", 1);
        }
        if (failure instanceof ModelsNotReadyException notReady) {
            if (notReady.failed()) {
                logger.warn("Chat completion {} refused: {}", requestId, notReady.getMessage());
                return error(HttpStatus.SERVICE_UNAVAILABLE, SERVER_ERROR, notReady.getMessage(), null,
                        "models_failed");
            }
            return error(HttpStatus.SERVICE_UNAVAILABLE, SERVER_ERROR, notReady.getMessage(), null, "models_loading",
                    LOADING_RETRY_AFTER_SECONDS);
        }
        if (failure instanceof OverflowUnavailableException unavailable) {
            logger.warn("Chat completion {}: {}", requestId, unavailable.getMessage());
            return error(HttpStatus.SERVICE_UNAVAILABLE, SERVER_ERROR, unavailable.getMessage(), null,
                    OverflowUnavailableException.CODE, LOADING_RETRY_AFTER_SECONDS);
        }
        logger.error("Chat completion {} failed", requestId, failure);
        String message = failure.getMessage() != null ? failure.getMessage() : failure.getClass().getName();
        return error(HttpStatus.INTERNAL_SERVER_ERROR, SERVER_ERROR, "The server failed to complete the chat: "
                + message + " (request id " + requestId + "; the server log has the details)", null, null);
    }

    /**
     * OpenAI's words for a prompt over its token limit, the prompt being {@code what}
     * ("messages", "prompt"), naming the gateway's property when the limit is its own.
     */
    static String promptTooLong(PromptTokenLimitException tooMany, String what) {
        String limit = tooMany.isContextLength() ? "This model's maximum context length is "
                : "This server's maximum prompt length (" + GatewayProperties.CONFIG_PREFIX + ".max-prompt-tokens) is ";
        return limit + tooMany.getLimit() + " tokens. However, your " + what + " resulted in "
                + (tooMany.isCounted() ? "" : "at least ") + tooMany.getPromptTokens() + " tokens. Please reduce the "
                + "length of the " + what + ".";
    }

    static ResponseEntity<OpenAiJson.ErrorResponse> error(HttpStatus status, String type, String message, String param,
            String code) {
        return error(status, type, message, param, code, 0);
    }

    static ResponseEntity<OpenAiJson.ErrorResponse> error(HttpStatus status, String type, String message, String param,
            String code, int retryAfterSeconds) {
        ResponseEntity.BodyBuilder response = ResponseEntity.status(status);
        if (retryAfterSeconds > 0) {
            response.header(HttpHeaders.RETRY_AFTER, Integer.toString(retryAfterSeconds));
        }
        return response.body(new OpenAiJson.ErrorResponse(new OpenAiJson.ErrorBody(message, type, param, code)));
    }

}
