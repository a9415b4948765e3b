package dev.specula.sample;

import java.net.URI;
import java.time.Duration;

import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * Overflow to a remote OpenAI-compatible endpoint, {@code specula.overflow.*}: where chat
 * completions and legacy completions go when the local engine cannot take them (see
 * {@link ChatOverflow}, {@link CompletionOverflow}).
 */
@ConfigurationProperties(OverflowProperties.CONFIG_PREFIX)
public class OverflowProperties {

    public static final String CONFIG_PREFIX = "specula.overflow";

    /** Whether requests may overflow; off by default, when nothing changes. */
    private boolean enabled;

    /**
     * The remote endpoint's base URL, up to and including {@code /v1} (e.g.
     * {@code http://vllm:8000/v1}); required when enabled.
     */
    private String baseUrl;

    /**
     * Bearer token sent to the remote; unset sends the placeholder {@code unused}, which
     * an endpoint without keys (vLLM without --api-key) ignores.
     */
    private String apiKey;

    /**
     * The remote model's name: sent in every overflowed request, and a request whose
     * {@code model} is this name goes to the remote at once; required when enabled.
     */
    private String model;

    /** Longest one remote call may take (a stream: the whole stream). */
    private Duration timeout = Duration.ofMinutes(10);

    /** The circuit breaker in front of the remote. */
    private final Breaker circuitBreaker = new Breaker();

    /**
     * Fails at startup, naming the property, when overflow is enabled without a usable
     * base URL or model.
     */
    void check() {
        if (!enabled) {
            return;
        }
        if (baseUrl == null || baseUrl.isBlank()) {
            throw invalid("base-url", baseUrl, "the remote's URL, e.g. http://vllm:8000/v1");
        }
        URI uri;
        try {
            uri = URI.create(baseUrl);
        }
        catch (IllegalArgumentException ex) {
            throw invalid("base-url", baseUrl, "a valid http(s) URL");
        }
        if (!"http".equals(uri.getScheme()) && !"https".equals(uri.getScheme()) || uri.getHost() == null) {
            throw invalid("base-url", baseUrl, "an http(s) URL with a host");
        }
        if (model == null || model.isBlank()) {
            throw invalid("model", model, "the remote model's name");
        }
        if (timeout == null || timeout.isNegative() || timeout.isZero()) {
            throw invalid("timeout", timeout, "a positive duration");
        }
        circuitBreaker.check();
    }

    static IllegalStateException invalid(String property, Object value, String expected) {
        return new IllegalStateException("Invalid " + CONFIG_PREFIX + "." + property + " (" + value + "): expected "
                + expected + " when " + CONFIG_PREFIX + ".enabled is true");
    }

    public boolean isEnabled() {
        return enabled;
    }

    public void setEnabled(boolean enabled) {
        this.enabled = enabled;
    }

    public String getBaseUrl() {
        return baseUrl;
    }

    public void setBaseUrl(String baseUrl) {
        this.baseUrl = baseUrl;
    }

    public String getApiKey() {
        return apiKey;
    }

    public void setApiKey(String apiKey) {
        this.apiKey = apiKey;
    }

    public String getModel() {
        return model;
    }

    public void setModel(String model) {
        this.model = model;
    }

    public Duration getTimeout() {
        return timeout;
    }

    public void setTimeout(Duration timeout) {
        this.timeout = timeout;
    }

    public Breaker getCircuitBreaker() {
        return circuitBreaker;
    }

    /**
     * {@code specula.overflow.circuit-breaker.*}: when the remote counts as dead. While
     * open, requests the local engine cannot take get its own 429 or 503 again.
     */
    public static class Breaker {

        /** Percentage of failed remote calls, over the window, that opens the breaker. */
        private float failureRateThreshold = 50;

        /** Remote calls counted (the last ones). */
        private int slidingWindowSize = 20;

        /** Calls needed before the failure rate is computed. */
        private int minimumNumberOfCalls = 5;

        /**
         * How long the breaker stays open before it lets a few trial calls through.
         */
        private Duration waitDurationInOpenState = Duration.ofSeconds(30);

        void check() {
            if (!(failureRateThreshold > 0 && failureRateThreshold <= 100)) {
                throw invalid("circuit-breaker.failure-rate-threshold", failureRateThreshold, "a value in (0, 100]");
            }
            if (slidingWindowSize < 1) {
                throw invalid("circuit-breaker.sliding-window-size", slidingWindowSize, "at least 1");
            }
            if (minimumNumberOfCalls < 1) {
                throw invalid("circuit-breaker.minimum-number-of-calls", minimumNumberOfCalls, "at least 1");
            }
            if (waitDurationInOpenState == null || waitDurationInOpenState.isNegative()
                    || waitDurationInOpenState.isZero()) {
                throw invalid("circuit-breaker.wait-duration-in-open-state", waitDurationInOpenState,
                        "a positive duration");
            }
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
