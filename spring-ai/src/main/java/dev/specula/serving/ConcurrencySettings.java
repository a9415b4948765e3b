package dev.specula.serving;

import java.time.Duration;

/**
 * The bulkhead: how many generations may be in progress at once, and how long a request
 * waits for a slot.
 *
 * @param maxConcurrentGenerations generations in progress at once (running, or waiting in
 * the batch); more get {@link ServiceBusyException}. 0, the default, derives it:
 * {@link BatchingSettings#capacity()} with batching,
 * {@value #DEFAULT_UNBATCHED_MAX_CONCURRENT_GENERATIONS} without
 * @param maxWaitForSlot how long a request waits for a free slot before it is turned
 * away, default 0 (no wait)
 */
public record ConcurrencySettings(int maxConcurrentGenerations, Duration maxWaitForSlot) {

    /**
     * Generations at once without batching, when {@code maxConcurrentGenerations} is 0.
     */
    public static final int DEFAULT_UNBATCHED_MAX_CONCURRENT_GENERATIONS = 4;

    /**
     * {@code maxConcurrentGenerations} meaning "derive it from the batching settings".
     */
    public static final int DERIVED = 0;

    public ConcurrencySettings {
        if (maxConcurrentGenerations < 0) {
            throw new IllegalArgumentException(
                    "maxConcurrentGenerations must be >= 1, or 0 to derive it, but was " + maxConcurrentGenerations);
        }
        if (maxWaitForSlot == null || maxWaitForSlot.isNegative()) {
            throw new IllegalArgumentException("maxWaitForSlot must be >= 0 but was " + maxWaitForSlot);
        }
    }

    public static ConcurrencySettings defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * Generations at once with {@code batching}: the configured value, checked, or the
     * derived one.
     * @throws IllegalArgumentException when a configured value exceeds what the batch can
     * hold (the surplus would be turned away by the batch queue, not by the bulkhead)
     */
    public int resolve(BatchingSettings batching) {
        if (maxConcurrentGenerations == DERIVED) {
            return batching.enabled() ? batching.capacity() : DEFAULT_UNBATCHED_MAX_CONCURRENT_GENERATIONS;
        }
        if (batching.enabled() && maxConcurrentGenerations > batching.capacity()) {
            throw new IllegalArgumentException("maxConcurrentGenerations must be at most maxBatchSize + queueCapacity ("
                    + batching.capacity() + ") with batching on, but was " + maxConcurrentGenerations);
        }
        return maxConcurrentGenerations;
    }

    /**
     * Builds {@link ConcurrencySettings}; every setter has the default of the record's
     * component.
     */
    public static final class Builder {

        private int maxConcurrentGenerations = DERIVED;

        private Duration maxWaitForSlot = Duration.ZERO;

        private Builder() {
        }

        public Builder maxConcurrentGenerations(int maxConcurrentGenerations) {
            this.maxConcurrentGenerations = maxConcurrentGenerations;
            return this;
        }

        public Builder maxWaitForSlot(Duration maxWaitForSlot) {
            this.maxWaitForSlot = maxWaitForSlot;
            return this;
        }

        public ConcurrencySettings build() {
            return new ConcurrencySettings(maxConcurrentGenerations, maxWaitForSlot);
        }

    }
}
