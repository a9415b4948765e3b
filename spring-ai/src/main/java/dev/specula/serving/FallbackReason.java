package dev.specula.serving;

/** Why a request that asked for speculation was (partly) served by plain target decoding. */
public enum FallbackReason {

    /** The draft model threw during a round. */
    DRAFT_ERROR("draft-error"),
    /** A speculative round ran past the time limit (a hung draft); it was stopped inside ONNX Runtime. */
    TIMEOUT("timeout"),
    /** The circuit breaker is open after too many draft failures. */
    BREAKER_OPEN("breaker-open"),
    /** Measured goodput of speculation fell below plain decoding's: speculation is off until probed again. */
    GOODPUT("goodput");

    private final String tag;

    FallbackReason(String tag) {
        this.tag = tag;
    }

    /** The value of the {@code reason} tag of {@code specula.fallbacks}. */
    public String tag() {
        return tag;
    }
}
