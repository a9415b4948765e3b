package dev.specula.autoconfigure;

import io.github.resilience4j.bulkhead.Bulkhead;
import io.github.resilience4j.bulkhead.BulkheadConfig;
import io.github.resilience4j.bulkhead.BulkheadRegistry;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.github.resilience4j.timelimiter.TimeLimiter;
import io.github.resilience4j.timelimiter.TimeLimiterConfig;
import io.github.resilience4j.timelimiter.TimeLimiterRegistry;
import io.micrometer.core.instrument.MeterRegistry;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.model.SpringAIModelProperties;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;

import dev.specula.autoconfigure.SpeculaModelsAutoConfiguration.ModelLocationsResolved;
import dev.specula.model.ModelLoadException;
import dev.specula.policy.InvalidPolicyOptionException;
import dev.specula.proposer.ProposerKind;
import dev.specula.serving.BatchingSettings;
import dev.specula.serving.CircuitBreakerSettings;
import dev.specula.serving.ConcurrencySettings;
import dev.specula.serving.GenerationService;
import dev.specula.serving.GoodputSettings;
import dev.specula.serving.ModelPairHandle;

/**
 * The {@link GenerationService} over the model pair: default policy, response and prefix
 * caches, batching, fallback (round time limit, draft breaker, goodput switch) and
 * bulkhead, from {@code specula.policy.*}, {@code specula.cache.*},
 * {@code specula.batching.*}, {@code specula.kv.*} and {@code specula.resilience.*}.
 * Resilience4j instances configured under {@code resilience4j.*.instances.specula} (or
 * {@code specula-goodput}) win.
 */
@AutoConfiguration(after = SpeculaModelsAutoConfiguration.class, afterName = {
        "io.github.resilience4j.springboot.circuitbreaker.autoconfigure.CircuitBreakerAutoConfiguration",
        "io.github.resilience4j.springboot.timelimiter.autoconfigure.TimeLimiterAutoConfiguration",
        "io.github.resilience4j.springboot.bulkhead.autoconfigure.BulkheadAutoConfiguration",
        "org.springframework.boot.micrometer.metrics.autoconfigure.CompositeMeterRegistryAutoConfiguration",
        "org.springframework.boot.micrometer.metrics.autoconfigure.export.simple.SimpleMetricsExportAutoConfiguration" })
@ConditionalOnClass(ChatModel.class)
@ConditionalOnProperty(name = SpringAIModelProperties.CHAT_MODEL, havingValue = SpeculaModelsAutoConfiguration.PROVIDER,
        matchIfMissing = true)
@EnableConfigurationProperties({ SpeculaPolicyProperties.class, SpeculaCacheProperties.class,
        SpeculaResilienceProperties.class, SpeculaBatchingProperties.class, SpeculaKvProperties.class })
public class SpeculaServingAutoConfiguration {

    static final String MAX_CONCURRENT_GENERATIONS = SpeculaResilienceProperties.CONFIG_PREFIX
            + ".max-concurrent-generations";

    @Bean
    @ConditionalOnMissingBean
    GenerationService speculaGenerationService(ModelPairHandle models, ModelLocationsResolved locations,
            SpeculaPolicyProperties policy, SpeculaCacheProperties cache, SpeculaResilienceProperties resilience,
            SpeculaBatchingProperties batchingProperties, SpeculaKvProperties kv,
            ObjectProvider<MeterRegistry> meterRegistry, ObjectProvider<CircuitBreakerRegistry> circuitBreakers,
            ObjectProvider<TimeLimiterRegistry> timeLimiters, ObjectProvider<BulkheadRegistry> bulkheads) {
        ProposerKind proposer = policy.proposerKind();
        if (proposer != null && proposer.usesModel() && locations.draft() == null) {
            throw PropertyChecks.invalid(SpeculaPolicyProperties.CONFIG_PREFIX + ".proposer", policy.getProposer(),
                    "ngram when no draft is configured (" + SpeculaModelProperties.DRAFT_LOCATION
                            + " is unset), or leave it unset");
        }
        if (proposer != null && proposer.usesHead() && locations.head() == null) {
            throw PropertyChecks.invalid(SpeculaPolicyProperties.CONFIG_PREFIX + ".proposer", policy.getProposer(),
                    "another proposer when no GRIFFIN feature head is configured (set "
                            + SpeculaModelProperties.GRIFFIN_LOCATION + " to a head trained on the target, with "
                            + SpeculaModelProperties.CONFIG_PREFIX + ".griffin.enabled true), or unset");
        }
        BatchingSettings batching = batchingProperties.toSettings();
        int maxConcurrentGenerations = maxConcurrentGenerations(resilience.toConcurrencySettings(), batching);
        CircuitBreakerSettings draftBreakerSettings = resilience.toDraftBreakerSettings();
        GoodputSettings goodput = resilience.toGoodputSettings();
        TimeLimiterConfig timeLimiterConfig = TimeLimiterConfig.custom()
            .timeoutDuration(resilience.getRoundTimeout())
            .build();
        BulkheadConfig bulkheadConfig = BulkheadConfig.custom()
            .maxConcurrentCalls(maxConcurrentGenerations)
            .maxWaitDuration(resilience.getMaxWaitForSlot())
            .build();
        GenerationService.Builder builder = GenerationService.builder(models)
            .modelsId(locations.target() + "|" + locations.draft() + "|" + locations.head())
            .policy(policy.toSettings())
            .responseCache(cache.toResponseCacheSettings())
            .prefixCacheBytes(cache.getPrefix().getSize().toBytes())
            .batching(batching)
            .kv(kv.toSettings())
            .concurrency(resilience.toConcurrencySettings())
            .goodput(goodput)
            .draftBreakerSettings(draftBreakerSettings)
            .roundTimeLimit(resilience.getRoundTimeout())
            .draftBreaker(circuitBreaker(circuitBreakers.getIfAvailable(), GenerationService.RESILIENCE_NAME,
                    draftBreakerSettings.toConfig()))
            .goodputBreaker(circuitBreaker(circuitBreakers.getIfAvailable(), GenerationService.GOODPUT_NAME,
                    goodput.breaker().toConfig()))
            .timeLimiter(timeLimiter(timeLimiters.getIfAvailable(), timeLimiterConfig))
            .bulkhead(bulkhead(bulkheads.getIfAvailable(), bulkheadConfig))
            .meterRegistry(meterRegistry.getIfUnique());
        try {
            return builder.build();
        }
        catch (InvalidPolicyOptionException ex) {
            // the service creates the default policy once (with the models loaded): name
            // the property at fault
            String property = InvalidPolicyOptionException.GAMMA.equals(ex.option())
                    ? SpeculaPolicyProperties.CONFIG_PREFIX + ".gamma"
                    : SpeculaPolicyProperties.CONFIG_PREFIX + ".options." + ex.option();
            throw PropertyChecks.invalid(property, ex.value(), ex.allowed() + " for policy '" + ex.policy() + "'", ex);
        }
        catch (ModelLoadException ex) {
            // a learned policy's file next to the target (ldlp.onnx); not chained, so no
            // model analyzer claims it
            throw PropertyChecks.invalid(SpeculaPolicyProperties.CONFIG_PREFIX + ".name", policy.getName(),
                    "a policy whose files are present (" + ex.getMessage() + ")");
        }
    }

    /**
     * The bulkhead's size: configured and checked against the batch's capacity, or
     * derived from it.
     */
    static int maxConcurrentGenerations(ConcurrencySettings concurrency, BatchingSettings batching) {
        try {
            return concurrency.resolve(batching);
        }
        catch (IllegalArgumentException ex) {
            throw PropertyChecks.invalid(MAX_CONCURRENT_GENERATIONS, concurrency.maxConcurrentGenerations(),
                    "at most specula.batching.max-batch-size + specula.batching.queue-capacity (" + batching.capacity()
                            + ") with batching on (more would be turned away by the batch queue), or unset to use that sum");
        }
    }

    // An instance configured under resilience4j.*.instances.<name> exists in the registry
    // already and wins

    private static CircuitBreaker circuitBreaker(CircuitBreakerRegistry registry, String name,
            CircuitBreakerConfig config) {
        return registry == null ? CircuitBreaker.of(name, config)
                : registry.find(name).orElseGet(() -> registry.circuitBreaker(name, config));
    }

    private static TimeLimiter timeLimiter(TimeLimiterRegistry registry, TimeLimiterConfig config) {
        String name = GenerationService.RESILIENCE_NAME;
        return registry == null ? TimeLimiter.of(name, config)
                : registry.find(name).orElseGet(() -> registry.timeLimiter(name, config));
    }

    private static Bulkhead bulkhead(BulkheadRegistry registry, BulkheadConfig config) {
        String name = GenerationService.RESILIENCE_NAME;
        return registry == null ? Bulkhead.of(name, config)
                : registry.find(name).orElseGet(() -> registry.bulkhead(name, config));
    }

}
