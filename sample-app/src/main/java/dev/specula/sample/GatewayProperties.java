package dev.specula.sample;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

/** The gateway's own settings, {@code specula.gateway.*}. */
@ConfigurationProperties(GatewayProperties.CONFIG_PREFIX)
public class GatewayProperties {

    public static final String CONFIG_PREFIX = "specula.gateway";

    /**
     * Largest request body accepted; larger ones are answered 413 before they are parsed
     * or reach the model. The prompt's own limit, in characters, is the ChatModel's.
     */
    private DataSize maxRequestSize = DataSize.ofMegabytes(4);

    public DataSize getMaxRequestSize() {
        return maxRequestSize;
    }

    public void setMaxRequestSize(DataSize maxRequestSize) {
        this.maxRequestSize = maxRequestSize;
    }

}
