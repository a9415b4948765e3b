package dev.specula.sample;

import com.openai.errors.BadRequestException;
import com.openai.errors.OpenAIServiceException;
import com.openai.errors.UnprocessableEntityException;

import dev.specula.request.InvalidRequestException;

/**
 * The overflow remote's refusal of a request as the caller's mistake: a 400 or 422 (a
 * field it does not take, such as a {@code suffix} for a model without
 * fill-in-the-middle, or a value out of its range). A request naming the remote model
 * gets it back as a 400 with the remote's message and param, and the circuit breaker does
 * not count it against the remote. Any other failure (unreachable, 5xx, 401, 403 or 404:
 * the gateway's configuration) is the remote's.
 */
final class RemoteRefusal {

    private RemoteRefusal() {
    }

    /** Whether {@code failure}, or one of its causes, is such a refusal. */
    static boolean isCallersMistake(Throwable failure) {
        return find(failure) != null;
    }

    /**
     * The refusal in {@code failure} as the gateway's own 400, saying it came from
     * {@code model}, the overflow model; null when {@code failure} is not one.
     */
    static InvalidRequestException toInvalidRequest(String model, Throwable failure) {
        OpenAIServiceException refusal = find(failure);
        if (refusal == null) {
            return null;
        }
        // openai-java writes "400: <the remote's message>"
        String message = String.valueOf(refusal.getMessage()).replaceFirst("^\\d{3}: ", "");
        return new InvalidRequestException(refusal.param().orElse(null), refusal.code().orElse("invalid_request"),
                "The overflow model '" + model + "' refused the request: " + message, refusal);
    }

    private static OpenAIServiceException find(Throwable failure) {
        for (Throwable cause = failure; cause != null; cause = cause.getCause()) {
            if (cause instanceof BadRequestException || cause instanceof UnprocessableEntityException) {
                return (OpenAIServiceException) cause;
            }
            if (cause.getCause() == cause) {
                return null;
            }
        }
        return null;
    }

}
