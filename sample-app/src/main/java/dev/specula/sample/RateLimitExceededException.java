package dev.specula.sample;

import java.util.Map;

/**
 * A caller went over {@code specula.gateway.rate-limit.*}: answered 429
 * {@code rate_limit_exceeded} with {@code Retry-After} (when waiting helps) and OpenAI's
 * {@code x-ratelimit-*} headers.
 */
class RateLimitExceededException extends RuntimeException {

    static final String CODE = "rate_limit_exceeded";

    /** Seconds until the request would pass; 0 when it never will (too large). */
    private final long retryAfterSeconds;

    /** The {@code x-ratelimit-*} headers of the refusal. */
    private final Map<String, String> headers;

    RateLimitExceededException(String message, long retryAfterSeconds, Map<String, String> headers) {
        super(message);
        this.retryAfterSeconds = retryAfterSeconds;
        this.headers = Map.copyOf(headers);
    }

    long getRetryAfterSeconds() {
        return retryAfterSeconds;
    }

    Map<String, String> getHeaders() {
        return headers;
    }

}
