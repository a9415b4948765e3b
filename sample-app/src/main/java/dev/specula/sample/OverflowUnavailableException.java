package dev.specula.sample;

/**
 * A request for the overflow model ({@code model} naming it) that the remote could not
 * answer: it failed, or its circuit breaker is open. Answered 503
 * {@code overflow_unavailable}.
 */
class OverflowUnavailableException extends RuntimeException {

    static final String CODE = "overflow_unavailable";

    OverflowUnavailableException(String model, Throwable cause) {
        super("The overflow model '" + model + "' is unavailable right now (" + cause.getMessage()
                + "); retry later, or leave model out to use the local model", cause);
    }

}
