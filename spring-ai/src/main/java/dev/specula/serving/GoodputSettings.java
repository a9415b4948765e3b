package dev.specula.serving;

/**
 * The goodput switch ({@link GoodputMonitor}): speculation off while it decodes slower
 * than plain decoding.
 *
 * @param enabled whether the switch is on, default true
 * @param probeInterval speculative requests between two plain probes that re-measure
 * plain decoding's speed, default {@value #DEFAULT_PROBE_INTERVAL}
 * @param minTokens shortest answer (tokens) whose speed is measured, default
 * {@value #DEFAULT_MIN_TOKENS}
 * @param breaker its circuit breaker (a "failure" is a speculative request slower than
 * plain), default {@link CircuitBreakerSettings#GOODPUT_DEFAULTS}
 */
public record GoodputSettings(boolean enabled, int probeInterval, int minTokens, CircuitBreakerSettings breaker) {

    public static final int DEFAULT_PROBE_INTERVAL = 50;

    public static final int DEFAULT_MIN_TOKENS = 8;

    public GoodputSettings {
        if (probeInterval < 1) {
            throw new IllegalArgumentException("probeInterval must be >= 1 but was " + probeInterval);
        }
        if (minTokens < 1) {
            throw new IllegalArgumentException("minTokens must be >= 1 but was " + minTokens);
        }
        if (breaker == null) {
            throw new IllegalArgumentException("breaker must not be null");
        }
    }

    public static GoodputSettings defaults() {
        return builder().build();
    }

    /** No goodput switch: speculation runs however fast it is. */
    public static GoodputSettings disabled() {
        return builder().enabled(false).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * Builds {@link GoodputSettings}; every setter has the default of the record's
     * component.
     */
    public static final class Builder {

        private boolean enabled = true;

        private int probeInterval = DEFAULT_PROBE_INTERVAL;

        private int minTokens = DEFAULT_MIN_TOKENS;

        private CircuitBreakerSettings breaker = CircuitBreakerSettings.GOODPUT_DEFAULTS;

        private Builder() {
        }

        public Builder enabled(boolean enabled) {
            this.enabled = enabled;
            return this;
        }

        public Builder probeInterval(int probeInterval) {
            this.probeInterval = probeInterval;
            return this;
        }

        public Builder minTokens(int minTokens) {
            this.minTokens = minTokens;
            return this;
        }

        public Builder breaker(CircuitBreakerSettings breaker) {
            this.breaker = breaker;
            return this;
        }

        public GoodputSettings build() {
            return new GoodputSettings(enabled, probeInterval, minTokens, breaker);
        }

    }
}
