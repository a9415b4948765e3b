package dev.specula.serving;

import java.time.Duration;

/**
 * The response cache of deterministic requests (temperature 0, or a fixed seed).
 *
 * @param enabled whether deterministic answers are cached, default true
 * @param maximumSize most cached answers, 0 caches nothing, default
 * {@value #DEFAULT_MAXIMUM_SIZE}
 * @param timeToLive how long an answer stays cached after it was generated, default
 * {@link #DEFAULT_TIME_TO_LIVE}
 */
public record ResponseCacheSettings(boolean enabled, long maximumSize, Duration timeToLive) {

    public static final long DEFAULT_MAXIMUM_SIZE = 1000;

    public static final Duration DEFAULT_TIME_TO_LIVE = Duration.ofMinutes(10);

    public ResponseCacheSettings {
        if (maximumSize < 0) {
            throw new IllegalArgumentException("maximumSize must be >= 0 but was " + maximumSize);
        }
        if (timeToLive == null || timeToLive.isNegative() || timeToLive.isZero()) {
            throw new IllegalArgumentException("timeToLive must be > 0 but was " + timeToLive);
        }
    }

    public static ResponseCacheSettings defaults() {
        return builder().build();
    }

    /** No response cache. */
    public static ResponseCacheSettings disabled() {
        return builder().enabled(false).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Whether answers are cached at all. */
    boolean active() {
        return enabled && maximumSize > 0;
    }

    /**
     * Builds {@link ResponseCacheSettings}; every setter has the default of the record's
     * component.
     */
    public static final class Builder {

        private boolean enabled = true;

        private long maximumSize = DEFAULT_MAXIMUM_SIZE;

        private Duration timeToLive = DEFAULT_TIME_TO_LIVE;

        private Builder() {
        }

        public Builder enabled(boolean enabled) {
            this.enabled = enabled;
            return this;
        }

        public Builder maximumSize(long maximumSize) {
            this.maximumSize = maximumSize;
            return this;
        }

        public Builder timeToLive(Duration timeToLive) {
            this.timeToLive = timeToLive;
            return this;
        }

        public ResponseCacheSettings build() {
            return new ResponseCacheSettings(enabled, maximumSize, timeToLive);
        }

    }
}
