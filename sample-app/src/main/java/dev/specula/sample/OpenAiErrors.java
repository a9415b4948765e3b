package dev.specula.sample;

import dev.specula.engine.ContextLengthExceededException;
import dev.specula.policy.UnknownPolicyException;
import dev.specula.serving.ModelsNotReadyException;
import dev.specula.serving.ServiceBusyException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;

/**
 * Turns every failure of a chat completion into OpenAI's error response,
 * {@code {"error": {"message", "type", "param", "code"}}}, with the status OpenAI clients expect:
 *
 * <pre>
 * 400 invalid_request_error  a bad field (param names it), context_length_exceeded, unknown_policy
 * 429 rate_limit_error       code busy: every generation slot is taken (Retry-After: 1)
 * 503 server_error           code models_loading (Retry-After: 5) or models_failed
 * 500 server_error           anything else, with its message
 * </pre>
 *
 * Streams use the same bodies: an error before the first chunk is answered like a non-streamed request,
 * one after it ends the stream with a {@code data: {"error": ...}} event.
 */
@RestControllerAdvice(assignableTypes = ChatCompletionsController.class)
class OpenAiErrors {

    static final String INVALID_REQUEST = "invalid_request_error";
    static final String RATE_LIMIT = "rate_limit_error";
    static final String SERVER_ERROR = "server_error";

    /** Seconds a client should wait before retrying while the models load. */
    static final int LOADING_RETRY_AFTER_SECONDS = 5;

    private static final Logger logger = LoggerFactory.getLogger(OpenAiErrors.class);

    private final tools.jackson.databind.ObjectMapper json;

    OpenAiErrors(tools.jackson.databind.ObjectMapper json) {
        this.json = json;
    }

    /**
     * The error as JSON text whatever the request's Accept header says: a streaming client often accepts only
     * {@code text/event-stream}, and content negotiation would then turn every error into a bare 500.
     */
    @ExceptionHandler(RuntimeException.class)
    ResponseEntity<String> handle(RuntimeException ex) {
        ResponseEntity<OpenAiJson.ErrorResponse> error = toResponse(ex);
        return ResponseEntity.status(error.getStatusCode()).headers(error.getHeaders())
                .contentType(org.springframework.http.MediaType.APPLICATION_JSON).body(json.writeValueAsString(error.getBody()));
    }

    /** The status, headers and body that answer {@code failure}. */
    static ResponseEntity<OpenAiJson.ErrorResponse> toResponse(Throwable failure) {
        if (failure instanceof InvalidRequestException invalid) {
            return error(HttpStatus.BAD_REQUEST, INVALID_REQUEST, invalid.getMessage(), invalid.param(), invalid.code());
        }
        if (failure instanceof ContextLengthExceededException tooLong) {
            int requested = tooLong.getPromptTokens() + tooLong.getMaxNewTokens();
            return error(HttpStatus.BAD_REQUEST, INVALID_REQUEST, "This model's maximum context length is "
                    + tooLong.getContextLength() + " tokens. However, you requested " + requested + " tokens ("
                    + tooLong.getPromptTokens() + " in the messages, " + tooLong.getMaxNewTokens()
                    + " in the completion). Please reduce the length of the messages, or set max_tokens to at most "
                    + Math.max(0, tooLong.getContextLength() - tooLong.getPromptTokens()) + ".", "messages",
                    "context_length_exceeded");
        }
        if (failure instanceof UnknownPolicyException unknown) {
            return error(HttpStatus.BAD_REQUEST, INVALID_REQUEST, unknown.getMessage(), "speculation.policy", "unknown_policy");
        }
        if (failure instanceof IllegalArgumentException invalid) {
            logger.debug("Chat completion rejected by the model", invalid);
            return error(HttpStatus.BAD_REQUEST, INVALID_REQUEST, invalid.getMessage(), null, null);
        }
        if (failure instanceof ServiceBusyException busy) {
            return error(HttpStatus.TOO_MANY_REQUESTS, RATE_LIMIT, busy.getMessage(), null, "busy", 1);
        }
        if (failure instanceof ModelsNotReadyException notReady) {
            if (notReady.failed()) {
                logger.warn("Chat completion refused: {}", notReady.getMessage());
                return error(HttpStatus.SERVICE_UNAVAILABLE, SERVER_ERROR, notReady.getMessage(), null, "models_failed");
            }
            return error(HttpStatus.SERVICE_UNAVAILABLE, SERVER_ERROR, notReady.getMessage(), null, "models_loading",
                    LOADING_RETRY_AFTER_SECONDS);
        }
        logger.error("Chat completion failed", failure);
        String message = failure.getMessage() != null ? failure.getMessage() : failure.getClass().getName();
        return error(HttpStatus.INTERNAL_SERVER_ERROR, SERVER_ERROR, "The server failed to complete the chat: " + message,
                null, null);
    }

    private static ResponseEntity<OpenAiJson.ErrorResponse> error(HttpStatus status, String type, String message,
            String param, String code) {
        return error(status, type, message, param, code, 0);
    }

    private static ResponseEntity<OpenAiJson.ErrorResponse> error(HttpStatus status, String type, String message,
            String param, String code, int retryAfterSeconds) {
        ResponseEntity.BodyBuilder response = ResponseEntity.status(status);
        if (retryAfterSeconds > 0) {
            response.header(HttpHeaders.RETRY_AFTER, Integer.toString(retryAfterSeconds));
        }
        return response.body(new OpenAiJson.ErrorResponse(new OpenAiJson.ErrorBody(message, type, param, code)));
    }
}
