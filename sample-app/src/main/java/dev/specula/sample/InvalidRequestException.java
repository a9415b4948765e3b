package dev.specula.sample;

/**
 * A request the gateway refuses before it reaches the model: answered 400 with OpenAI's error body, whose
 * {@code param} names the offending field (e.g. {@code temperature}, {@code messages[1].role}).
 */
class InvalidRequestException extends RuntimeException {

    private final String param;
    private final String code;

    InvalidRequestException(String param, String message) {
        this(param, null, message);
    }

    InvalidRequestException(String param, String code, String message) {
        super(message);
        this.param = param;
        this.code = code;
    }

    /** The offending field, or null when the body as a whole is wrong. */
    String param() {
        return param;
    }

    /** A machine-readable reason, or null. */
    String code() {
        return code;
    }
}
