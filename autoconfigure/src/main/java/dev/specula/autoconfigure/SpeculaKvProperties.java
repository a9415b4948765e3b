package dev.specula.autoconfigure;

import java.time.Duration;

import org.springframework.beans.factory.InitializingBean;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

import dev.specula.serving.KvSettings;

/**
 * The bound on KV memory: each request reserves its worst-case KV (prompt + max new
 * tokens, in the target and the draft) before its first model call; all of them together,
 * with the prefix cache (evicted first), stay within {@code max-bytes}. Defaults are
 * {@link KvSettings#defaults()}'s.
 */
@ConfigurationProperties(SpeculaKvProperties.CONFIG_PREFIX)
public class SpeculaKvProperties implements InitializingBean {

    public static final String CONFIG_PREFIX = "specula.kv";

    /**
     * KV cache memory of all requests together, prefix cache included, e.g. 2GB (binary
     * units: 1MB = 1024KB). Unset derives it: a quarter of physical memory, at most half
     * the JVM's direct-memory limit.
     */
    private DataSize maxBytes;

    /**
     * How long a request that fits waits, first in line, for running requests to free KV
     * memory before it is turned away as busy.
     */
    private Duration maxWait = Duration.ofSeconds(30);

    public DataSize getMaxBytes() {
        return maxBytes;
    }

    public void setMaxBytes(DataSize maxBytes) {
        this.maxBytes = maxBytes;
    }

    public Duration getMaxWait() {
        return maxWait;
    }

    public void setMaxWait(Duration maxWait) {
        this.maxWait = maxWait;
    }

    @Override
    public void afterPropertiesSet() {
        String prefix = CONFIG_PREFIX + ".";
        if (maxBytes != null && maxBytes.toBytes() < 1) {
            throw PropertyChecks.invalid(prefix + "max-bytes", maxBytes,
                    "a size >= 1B, e.g. 2GB (unset derives it from the machine's memory)");
        }
        PropertyChecks.requireNotNegative(prefix + "max-wait", maxWait, "a duration >= 0, e.g. 30s");
    }

    /** These properties as the service takes them. */
    public KvSettings toSettings() {
        return new KvSettings(maxBytes == null ? KvSettings.DERIVED : maxBytes.toBytes(), maxWait);
    }

}
