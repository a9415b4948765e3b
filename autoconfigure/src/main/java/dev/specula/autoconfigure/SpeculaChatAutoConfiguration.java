package dev.specula.autoconfigure;

import io.micrometer.observation.ObservationRegistry;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.observation.ChatModelObservationConvention;
import org.springframework.ai.model.SpringAIModelProperties;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

import dev.specula.autoconfigure.SpeculaModelsAutoConfiguration.ModelLocationsResolved;
import dev.specula.chat.SpeculaChatModel;
import dev.specula.serving.GenerationService;

/**
 * Specula's {@link ChatModel}: the {@link SpeculaChatModel} over the
 * {@link GenerationService}, with the defaults of {@code specula.chat.*} and
 * {@code specula.policy.*}. Like Spring AI's own providers, it backs off for a
 * {@link SpeculaChatModel} only: another provider's {@code ChatModel} may live beside it.
 */
@AutoConfiguration(after = SpeculaServingAutoConfiguration.class,
        afterName = "org.springframework.boot.micrometer.observation.autoconfigure.ObservationAutoConfiguration")
@ConditionalOnClass(ChatModel.class)
@ConditionalOnProperty(name = SpringAIModelProperties.CHAT_MODEL, havingValue = SpeculaModelsAutoConfiguration.PROVIDER,
        matchIfMissing = true)
@EnableConfigurationProperties({ SpeculaChatProperties.class, SpeculaPolicyProperties.class })
public class SpeculaChatAutoConfiguration {

    @Bean
    @ConditionalOnMissingBean
    SpeculaStreamScheduler speculaStreamScheduler(SpeculaChatProperties properties, GenerationService service) {
        int threads = properties.getStreamThreads() > 0 ? properties.getStreamThreads()
                : service.bulkhead().getBulkheadConfig().getMaxConcurrentCalls();
        return new SpeculaStreamScheduler(Schedulers.newBoundedElastic(threads, Integer.MAX_VALUE, "specula-stream"));
    }

    @Bean
    @ConditionalOnMissingBean
    SpeculaChatModel speculaChatModel(GenerationService service, ModelLocationsResolved locations,
            SpeculaChatProperties properties, SpeculaPolicyProperties policy, SpeculaStreamScheduler streamScheduler,
            ObjectProvider<ObservationRegistry> observationRegistry,
            ObjectProvider<ChatModelObservationConvention> observationConvention) {
        SpeculaChatModel chatModel = SpeculaChatModel.builder()
            .service(service)
            .modelName(locations.modelName())
            .defaultOptions(properties.toOptions(policy))
            .maxPromptCharacters(properties.getMaxPromptCharacters())
            .streamScheduler(streamScheduler.scheduler())
            .observationRegistry(observationRegistry.getIfUnique(() -> ObservationRegistry.NOOP))
            .build();
        observationConvention.ifAvailable(chatModel::setObservationConvention);
        return chatModel;
    }

    /**
     * The bounded Reactor scheduler streamed generations run on (one thread per stream in
     * progress); disposed with the context.
     */
    public record SpeculaStreamScheduler(Scheduler scheduler) implements DisposableBean {

        @Override
        public void destroy() {
            scheduler.dispose();
        }
    }

}
