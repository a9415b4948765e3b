package dev.specula.serving;

import java.time.Duration;

import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;

/**
 * One of the service's circuit breakers (draft failures, goodput): the one place its
 * Resilience4j config is made, by the service and by the auto-configuration alike.
 *
 * @param failureRateThreshold failure rate, in percent (0 exclusive to 100), that opens
 * the breaker
 * @param slidingWindowSize calls the failure rate is computed over
 * @param minimumNumberOfCalls least calls in the window before the failure rate counts
 * @param waitDurationInOpenState how long the breaker stays open before it is probed
 * again (half-open)
 * @param permittedNumberOfCallsInHalfOpenState probe calls while half-open
 */
public record CircuitBreakerSettings(float failureRateThreshold, int slidingWindowSize, int minimumNumberOfCalls,
        Duration waitDurationInOpenState, int permittedNumberOfCallsInHalfOpenState) {

    /**
     * Draft breaker: 50% of 20 speculative requests (at least 5) failed or timed out; 30s
     * open; 3 probes.
     */
    public static final CircuitBreakerSettings DRAFT_DEFAULTS = new CircuitBreakerSettings(50, 20, 5,
            Duration.ofSeconds(30), 3);

    /**
     * Goodput breaker: 50% of 10 speculative requests (at least 6) were slower than
     * plain; 60s open; 4 probes.
     */
    public static final CircuitBreakerSettings GOODPUT_DEFAULTS = new CircuitBreakerSettings(50, 10, 6,
            Duration.ofSeconds(60), 4);

    public CircuitBreakerSettings {
        if (!(failureRateThreshold > 0 && failureRateThreshold <= 100)) {
            throw new IllegalArgumentException(
                    "failureRateThreshold must be in (0, 100] but was " + failureRateThreshold);
        }
        if (slidingWindowSize < 1 || minimumNumberOfCalls < 1 || permittedNumberOfCallsInHalfOpenState < 1) {
            throw new IllegalArgumentException(
                    "slidingWindowSize, minimumNumberOfCalls and permittedNumberOfCallsInHalfOpenState "
                            + "must be >= 1 but were " + slidingWindowSize + ", " + minimumNumberOfCalls + ", "
                            + permittedNumberOfCallsInHalfOpenState);
        }
        if (waitDurationInOpenState == null || waitDurationInOpenState.toMillis() < 1) {
            throw new IllegalArgumentException(
                    "waitDurationInOpenState must be at least 1ms but was " + waitDurationInOpenState);
        }
    }

    /** A builder starting from {@code defaults}. */
    public static Builder builder(CircuitBreakerSettings defaults) {
        return new Builder(defaults);
    }

    /** The Resilience4j config of a breaker with these settings. */
    public CircuitBreakerConfig toConfig() {
        return CircuitBreakerConfig.custom()
            .failureRateThreshold(failureRateThreshold)
            .slidingWindowSize(slidingWindowSize)
            .minimumNumberOfCalls(minimumNumberOfCalls)
            .waitDurationInOpenState(waitDurationInOpenState)
            .permittedNumberOfCallsInHalfOpenState(permittedNumberOfCallsInHalfOpenState)
            .build();
    }

    /** Builds {@link CircuitBreakerSettings} from a set of defaults. */
    public static final class Builder {

        private float failureRateThreshold;

        private int slidingWindowSize;

        private int minimumNumberOfCalls;

        private Duration waitDurationInOpenState;

        private int permittedNumberOfCallsInHalfOpenState;

        private Builder(CircuitBreakerSettings defaults) {
            this.failureRateThreshold = defaults.failureRateThreshold;
            this.slidingWindowSize = defaults.slidingWindowSize;
            this.minimumNumberOfCalls = defaults.minimumNumberOfCalls;
            this.waitDurationInOpenState = defaults.waitDurationInOpenState;
            this.permittedNumberOfCallsInHalfOpenState = defaults.permittedNumberOfCallsInHalfOpenState;
        }

        public Builder failureRateThreshold(float failureRateThreshold) {
            this.failureRateThreshold = failureRateThreshold;
            return this;
        }

        public Builder slidingWindowSize(int slidingWindowSize) {
            this.slidingWindowSize = slidingWindowSize;
            return this;
        }

        public Builder minimumNumberOfCalls(int minimumNumberOfCalls) {
            this.minimumNumberOfCalls = minimumNumberOfCalls;
            return this;
        }

        public Builder waitDurationInOpenState(Duration waitDurationInOpenState) {
            this.waitDurationInOpenState = waitDurationInOpenState;
            return this;
        }

        public Builder permittedNumberOfCallsInHalfOpenState(int permittedNumberOfCallsInHalfOpenState) {
            this.permittedNumberOfCallsInHalfOpenState = permittedNumberOfCallsInHalfOpenState;
            return this;
        }

        public CircuitBreakerSettings build() {
            return new CircuitBreakerSettings(failureRateThreshold, slidingWindowSize, minimumNumberOfCalls,
                    waitDurationInOpenState, permittedNumberOfCallsInHalfOpenState);
        }

    }
}
