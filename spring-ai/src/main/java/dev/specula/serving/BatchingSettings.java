package dev.specula.serving;

import java.time.Duration;

import dev.specula.engine.Engine;

/**
 * Continuous batching: whether concurrent requests are stepped together by a
 * {@link Engine#submit} (one ONNX Runtime call per step for all of them), and its sizes.
 *
 * @param enabled whether requests are batched, default true; false runs each on its
 * caller's thread
 * @param maxBatchSize requests stepped together, default {@value #DEFAULT_MAX_BATCH_SIZE}
 * @param queueCapacity requests waiting for a place in the batch, default
 * {@value #DEFAULT_QUEUE_CAPACITY}
 * @param maxWait how long a first request waits for others to start with it, default
 * {@link #DEFAULT_MAX_WAIT}
 */
public record BatchingSettings(boolean enabled, int maxBatchSize, int queueCapacity, Duration maxWait) {

    public static final int DEFAULT_MAX_BATCH_SIZE = Engine.Settings.DEFAULT_MAX_BATCH_SIZE;

    public static final int DEFAULT_QUEUE_CAPACITY = Engine.Settings.DEFAULT_QUEUE_CAPACITY;

    public static final Duration DEFAULT_MAX_WAIT = Engine.Settings.DEFAULT_MAX_BATCH_WAIT;

    public BatchingSettings {
        if (maxBatchSize < 1) {
            throw new IllegalArgumentException("maxBatchSize must be >= 1 but was " + maxBatchSize);
        }
        if (queueCapacity < 1) {
            throw new IllegalArgumentException("queueCapacity must be >= 1 but was " + queueCapacity);
        }
        if (maxWait == null || maxWait.isNegative()) {
            throw new IllegalArgumentException("maxWait must be >= 0 but was " + maxWait);
        }
    }

    public static BatchingSettings defaults() {
        return builder().build();
    }

    /** No batching: every request decodes on its caller's thread. */
    public static BatchingSettings disabled() {
        return builder().enabled(false).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Generations the batch holds at once: running plus queued. */
    public int capacity() {
        return maxBatchSize + queueCapacity;
    }

    /**
     * Builds {@link BatchingSettings}; every setter has the default of the record's
     * component.
     */
    public static final class Builder {

        private boolean enabled = true;

        private int maxBatchSize = DEFAULT_MAX_BATCH_SIZE;

        private int queueCapacity = DEFAULT_QUEUE_CAPACITY;

        private Duration maxWait = DEFAULT_MAX_WAIT;

        private Builder() {
        }

        public Builder enabled(boolean enabled) {
            this.enabled = enabled;
            return this;
        }

        public Builder maxBatchSize(int maxBatchSize) {
            this.maxBatchSize = maxBatchSize;
            return this;
        }

        public Builder queueCapacity(int queueCapacity) {
            this.queueCapacity = queueCapacity;
            return this;
        }

        public Builder maxWait(Duration maxWait) {
            this.maxWait = maxWait;
            return this;
        }

        public BatchingSettings build() {
            return new BatchingSettings(enabled, maxBatchSize, queueCapacity, maxWait);
        }

    }
}
