package dev.specula.autoconfigure;

import org.junit.jupiter.api.Test;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.MapConfigurationPropertySource;

import dev.specula.engine.GenerationRequest;
import dev.specula.model.RuntimeOptions;
import dev.specula.policy.PolicyParameters;
import dev.specula.sampling.SamplingParams;
import dev.specula.serving.BatchingSettings;
import dev.specula.serving.CircuitBreakerSettings;
import dev.specula.serving.ConcurrencySettings;
import dev.specula.serving.GenerationService;
import dev.specula.serving.GoodputSettings;
import dev.specula.serving.PolicySettings;
import dev.specula.serving.ResponseCacheSettings;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * One set of defaults: every property's literal default (the IDE shows it) equals the
 * engine's or the serving layer's constant, so a service built without properties behaves
 * as one built from an empty environment.
 */
class SpeculaPropertiesDefaultsTests {

    /** Binds {@code type} at {@code prefix} from an environment that sets nothing. */
    private static <T> T bindNothing(String prefix, Class<T> type) {
        return new Binder(new MapConfigurationPropertySource()).bindOrCreate(prefix, type);
    }

    @Test
    void policyDefaultsAreTheEngines() {
        SpeculaPolicyProperties policy = bindNothing(SpeculaPolicyProperties.CONFIG_PREFIX,
                SpeculaPolicyProperties.class);
        assertThat(policy.getGamma()).isEqualTo(PolicyParameters.DEFAULT_GAMMA).isEqualTo(4);
        assertThat(policy.getName()).isEqualTo(PolicySettings.DEFAULT_NAME);
        assertThat(policy.toSettings()).isEqualTo(PolicySettings.defaults());
    }

    @Test
    void cacheDefaultsAreTheServingLayers() {
        SpeculaCacheProperties cache = bindNothing(SpeculaCacheProperties.CONFIG_PREFIX, SpeculaCacheProperties.class);
        assertThat(cache.toResponseCacheSettings()).isEqualTo(ResponseCacheSettings.defaults());
        assertThat(cache.getPrefix().getSize().toBytes()).isEqualTo(GenerationService.DEFAULT_PREFIX_CACHE_BYTES);
    }

    @Test
    void batchingAndConcurrencyDefaultsAreTheServingLayers() {
        SpeculaBatchingProperties batching = bindNothing(SpeculaBatchingProperties.CONFIG_PREFIX,
                SpeculaBatchingProperties.class);
        assertThat(batching.toSettings()).isEqualTo(BatchingSettings.defaults());
        SpeculaKvProperties kv = bindNothing(SpeculaKvProperties.CONFIG_PREFIX, SpeculaKvProperties.class);
        assertThat(kv.toSettings()).isEqualTo(dev.specula.serving.KvSettings.defaults());
        SpeculaResilienceProperties resilience = bindNothing(SpeculaResilienceProperties.CONFIG_PREFIX,
                SpeculaResilienceProperties.class);
        assertThat(resilience.getMaxConcurrentGenerations()).as("unset: derived").isNull();
        assertThat(resilience.toConcurrencySettings()).isEqualTo(ConcurrencySettings.defaults());
    }

    @Test
    void resilienceDefaultsAreTheServingLayers() {
        SpeculaResilienceProperties resilience = bindNothing(SpeculaResilienceProperties.CONFIG_PREFIX,
                SpeculaResilienceProperties.class);
        assertThat(resilience.getRoundTimeout()).isEqualTo(GenerationService.DEFAULT_ROUND_TIME_LIMIT);
        assertThat(resilience.toDraftBreakerSettings()).isEqualTo(CircuitBreakerSettings.DRAFT_DEFAULTS);
        assertThat(resilience.toGoodputSettings()).isEqualTo(GoodputSettings.defaults());
    }

    @Test
    void chatDefaultsAreTheEngines() {
        SpeculaChatProperties chat = bindNothing(SpeculaChatProperties.CONFIG_PREFIX, SpeculaChatProperties.class);
        SpeculaChatProperties.Options options = chat.getOptions();
        assertThat(options.getMaxTokens()).isEqualTo(GenerationRequest.DEFAULT_MAX_NEW_TOKENS);
        assertThat(options.getTemperature()).isEqualTo(SamplingParams.GREEDY.temperature());
        assertThat(options.getTopP()).isEqualTo(SamplingParams.GREEDY.topP());
        assertThat(options.getTopK()).isEqualTo(SamplingParams.GREEDY.topK());
        assertThat(options.getSeed()).isEqualTo(SamplingParams.GREEDY.seed());
        assertThat(chat.getMaxPromptCharacters())
            .isEqualTo(dev.specula.chat.SpeculaChatModel.DEFAULT_MAX_PROMPT_CHARACTERS);
    }

    @Test
    void runtimeDefaultsAreTheEngines() {
        SpeculaModelProperties models = bindNothing(SpeculaModelProperties.CONFIG_PREFIX, SpeculaModelProperties.class);
        assertThat(models.getRuntime().toRuntimeOptions()).isEqualTo(RuntimeOptions.defaults());
        assertThat(models.getLoadMode()).isEqualTo(SpeculaModelProperties.LoadMode.EAGER);
    }

    @Test
    void kvWrittenInPlaceCanBeSwitchedOff() {
        SpeculaModelProperties models = new Binder(
                new MapConfigurationPropertySource(java.util.Map.of("specula.runtime.kv-in-place", "false")))
            .bindOrCreate(SpeculaModelProperties.CONFIG_PREFIX, SpeculaModelProperties.class);
        assertThat(models.getRuntime().toRuntimeOptions()).isEqualTo(RuntimeOptions.defaults().withKvInPlace(false))
            .isNotEqualTo(RuntimeOptions.defaults());
    }

}
