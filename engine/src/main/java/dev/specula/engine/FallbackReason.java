package dev.specula.engine;

/**
 * Why a request that asked for speculation was (partly) served by plain target decoding.
 * The output is the same either way. The engine reports the first two; the serving layer
 * decides the other two before a request starts.
 */
public enum FallbackReason {

    /**
     * The draft model threw during a round: drafting was switched off, the request went
     * on plainly.
     */
    DRAFT_ERROR("draft-error"),
    /**
     * A round's draft phase ran past the time limit (a hung draft); it was stopped inside
     * ONNX Runtime.
     */
    DRAFT_TIMEOUT("timeout"),
    /** The circuit breaker around the draft is open after too many draft failures. */
    BREAKER_OPEN("breaker-open"),
    /**
     * Measured goodput of speculation fell below plain decoding's: speculation is off
     * until probed again.
     */
    GOODPUT("goodput");

    private final String tag;

    FallbackReason(String tag) {
        this.tag = tag;
    }

    /**
     * The value of the {@code reason} tag of {@code specula.fallbacks}, and of the
     * response metadata.
     */
    public String tag() {
        return tag;
    }

}
