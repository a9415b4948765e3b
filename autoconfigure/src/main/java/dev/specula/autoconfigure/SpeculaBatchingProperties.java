package dev.specula.autoconfigure;

import java.time.Duration;

import org.springframework.beans.factory.InitializingBean;
import org.springframework.boot.context.properties.ConfigurationProperties;

import dev.specula.serving.BatchingSettings;

/**
 * Continuous batching: whether concurrent requests are stepped together (one ONNX Runtime
 * call per step for all of them), how many, how long the first waits for others, and on
 * which path (padded rows, or EMS-SD's unpadded single row). Defaults are
 * {@link BatchingSettings#defaults()}'s.
 */
@ConfigurationProperties(SpeculaBatchingProperties.CONFIG_PREFIX)
public class SpeculaBatchingProperties implements InitializingBean {

    public static final String CONFIG_PREFIX = "specula.batching";

    /**
     * Whether concurrent requests are stepped together, one ONNX Runtime call per step
     * for all of them (continuous batching).
     */
    private boolean enabled = true;

    /** Requests stepped together. */
    private int maxBatchSize = 8;

    /** Requests waiting for a place in the batch; more are turned away as busy. */
    private int queueCapacity = 64;

    /** How long a first request waits for others to start with it. */
    private Duration maxWait = Duration.ofMillis(2);

    /**
     * Batch path: unpadded (EMS-SD, needs the target's model_packed.onnx), padded (any
     * export), or auto (unpadded when the packed graph is there).
     */
    private BatchPath path = BatchPath.AUTO;

    public boolean isEnabled() {
        return enabled;
    }

    public void setEnabled(boolean enabled) {
        this.enabled = enabled;
    }

    public int getMaxBatchSize() {
        return maxBatchSize;
    }

    public void setMaxBatchSize(int maxBatchSize) {
        this.maxBatchSize = maxBatchSize;
    }

    public int getQueueCapacity() {
        return queueCapacity;
    }

    public void setQueueCapacity(int queueCapacity) {
        this.queueCapacity = queueCapacity;
    }

    public Duration getMaxWait() {
        return maxWait;
    }

    public void setMaxWait(Duration maxWait) {
        this.maxWait = maxWait;
    }

    public BatchPath getPath() {
        return path;
    }

    public void setPath(BatchPath path) {
        this.path = path;
    }

    @Override
    public void afterPropertiesSet() {
        String prefix = CONFIG_PREFIX + ".";
        PropertyChecks.requireAtLeast(prefix + "max-batch-size", maxBatchSize, 1, "an integer >= 1");
        PropertyChecks.requireAtLeast(prefix + "queue-capacity", queueCapacity, 1, "an integer >= 1");
        PropertyChecks.requireNotNegative(prefix + "max-wait", maxWait, "a duration >= 0, e.g. 2ms");
    }

    /** These properties as the service takes them. */
    public BatchingSettings toSettings() {
        return BatchingSettings.builder()
            .enabled(enabled)
            .maxBatchSize(maxBatchSize)
            .queueCapacity(queueCapacity)
            .maxWait(maxWait)
            .build();
    }

    /** How batched requests share one ONNX Runtime call. */
    public enum BatchPath {

        /** Unpadded when the target directory has model_packed.onnx, else padded. */
        AUTO,
        /**
         * One row per request, new tokens right-padded, KV left-padded: any export with
         * attention_mask.
         */
        PADDED,
        /**
         * EMS-SD: every request's tokens in one row, no padding: a target exported
         * --packed (model_packed.onnx).
         */
        UNPADDED

    }

}
