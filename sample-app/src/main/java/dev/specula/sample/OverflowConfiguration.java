package dev.specula.sample;

import java.util.List;
import java.util.Map;

import com.openai.client.OpenAIClient;
import com.openai.client.OpenAIClientAsync;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.micrometer.observation.ObservationRegistry;
import org.springframework.ai.openai.OpenAiChatModel;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.ai.openai.setup.OpenAiSetup;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The overflow beans, when {@code specula.overflow.enabled} is true: the remote
 * ({@link OverflowRemote}: its openai-java clients and its circuit breaker,
 * {@value #BREAKER}, which joins Resilience4j's registry when there is one, so its state
 * shows in the metrics), and over it {@link ChatOverflow} and {@link CompletionOverflow}.
 * The settings are checked at startup.
 */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(OverflowProperties.class)
class OverflowConfiguration {

    static final String BREAKER = "specula-overflow";

    /** Sent as the API key when {@code specula.overflow.api-key} is unset. */
    static final String NO_KEY = "unused";

    @Bean(destroyMethod = "close")
    @ConditionalOnProperty(prefix = OverflowProperties.CONFIG_PREFIX, name = "enabled", havingValue = "true")
    OverflowRemote overflowRemote(OverflowProperties properties, ObjectProvider<CircuitBreakerRegistry> registries) {
        properties.check();
        String apiKey = properties.getApiKey() == null || properties.getApiKey().isBlank() ? NO_KEY
                : properties.getApiKey();
        // as Spring AI's OpenAiChatModel builds its own, from the same settings; the
        // local engine is the fallback, the breaker decides when to stop trying: no
        // retries
        OpenAIClient client = OpenAiSetup.setupSyncClient(properties.getBaseUrl(), apiKey, null, null, null, null,
                false, false, properties.getModel(), properties.getTimeout(), 0, null, Map.of(),
                ObservationRegistry.NOOP, null, List.of());
        OpenAIClientAsync asyncClient = OpenAiSetup.setupAsyncClient(properties.getBaseUrl(), apiKey, null, null, null,
                null, false, false, properties.getModel(), properties.getTimeout(), 0, null, Map.of(),
                ObservationRegistry.NOOP, null, List.of());
        OverflowProperties.Breaker settings = properties.getCircuitBreaker();
        CircuitBreakerConfig config = CircuitBreakerConfig.custom()
            .failureRateThreshold(settings.getFailureRateThreshold())
            .slidingWindowSize(settings.getSlidingWindowSize())
            .minimumNumberOfCalls(settings.getMinimumNumberOfCalls())
            .waitDurationInOpenState(settings.getWaitDurationInOpenState())
            // the remote answered: the request was wrong, not the remote
            .ignoreException(RemoteRefusal::isCallersMistake)
            .build();
        CircuitBreakerRegistry registry = registries.getIfAvailable();
        CircuitBreaker breaker = registry != null ? registry.circuitBreaker(BREAKER, config)
                : CircuitBreaker.of(BREAKER, config);
        return new OverflowRemote(client, asyncClient, breaker, properties);
    }

    @Bean
    @ConditionalOnProperty(prefix = OverflowProperties.CONFIG_PREFIX, name = "enabled", havingValue = "true")
    ChatOverflow chatOverflow(OverflowRemote remote) {
        OverflowProperties properties = remote.properties();
        OpenAiChatModel model = OpenAiChatModel.builder()
            .openAiClient(remote.client())
            .openAiClientAsync(remote.asyncClient())
            .options(OpenAiChatOptions.builder()
                .baseUrl(properties.getBaseUrl())
                .model(properties.getModel())
                .timeout(properties.getTimeout())
                .maxRetries(0)
                .build())
            .build();
        return new ChatOverflow(model, remote.breaker(), properties.getModel(), properties.getTimeout());
    }

    @Bean
    @ConditionalOnProperty(prefix = OverflowProperties.CONFIG_PREFIX, name = "enabled", havingValue = "true")
    CompletionOverflow completionOverflow(OverflowRemote remote) {
        return new CompletionOverflow(remote.client(), remote.breaker(), remote.properties().getModel(),
                remote.properties().getTimeout());
    }

    /**
     * The overflow remote: the clients that reach it (openai-java's, on Spring AI's
     * OkHttp client), and the circuit breaker every overflowed request, chat or
     * completion, passes.
     */
    record OverflowRemote(OpenAIClient client, OpenAIClientAsync asyncClient, CircuitBreaker breaker,
            OverflowProperties properties) {

        void close() {
            client.close();
            asyncClient.close();
        }

    }

}
