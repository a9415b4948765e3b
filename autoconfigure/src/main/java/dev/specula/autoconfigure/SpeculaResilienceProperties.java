package dev.specula.autoconfigure;

import java.time.Duration;

import org.springframework.beans.factory.InitializingBean;
import org.springframework.boot.context.properties.ConfigurationProperties;

import dev.specula.serving.CircuitBreakerSettings;
import dev.specula.serving.ConcurrencySettings;
import dev.specula.serving.GenerationService;
import dev.specula.serving.GoodputSettings;

/**
 * Fallback to plain decoding (round time limit, draft circuit breaker, goodput switch)
 * and the bulkhead. Defaults are the serving layer's:
 * {@link GenerationService#DEFAULT_ROUND_TIME_LIMIT},
 * {@link CircuitBreakerSettings#DRAFT_DEFAULTS}, {@link GoodputSettings#defaults()},
 * {@link ConcurrencySettings#defaults()}. Resilience4j instances named "specula" (circuit
 * breaker, time limiter, bulkhead) and "specula-goodput" (circuit breaker), when
 * configured under resilience4j.*, win over these.
 */
@ConfigurationProperties(SpeculaResilienceProperties.CONFIG_PREFIX)
public class SpeculaResilienceProperties implements InitializingBean {

    public static final String CONFIG_PREFIX = "specula.resilience";

    /**
     * Longest a speculative round (draft steps + one verification) may run before
     * speculation is stopped and the request goes on plainly.
     */
    private Duration roundTimeout = Duration.ofSeconds(10);

    /**
     * Generations in progress at once (running in the batch or waiting for a place); more
     * requests are turned away as busy. Unset: specula.batching.max-batch-size +
     * specula.batching.queue-capacity with batching, 4 without; when set with batching it
     * may not exceed that sum.
     */
    private Integer maxConcurrentGenerations;

    /** How long a request waits for a free generation slot before it is turned away. */
    private Duration maxWaitForSlot = Duration.ZERO;

    /**
     * Failure rate, in percent (0 exclusive to 100), of speculative requests whose draft
     * failed or timed out that opens the draft circuit breaker.
     */
    private float failureRateThreshold = 50;

    /** Speculative requests the draft circuit breaker's failure rate is computed over. */
    private int slidingWindowSize = 20;

    /**
     * Least requests in the draft circuit breaker's window before its failure rate
     * counts.
     */
    private int minimumNumberOfCalls = 5;

    /**
     * How long speculation stays off once the draft circuit breaker opens, before it is
     * probed again (half-open).
     */
    private Duration waitDurationInOpenState = Duration.ofSeconds(30);

    /** Goodput switch: speculation off while it decodes slower than plain decoding. */
    private final Goodput goodput = new Goodput();

    public Duration getRoundTimeout() {
        return roundTimeout;
    }

    public void setRoundTimeout(Duration roundTimeout) {
        this.roundTimeout = roundTimeout;
    }

    public Integer getMaxConcurrentGenerations() {
        return maxConcurrentGenerations;
    }

    public void setMaxConcurrentGenerations(Integer maxConcurrentGenerations) {
        this.maxConcurrentGenerations = maxConcurrentGenerations;
    }

    public Duration getMaxWaitForSlot() {
        return maxWaitForSlot;
    }

    public void setMaxWaitForSlot(Duration maxWaitForSlot) {
        this.maxWaitForSlot = maxWaitForSlot;
    }

    public float getFailureRateThreshold() {
        return failureRateThreshold;
    }

    public void setFailureRateThreshold(float failureRateThreshold) {
        this.failureRateThreshold = failureRateThreshold;
    }

    public int getSlidingWindowSize() {
        return slidingWindowSize;
    }

    public void setSlidingWindowSize(int slidingWindowSize) {
        this.slidingWindowSize = slidingWindowSize;
    }

    public int getMinimumNumberOfCalls() {
        return minimumNumberOfCalls;
    }

    public void setMinimumNumberOfCalls(int minimumNumberOfCalls) {
        this.minimumNumberOfCalls = minimumNumberOfCalls;
    }

    public Duration getWaitDurationInOpenState() {
        return waitDurationInOpenState;
    }

    public void setWaitDurationInOpenState(Duration waitDurationInOpenState) {
        this.waitDurationInOpenState = waitDurationInOpenState;
    }

    public Goodput getGoodput() {
        return goodput;
    }

    @Override
    public void afterPropertiesSet() {
        String prefix = CONFIG_PREFIX + ".";
        PropertyChecks.requirePositive(prefix + "round-timeout", roundTimeout, "a positive duration, e.g. 10s");
        if (maxConcurrentGenerations != null) {
            PropertyChecks.requireAtLeast(prefix + "max-concurrent-generations", maxConcurrentGenerations, 1,
                    "an integer >= 1, or unset to derive it from specula.batching.*");
        }
        PropertyChecks.requireNotNegative(prefix + "max-wait-for-slot", maxWaitForSlot,
                "a duration >= 0 (0 = do not wait)");
        PropertyChecks.requirePercentage(prefix + "failure-rate-threshold", failureRateThreshold);
        PropertyChecks.requireAtLeast(prefix + "sliding-window-size", slidingWindowSize, 1, "an integer >= 1");
        PropertyChecks.requireAtLeast(prefix + "minimum-number-of-calls", minimumNumberOfCalls, 1, "an integer >= 1");
        PropertyChecks.requireAtLeastOneMilli(prefix + "wait-duration-in-open-state", waitDurationInOpenState);
        String goodputPrefix = prefix + "goodput.";
        PropertyChecks.requireAtLeast(goodputPrefix + "probe-interval", goodput.getProbeInterval(), 1,
                "an integer >= 1");
        PropertyChecks.requireAtLeast(goodputPrefix + "min-tokens", goodput.getMinTokens(), 1, "an integer >= 1");
        PropertyChecks.requirePercentage(goodputPrefix + "failure-rate-threshold", goodput.getFailureRateThreshold());
        PropertyChecks.requireAtLeast(goodputPrefix + "sliding-window-size", goodput.getSlidingWindowSize(), 1,
                "an integer >= 1");
        PropertyChecks.requireAtLeast(goodputPrefix + "minimum-number-of-calls", goodput.getMinimumNumberOfCalls(), 1,
                "an integer >= 1");
        PropertyChecks.requireAtLeastOneMilli(goodputPrefix + "wait-duration-in-open-state",
                goodput.getWaitDurationInOpenState());
    }

    /** The draft circuit breaker as the service takes it. */
    public CircuitBreakerSettings toDraftBreakerSettings() {
        return CircuitBreakerSettings.builder(CircuitBreakerSettings.DRAFT_DEFAULTS)
            .failureRateThreshold(failureRateThreshold)
            .slidingWindowSize(slidingWindowSize)
            .minimumNumberOfCalls(minimumNumberOfCalls)
            .waitDurationInOpenState(waitDurationInOpenState)
            .build();
    }

    /** The goodput switch and its breaker as the service takes them. */
    public GoodputSettings toGoodputSettings() {
        CircuitBreakerSettings breaker = CircuitBreakerSettings.builder(CircuitBreakerSettings.GOODPUT_DEFAULTS)
            .failureRateThreshold(goodput.getFailureRateThreshold())
            .slidingWindowSize(goodput.getSlidingWindowSize())
            .minimumNumberOfCalls(goodput.getMinimumNumberOfCalls())
            .waitDurationInOpenState(goodput.getWaitDurationInOpenState())
            .build();
        return GoodputSettings.builder()
            .enabled(goodput.isEnabled())
            .probeInterval(goodput.getProbeInterval())
            .minTokens(goodput.getMinTokens())
            .breaker(breaker)
            .build();
    }

    /** The bulkhead as the service takes it (unset maximum: derived there). */
    public ConcurrencySettings toConcurrencySettings() {
        return ConcurrencySettings.builder()
            .maxConcurrentGenerations(
                    maxConcurrentGenerations == null ? ConcurrencySettings.DERIVED : maxConcurrentGenerations)
            .maxWaitForSlot(maxWaitForSlot)
            .build();
    }

    /** Switches speculation off while it decodes slower than plain decoding. */
    public static class Goodput {

        /**
         * Whether speculation is switched off while measured goodput falls below plain
         * decoding's.
         */
        private boolean enabled = true;

        /**
         * Speculative requests between two plain probes that re-measure plain decoding's
         * speed.
         */
        private int probeInterval = 50;

        /** Shortest answer (tokens) whose speed is measured. */
        private int minTokens = 8;

        /**
         * Rate, in percent (0 exclusive to 100), of speculative requests slower than
         * plain decoding that switches speculation off.
         */
        private float failureRateThreshold = 50;

        /** Speculative requests the goodput switch's rate is computed over. */
        private int slidingWindowSize = 10;

        /** Least measured requests in the window before the goodput switch may act. */
        private int minimumNumberOfCalls = 6;

        /**
         * How long speculation stays off once it was found slower, before it is probed
         * again.
         */
        private Duration waitDurationInOpenState = Duration.ofSeconds(60);

        public boolean isEnabled() {
            return enabled;
        }

        public void setEnabled(boolean enabled) {
            this.enabled = enabled;
        }

        public int getProbeInterval() {
            return probeInterval;
        }

        public void setProbeInterval(int probeInterval) {
            this.probeInterval = probeInterval;
        }

        public int getMinTokens() {
            return minTokens;
        }

        public void setMinTokens(int minTokens) {
            this.minTokens = minTokens;
        }

        public float getFailureRateThreshold() {
            return failureRateThreshold;
        }

        public void setFailureRateThreshold(float failureRateThreshold) {
            this.failureRateThreshold = failureRateThreshold;
        }

        public int getSlidingWindowSize() {
            return slidingWindowSize;
        }

        public void setSlidingWindowSize(int slidingWindowSize) {
            this.slidingWindowSize = slidingWindowSize;
        }

        public int getMinimumNumberOfCalls() {
            return minimumNumberOfCalls;
        }

        public void setMinimumNumberOfCalls(int minimumNumberOfCalls) {
            this.minimumNumberOfCalls = minimumNumberOfCalls;
        }

        public Duration getWaitDurationInOpenState() {
            return waitDurationInOpenState;
        }

        public void setWaitDurationInOpenState(Duration waitDurationInOpenState) {
            this.waitDurationInOpenState = waitDurationInOpenState;
        }

    }

}
