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
     * Draft circuit breaker: speculation off while too many speculative requests' drafts
     * fail or time out.
     */
    private final Breaker draftBreaker = new Breaker(CircuitBreakerSettings.DRAFT_DEFAULTS);

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

    public Breaker getDraftBreaker() {
        return draftBreaker;
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
        draftBreaker.check(prefix + "draft-breaker.");
        String goodputPrefix = prefix + "goodput.";
        PropertyChecks.requireAtLeast(goodputPrefix + "probe-interval", goodput.getProbeInterval(), 1,
                "an integer >= 1");
        PropertyChecks.requireAtLeast(goodputPrefix + "min-tokens", goodput.getMinTokens(), 1, "an integer >= 1");
        goodput.check(goodputPrefix);
    }

    /** The draft circuit breaker as the service takes it. */
    public CircuitBreakerSettings toDraftBreakerSettings() {
        return draftBreaker.toSettings();
    }

    /** The goodput switch and its breaker as the service takes them. */
    public GoodputSettings toGoodputSettings() {
        return GoodputSettings.builder()
            .enabled(goodput.isEnabled())
            .probeInterval(goodput.getProbeInterval())
            .minTokens(goodput.getMinTokens())
            .breaker(goodput.toSettings())
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

    /**
     * A circuit breaker's four settings, for the draft breaker and the goodput switch
     * alike; defaults from the serving layer's {@link CircuitBreakerSettings}.
     */
    public static class Breaker {

        /**
         * Rate, in percent (0 exclusive to 100), of failed speculative requests in the
         * window that opens the breaker: the draft failed or timed out (draft breaker),
         * or decoded slower than plain decoding (goodput switch).
         */
        private float failureRateThreshold;

        /** Speculative requests the breaker's failure rate is computed over. */
        private int slidingWindowSize;

        /** Least requests in the breaker's window before its failure rate counts. */
        private int minimumNumberOfCalls;

        /**
         * How long speculation stays off once the breaker opens, before it is probed
         * again (half-open).
         */
        private Duration waitDurationInOpenState;

        /** Where the four settings start, and the half-open probes. */
        private final CircuitBreakerSettings defaults;

        /** A breaker with the draft breaker's defaults. */
        public Breaker() {
            this(CircuitBreakerSettings.DRAFT_DEFAULTS);
        }

        protected Breaker(CircuitBreakerSettings defaults) {
            this.defaults = defaults;
            this.failureRateThreshold = defaults.failureRateThreshold();
            this.slidingWindowSize = defaults.slidingWindowSize();
            this.minimumNumberOfCalls = defaults.minimumNumberOfCalls();
            this.waitDurationInOpenState = defaults.waitDurationInOpenState();
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

        /**
         * Checks the four settings, naming them under {@code prefix} (ends with a dot).
         */
        void check(String prefix) {
            PropertyChecks.requirePercentage(prefix + "failure-rate-threshold", failureRateThreshold);
            PropertyChecks.requireAtLeast(prefix + "sliding-window-size", slidingWindowSize, 1, "an integer >= 1");
            PropertyChecks.requireAtLeast(prefix + "minimum-number-of-calls", minimumNumberOfCalls, 1,
                    "an integer >= 1");
            PropertyChecks.requireAtLeastOneMilli(prefix + "wait-duration-in-open-state", waitDurationInOpenState);
        }

        /** This breaker as the service takes it. */
        CircuitBreakerSettings toSettings() {
            return CircuitBreakerSettings.builder(defaults)
                .failureRateThreshold(failureRateThreshold)
                .slidingWindowSize(slidingWindowSize)
                .minimumNumberOfCalls(minimumNumberOfCalls)
                .waitDurationInOpenState(waitDurationInOpenState)
                .build();
        }

    }

    /**
     * Switches speculation off while it decodes slower than plain decoding; its breaker's
     * settings default to {@link CircuitBreakerSettings#GOODPUT_DEFAULTS}.
     */
    public static class Goodput extends Breaker {

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

        public Goodput() {
            super(CircuitBreakerSettings.GOODPUT_DEFAULTS);
        }

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

    }

}
