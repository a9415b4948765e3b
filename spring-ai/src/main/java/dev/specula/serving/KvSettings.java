package dev.specula.serving;

import java.time.Duration;

import dev.specula.engine.Engine;
import dev.specula.kv.KvBudget;

/**
 * The bound on KV memory: every request reserves its worst-case KV (prompt + max new
 * tokens, in the target and the draft) before its first model call, and all of them
 * together, with the prefix cache, stay within {@code maxBytes}.
 *
 * @param maxBytes KV bytes of all requests together, prefix cache included; 0, the
 * default, derives it: {@link KvBudget#defaultMaxBytes()} (a quarter of physical memory,
 * at most half the JVM's direct-memory limit)
 * @param maxWait longest a request that fits waits, first in line, for running ones to
 * free the memory before it is turned away as busy; default
 * {@link Engine.Settings#DEFAULT_KV_MAX_WAIT}
 */
public record KvSettings(long maxBytes, Duration maxWait) {

    /** {@code maxBytes} meaning "derive it from the machine". */
    public static final long DERIVED = 0;

    public KvSettings {
        if (maxBytes < 0) {
            throw new IllegalArgumentException("maxBytes must be >= 1, or 0 to derive it, but was " + maxBytes);
        }
        if (maxWait == null || maxWait.isNegative()) {
            throw new IllegalArgumentException("maxWait must be >= 0 but was " + maxWait);
        }
    }

    public static KvSettings defaults() {
        return new KvSettings(DERIVED, Engine.Settings.DEFAULT_KV_MAX_WAIT);
    }

    /** The cap in bytes: the configured one, or the derived one. */
    public long resolvedMaxBytes() {
        return maxBytes == DERIVED ? KvBudget.defaultMaxBytes() : maxBytes;
    }

}
