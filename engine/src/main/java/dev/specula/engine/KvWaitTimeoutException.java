package dev.specula.engine;

import java.time.Duration;

/**
 * A request that fits {@code specula.kv.max-bytes} waited, first in line, longer than
 * {@code specula.kv.max-wait} for the other requests to free enough KV memory: busy,
 * retry later (the gateway answers 429 {@code busy}, like a full batch queue).
 */
public class KvWaitTimeoutException extends RuntimeException {

    private final long neededBytes;

    private final long maxBytes;

    public KvWaitTimeoutException(long neededBytes, long maxBytes, Duration waited) {
        super("Busy: the request's " + neededBytes + " bytes of KV cache did not become free within " + waited
                + " (specula.kv.max-wait) under specula.kv.max-bytes = " + maxBytes
                + " bytes, which the running requests hold; retry later, or raise specula.kv.max-bytes");
        this.neededBytes = neededBytes;
        this.maxBytes = maxBytes;
    }

    public long getNeededBytes() {
        return neededBytes;
    }

    public long getMaxBytes() {
        return maxBytes;
    }

}
