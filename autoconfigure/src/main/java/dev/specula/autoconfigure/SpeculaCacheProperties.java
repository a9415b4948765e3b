package dev.specula.autoconfigure;

import java.time.Duration;

import org.springframework.beans.factory.InitializingBean;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

import dev.specula.serving.GenerationService;
import dev.specula.serving.ResponseCacheSettings;

/**
 * Specula's two caches: the response cache (whole answers to deterministic requests,
 * defaults {@link ResponseCacheSettings#defaults()}) and the prefix cache (the KV of
 * prompt prefixes shared across requests, default
 * {@link GenerationService#DEFAULT_PREFIX_CACHE_BYTES}).
 */
@ConfigurationProperties(SpeculaCacheProperties.CONFIG_PREFIX)
public class SpeculaCacheProperties implements InitializingBean {

    public static final String CONFIG_PREFIX = "specula.cache";

    /** Response cache of deterministic requests (temperature 0, or a fixed seed). */
    private final Response response = new Response();

    /** Prefix cache: KV of prompt prefixes reused across requests. */
    private final Prefix prefix = new Prefix();

    public Response getResponse() {
        return response;
    }

    public Prefix getPrefix() {
        return prefix;
    }

    @Override
    public void afterPropertiesSet() {
        String name = CONFIG_PREFIX + ".";
        PropertyChecks.requireAtLeast(name + "response.maximum-size", response.getMaximumSize(), 0,
                "an integer >= 0 (0 caches nothing)");
        PropertyChecks.requirePositive(name + "response.time-to-live", response.getTimeToLive(),
                "a positive duration, e.g. 10m");
        if (prefix.getSize() == null || prefix.getSize().isNegative()) {
            throw PropertyChecks.invalid(name + "prefix.size", prefix.getSize(), "a size >= 0, e.g. 64MB (0 = off)");
        }
    }

    /** The response cache as the service takes it. */
    public ResponseCacheSettings toResponseCacheSettings() {
        return ResponseCacheSettings.builder()
            .enabled(response.isEnabled())
            .maximumSize(response.getMaximumSize())
            .timeToLive(response.getTimeToLive())
            .build();
    }

    /** Response cache of deterministic requests. */
    public static class Response {

        /** Whether deterministic answers are cached. */
        private boolean enabled = true;

        /** Most cached answers; 0 caches nothing. */
        private long maximumSize = 1000;

        /** How long an answer stays cached after it was generated. */
        private Duration timeToLive = Duration.ofMinutes(10);

        public boolean isEnabled() {
            return enabled;
        }

        public void setEnabled(boolean enabled) {
            this.enabled = enabled;
        }

        public long getMaximumSize() {
            return maximumSize;
        }

        public void setMaximumSize(long maximumSize) {
            this.maximumSize = maximumSize;
        }

        public Duration getTimeToLive() {
            return timeToLive;
        }

        public void setTimeToLive(Duration timeToLive) {
            this.timeToLive = timeToLive;
        }

    }

    /** Prefix cache of prompt KV. */
    public static class Prefix {

        /**
         * Memory for the KV of shared prompt prefixes reused across requests; 0 turns the
         * prefix cache off.
         */
        private DataSize size = DataSize.ofMegabytes(64);

        public DataSize getSize() {
            return size;
        }

        public void setSize(DataSize size) {
            this.size = size;
        }

    }

}
