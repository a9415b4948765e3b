package dev.specula.sample;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import org.springframework.ai.openai.OpenAiChatModel;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The {@link ChatOverflow} bean, when {@code specula.overflow.enabled} is true: its
 * settings are checked at startup, and its circuit breaker, {@value #BREAKER}, joins
 * Resilience4j's registry when there is one (so its state shows in the metrics).
 */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(OverflowProperties.class)
class OverflowConfiguration {

    static final String BREAKER = "specula-overflow";

    /** Sent as the API key when {@code specula.overflow.api-key} is unset. */
    static final String NO_KEY = "unused";

    @Bean
    @ConditionalOnProperty(prefix = OverflowProperties.CONFIG_PREFIX, name = "enabled", havingValue = "true")
    ChatOverflow chatOverflow(OverflowProperties properties, ObjectProvider<CircuitBreakerRegistry> registries) {
        properties.check();
        OpenAiChatModel remote = OpenAiChatModel.builder()
            .options(OpenAiChatOptions.builder()
                .baseUrl(properties.getBaseUrl())
                .apiKey(properties.getApiKey() == null || properties.getApiKey().isBlank() ? NO_KEY
                        : properties.getApiKey())
                .model(properties.getModel())
                .timeout(properties.getTimeout())
                // the local engine is the fallback; the breaker decides when to stop
                // trying
                .maxRetries(0)
                .build())
            .build();
        OverflowProperties.Breaker settings = properties.getCircuitBreaker();
        CircuitBreakerConfig config = CircuitBreakerConfig.custom()
            .failureRateThreshold(settings.getFailureRateThreshold())
            .slidingWindowSize(settings.getSlidingWindowSize())
            .minimumNumberOfCalls(settings.getMinimumNumberOfCalls())
            .waitDurationInOpenState(settings.getWaitDurationInOpenState())
            .build();
        CircuitBreakerRegistry registry = registries.getIfAvailable();
        CircuitBreaker breaker = registry != null ? registry.circuitBreaker(BREAKER, config)
                : CircuitBreaker.of(BREAKER, config);
        return new ChatOverflow(remote, breaker, properties.getModel(), properties.getTimeout());
    }

}
