package dev.specula.sample;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.InitializingBean;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.DeprecatedConfigurationProperty;
import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyValueException;
import org.springframework.util.unit.DataSize;

/**
 * The gateway's own settings, {@code specula.gateway.*}: API keys, request limits and
 * rate limits. Checked when bound ({@link #validate()}): a bad value fails the start,
 * naming the property.
 */
@ConfigurationProperties(GatewayProperties.CONFIG_PREFIX)
public class GatewayProperties implements InitializingBean {

    public static final String CONFIG_PREFIX = "specula.gateway";

    /** Default of {@code max-request-bytes}. */
    static final DataSize DEFAULT_MAX_REQUEST_BYTES = DataSize.ofMegabytes(1);

    /**
     * Largest request body accepted; larger ones are answered 413 before they are parsed
     * or reach the model. Null: {@link #maxRequestSize}, else 1MB.
     */
    private DataSize maxRequestBytes;

    /** The former name of {@link #maxRequestBytes}, still read when that is unset. */
    private DataSize maxRequestSize;

    /**
     * Most tokens a prompt may have (the messages as the chat template renders them);
     * more is a 400 {@code context_length_exceeded}, refused before tokenizing when the
     * characters alone prove it. 0: the model's context length.
     */
    private int maxPromptTokens;

    /**
     * API keys clients send as {@code Authorization: Bearer <key>}. With none here, in
     * {@link #apiKeysFile} or in the admin keys, the gateway is open.
     */
    private List<String> apiKeys = new ArrayList<>();

    /**
     * A file of more API keys, one a line (blank lines and {@code #} comments skipped).
     */
    private Path apiKeysFile;

    /**
     * Keys that may also call the Actuator's write operations (such as
     * {@code DELETE /actuator/specula}); they are API keys too.
     */
    private List<String> adminApiKeys = new ArrayList<>();

    /** A file of more admin keys, one a line. */
    private Path adminApiKeysFile;

    /** Per-caller rate limits. */
    private final RateLimit rateLimit = new RateLimit();

    /** The body limit in force: {@code max-request-bytes}, its former name, or 1MB. */
    public DataSize resolvedMaxRequestBytes() {
        if (maxRequestBytes != null) {
            return maxRequestBytes;
        }
        return maxRequestSize != null ? maxRequestSize : DEFAULT_MAX_REQUEST_BYTES;
    }

    @Override
    public void afterPropertiesSet() {
        validate();
        if (maxRequestSize != null) {
            LoggerFactory.getLogger(GatewayProperties.class)
                .warn("{}.max-request-size is deprecated: rename it {}.max-request-bytes{}", CONFIG_PREFIX,
                        CONFIG_PREFIX, maxRequestBytes != null ? " (which is set too, and wins)" : "");
        }
    }

    /**
     * Fails on a value out of range, naming the property and what it accepts.
     * @throws InvalidConfigurationPropertyValueException for the first bad value
     */
    void validate() {
        checkSize("max-request-bytes", maxRequestBytes);
        checkSize("max-request-size", maxRequestSize);
        if (maxPromptTokens < 0) {
            throw new InvalidConfigurationPropertyValueException(CONFIG_PREFIX + ".max-prompt-tokens", maxPromptTokens,
                    "Use an integer >= 1, or 0 for the model's context length");
        }
        rateLimit.validate();
    }

    private static void checkSize(String name, DataSize size) {
        if (size != null && size.toBytes() < 1) {
            throw new InvalidConfigurationPropertyValueException(CONFIG_PREFIX + "." + name, size,
                    "Use a size of at least 1B, such as 1MB or 512KB");
        }
    }

    public DataSize getMaxRequestBytes() {
        return maxRequestBytes;
    }

    public void setMaxRequestBytes(DataSize maxRequestBytes) {
        this.maxRequestBytes = maxRequestBytes;
    }

    @Deprecated
    @DeprecatedConfigurationProperty(replacement = CONFIG_PREFIX + ".max-request-bytes", since = "0.1.0")
    public DataSize getMaxRequestSize() {
        return maxRequestSize;
    }

    @Deprecated
    public void setMaxRequestSize(DataSize maxRequestSize) {
        this.maxRequestSize = maxRequestSize;
    }

    public int getMaxPromptTokens() {
        return maxPromptTokens;
    }

    public void setMaxPromptTokens(int maxPromptTokens) {
        this.maxPromptTokens = maxPromptTokens;
    }

    public List<String> getApiKeys() {
        return apiKeys;
    }

    public void setApiKeys(List<String> apiKeys) {
        this.apiKeys = apiKeys;
    }

    public Path getApiKeysFile() {
        return apiKeysFile;
    }

    public void setApiKeysFile(Path apiKeysFile) {
        this.apiKeysFile = apiKeysFile;
    }

    public List<String> getAdminApiKeys() {
        return adminApiKeys;
    }

    public void setAdminApiKeys(List<String> adminApiKeys) {
        this.adminApiKeys = adminApiKeys;
    }

    public Path getAdminApiKeysFile() {
        return adminApiKeysFile;
    }

    public void setAdminApiKeysFile(Path adminApiKeysFile) {
        this.adminApiKeysFile = adminApiKeysFile;
    }

    public RateLimit getRateLimit() {
        return rateLimit;
    }

    /**
     * {@code specula.gateway.rate-limit.*}: limits per API key, or per client address
     * when no keys are configured; 0 = no limit.
     */
    public static class RateLimit {

        /** Requests a caller may send per minute (every {@code /v1} request counts). */
        private long requestsPerMinute;

        /**
         * Tokens (prompt + completion) a caller may use per minute: a request reserves
         * its prompt (estimated) and {@code max_tokens} when admitted, and is charged its
         * real usage when it ends.
         */
        private long tokensPerMinute;

        void validate() {
            for (String name : new String[] { "requests-per-minute", "tokens-per-minute" }) {
                long value = name.startsWith("requests") ? requestsPerMinute : tokensPerMinute;
                if (value < 0) {
                    throw new InvalidConfigurationPropertyValueException(CONFIG_PREFIX + ".rate-limit." + name, value,
                            "Use an integer >= 1, or 0 for no limit");
                }
            }
        }

        public long getRequestsPerMinute() {
            return requestsPerMinute;
        }

        public void setRequestsPerMinute(long requestsPerMinute) {
            this.requestsPerMinute = requestsPerMinute;
        }

        public long getTokensPerMinute() {
            return tokensPerMinute;
        }

        public void setTokensPerMinute(long tokensPerMinute) {
            this.tokensPerMinute = tokensPerMinute;
        }

    }

}
