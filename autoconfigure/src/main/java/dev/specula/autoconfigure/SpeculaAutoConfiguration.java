package dev.specula.autoconfigure;

import dev.specula.chat.SpeculaChatModel;
import dev.specula.chat.SpeculaChatOptions;
import dev.specula.engine.ModelPair;
import dev.specula.model.ModelLoadException;
import dev.specula.model.RuntimeOptions;
import dev.specula.policy.PolicyParameters;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.UnknownPolicyException;
import dev.specula.serving.GenerationService;
import dev.specula.serving.ModelPairHandle;
import dev.specula.serving.ServiceSettings;
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
import org.springframework.core.io.ResourceLoader;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

import java.nio.file.Path;
import java.util.concurrent.Executor;

/**
 * Specula's {@link ChatModel}: the model pair from {@code specula.target/draft.location} (or the embedded
 * pair when {@code specula-models-tiny} is on the classpath and neither location is set), a
 * {@link GenerationService} with cache, fallback and bulkhead, and the {@link SpeculaChatModel} over it.
 * Selected like any Spring AI model: {@code spring.ai.model.chat=specula} (the default) or {@code none}.
 *
 * <p>Every bean backs off when the application defines one of its type. Like Spring AI's own providers,
 * the chat model backs off for a {@link SpeculaChatModel} only: another provider's {@code ChatModel} may
 * live beside it.
 */
@AutoConfiguration(afterName = {
        "io.github.resilience4j.springboot.circuitbreaker.autoconfigure.CircuitBreakerAutoConfiguration",
        "io.github.resilience4j.springboot.timelimiter.autoconfigure.TimeLimiterAutoConfiguration",
        "io.github.resilience4j.springboot.bulkhead.autoconfigure.BulkheadAutoConfiguration",
        "org.springframework.boot.micrometer.metrics.autoconfigure.CompositeMeterRegistryAutoConfiguration",
        "org.springframework.boot.micrometer.metrics.autoconfigure.export.simple.SimpleMetricsExportAutoConfiguration",
        "org.springframework.boot.micrometer.observation.autoconfigure.ObservationAutoConfiguration"})
@ConditionalOnClass(ChatModel.class)
@ConditionalOnProperty(name = SpringAIModelProperties.CHAT_MODEL, havingValue = SpeculaAutoConfiguration.PROVIDER,
        matchIfMissing = true)
@EnableConfigurationProperties(SpeculaProperties.class)
public class SpeculaAutoConfiguration {

    /** Spring AI's chat model selector property. */
    public static final String MODEL_SELECTOR = SpringAIModelProperties.CHAT_MODEL;
    /** Its value for Specula. */
    public static final String PROVIDER = "specula";
    /** Model name of the embedded pair. */
    public static final String EMBEDDED_MODEL_NAME = "specula-tiny";
    /** Property of the target's location. */
    public static final String TARGET_LOCATION = SpeculaProperties.CONFIG_PREFIX + ".target.location";
    /** Property of the draft's location. */
    public static final String DRAFT_LOCATION = SpeculaProperties.CONFIG_PREFIX + ".draft.location";

    private static final String TINY_MODELS = "dev.specula.models.tiny.TinyModels";

    /**
     * Where the target and draft are, resolved to paths.
     *
     * @param target the target's directory or model.onnx
     * @param draft the draft's, or null for plain decoding only
     * @param modelName the served model's name
     * @param embedded whether these are the embedded pair's (no location was configured)
     */
    public record ModelLocationsResolved(Path target, Path draft, String modelName, boolean embedded) {

        public ModelLocationsResolved(Path target, Path draft, String modelName) {
            this(target, draft, modelName, false);
        }
    }

    @Bean
    @ConditionalOnMissingBean
    ModelLocationsResolved speculaModelLocations(SpeculaProperties properties, ResourceLoader resourceLoader) {
        SpeculaProperties.Model target = properties.getTarget();
        SpeculaProperties.Draft draft = properties.getDraft();
        if (target.getLocation() == null && isEmbeddedPairAvailable(resourceLoader.getClassLoader())) {
            Path[] pair = EmbeddedPair.extract();
            String name = properties.getModelName() != null ? properties.getModelName() : EMBEDDED_MODEL_NAME;
            return new ModelLocationsResolved(pair[0], draft.isEnabled() ? pair[1] : null, name, true);
        }
        Path targetPath = ModelLocations.resolve(target.getLocation(), TARGET_LOCATION, resourceLoader);
        Path draftPath = draft.isEnabled() && draft.getLocation() != null
                ? ModelLocations.resolve(draft.getLocation(), DRAFT_LOCATION, resourceLoader) : null;
        String name = properties.getModelName() != null ? properties.getModelName() : directoryName(targetPath);
        return new ModelLocationsResolved(targetPath, draftPath, name, false);
    }

    @Bean(destroyMethod = "close")
    @ConditionalOnMissingBean
    ModelPairHandle speculaModelPairHandle(ModelLocationsResolved locations, SpeculaProperties properties) {
        SpeculaProperties.Runtime runtime = properties.getRuntime();
        RuntimeOptions options = new RuntimeOptions(runtime.getProvider(), runtime.getDeviceId(), runtime.getIntraOpThreads(),
                runtime.isSpinning());
        if (properties.getLoadMode() == SpeculaProperties.LoadMode.BACKGROUND) {
            Executor loaderThread = task -> {
                Thread thread = new Thread(task, "specula-model-loader");
                thread.setDaemon(true);
                thread.start();
            };
            return ModelPairHandle.loading(() -> load(batchGraphs(locations, properties), options), loaderThread);
        }
        return ModelPairHandle.ready(load(batchGraphs(locations, properties), options));
    }

    @Bean
    @ConditionalOnMissingBean
    GenerationService speculaGenerationService(ModelPairHandle models, ModelLocationsResolved locations,
            SpeculaProperties properties, ObjectProvider<MeterRegistry> meterRegistry,
            ObjectProvider<CircuitBreakerRegistry> circuitBreakers, ObjectProvider<TimeLimiterRegistry> timeLimiters,
            ObjectProvider<BulkheadRegistry> bulkheads) {
        ServiceSettings settings = serviceSettings(properties);
        if (models.state() == ModelPairHandle.State.READY) {
            checkPolicy(properties, settings.policyParameters().withModelDirectory(models.get().target().files().directory()));
        }
        SpeculaProperties.Resilience resilience = properties.getResilience();
        CircuitBreakerConfig draftBreakerConfig = CircuitBreakerConfig.custom()
                .failureRateThreshold(resilience.getFailureRateThreshold()).slidingWindowSize(resilience.getSlidingWindowSize())
                .minimumNumberOfCalls(resilience.getMinimumNumberOfCalls())
                .waitDurationInOpenState(resilience.getWaitDurationInOpenState()).permittedNumberOfCallsInHalfOpenState(3)
                .build();
        CircuitBreakerConfig goodputConfig = CircuitBreakerConfig.custom().slidingWindowSize(10).minimumNumberOfCalls(6)
                .failureRateThreshold(50).waitDurationInOpenState(resilience.getGoodput().getWaitDurationInOpenState())
                .permittedNumberOfCallsInHalfOpenState(4).build();
        TimeLimiterConfig timeLimiterConfig = TimeLimiterConfig.custom().timeoutDuration(resilience.getRoundTimeout()).build();
        BulkheadConfig bulkheadConfig = BulkheadConfig.custom().maxConcurrentCalls(resilience.getMaxConcurrentGenerations())
                .maxWaitDuration(resilience.getMaxWaitForSlot()).build();
        CircuitBreakerRegistry breakerRegistry = circuitBreakers.getIfAvailable();
        TimeLimiterRegistry timeLimiterRegistry = timeLimiters.getIfAvailable();
        BulkheadRegistry bulkheadRegistry = bulkheads.getIfAvailable();
        // An instance configured under resilience4j.*.instances.<name> exists in the registry already and wins
        CircuitBreaker draftBreaker = breakerRegistry == null
                ? CircuitBreaker.of(GenerationService.RESILIENCE_NAME, draftBreakerConfig)
                : breakerRegistry.find(GenerationService.RESILIENCE_NAME)
                        .orElseGet(() -> breakerRegistry.circuitBreaker(GenerationService.RESILIENCE_NAME, draftBreakerConfig));
        CircuitBreaker goodputBreaker = breakerRegistry == null
                ? CircuitBreaker.of(GenerationService.GOODPUT_NAME, goodputConfig)
                : breakerRegistry.find(GenerationService.GOODPUT_NAME)
                        .orElseGet(() -> breakerRegistry.circuitBreaker(GenerationService.GOODPUT_NAME, goodputConfig));
        TimeLimiter timeLimiter = timeLimiterRegistry == null
                ? TimeLimiter.of(GenerationService.RESILIENCE_NAME, timeLimiterConfig)
                : timeLimiterRegistry.find(GenerationService.RESILIENCE_NAME)
                        .orElseGet(() -> timeLimiterRegistry.timeLimiter(GenerationService.RESILIENCE_NAME, timeLimiterConfig));
        Bulkhead bulkhead = bulkheadRegistry == null ? Bulkhead.of(GenerationService.RESILIENCE_NAME, bulkheadConfig)
                : bulkheadRegistry.find(GenerationService.RESILIENCE_NAME)
                        .orElseGet(() -> bulkheadRegistry.bulkhead(GenerationService.RESILIENCE_NAME, bulkheadConfig));
        return GenerationService.builder(models).modelsId(locations.target() + "|" + locations.draft()).settings(settings)
                .draftBreaker(draftBreaker).goodputBreaker(goodputBreaker).timeLimiter(timeLimiter).bulkhead(bulkhead)
                .meterRegistry(meterRegistry.getIfUnique()).build();
    }

    @Bean
    @ConditionalOnMissingBean
    StreamScheduler speculaStreamScheduler(SpeculaProperties properties) {
        int threads = properties.getScheduler().getStreamThreads() > 0 ? properties.getScheduler().getStreamThreads()
                : properties.getResilience().getMaxConcurrentGenerations();
        return new StreamScheduler(Schedulers.newBoundedElastic(threads, Integer.MAX_VALUE, "specula-stream"));
    }

    @Bean
    @ConditionalOnMissingBean
    SpeculaChatModel speculaChatModel(GenerationService service, ModelLocationsResolved locations,
            SpeculaProperties properties, StreamScheduler streamScheduler,
            ObjectProvider<ObservationRegistry> observationRegistry,
            ObjectProvider<ChatModelObservationConvention> observationConvention) {
        SpeculaChatModel chatModel = SpeculaChatModel.builder().service(service).modelName(locations.modelName())
                .defaultOptions(chatOptions(properties)).streamScheduler(streamScheduler.scheduler())
                .observationRegistry(observationRegistry.getIfUnique(() -> ObservationRegistry.NOOP)).build();
        observationConvention.ifAvailable(chatModel::setObservationConvention);
        return chatModel;
    }

    /** The bounded scheduler streamed generations run on (one thread per stream in progress); disposed with the context. */
    public record StreamScheduler(Scheduler scheduler) implements DisposableBean {

        @Override
        public void destroy() {
            scheduler.dispose();
        }
    }

    static ServiceSettings serviceSettings(SpeculaProperties properties) {
        SpeculaProperties.Policy policy = properties.getPolicy();
        SpeculaProperties.Cache cache = properties.getCache();
        SpeculaProperties.Resilience resilience = properties.getResilience();
        return ServiceSettings.defaults()
                .withDefaultPolicy(policy.getName(), new PolicyParameters(policy.getGamma(), policy.getOptions()))
                .withCache(cache.isEnabled(), cache.getMaximumSize(), cache.getTimeToLive())
                .withRoundTimeout(resilience.getRoundTimeout())
                .withGoodput(resilience.getGoodput().isEnabled(), resilience.getGoodput().getProbeInterval(),
                        resilience.getGoodput().getMinTokens())
                .withConcurrency(resilience.getMaxConcurrentGenerations(), resilience.getMaxWaitForSlot())
                .withBatching(properties.getScheduler().isBatching(), properties.getScheduler().getMaxBatchSize(),
                        properties.getScheduler().getQueueCapacity(), properties.getScheduler().getMaxWait())
                .withPrefixCache(properties.getScheduler().getPrefixCacheSize().toBytes());
    }

    static SpeculaChatOptions chatOptions(SpeculaProperties properties) {
        SpeculaProperties.Chat.Options options = properties.getChat().getOptions();
        return SpeculaChatOptions.builder().temperature(options.getTemperature()).topP(options.getTopP())
                .topK(options.getTopK()).maxTokens(options.getMaxTokens()).stopSequences(options.getStopSequences())
                .seed(options.getSeed()).speculation(options.isSpeculation()).policy(properties.getPolicy().getName())
                .gamma(properties.getPolicy().getGamma()).build();
    }

    /** Loads the pair; a load failure names the property that pointed at the failing model. */
    private static ModelPair load(ModelLocationsResolved locations, RuntimeOptions options) {
        try {
            return ModelPair.load(locations.target(), locations.draft(), options);
        }
        catch (ConfiguredModelLoadException ex) {
            throw ex;
        }
        catch (ModelLoadException ex) {
            throw new ConfiguredModelLoadException(propertyOf(ex.getPath(), locations), ex);
        }
    }

    /** Graph file of a directory's --packed export, next to its model.onnx. */
    static final String PACKED_GRAPH = "model_packed.onnx";

    /**
     * The graphs batching runs on: with the unpadded path (EMS-SD), each model's {@value #PACKED_GRAPH} from its
     * directory (the draft's when it has one); the padded path, or no batching, uses the configured graphs.
     */
    static ModelLocationsResolved batchGraphs(ModelLocationsResolved locations, SpeculaProperties properties) {
        SpeculaProperties.Scheduler scheduler = properties.getScheduler();
        if (!scheduler.isBatching() || scheduler.getBatchPath() == SpeculaProperties.BatchPath.PADDED) {
            return locations;
        }
        Path packedTarget = packedGraph(locations.target());
        if (packedTarget == null) {
            if (scheduler.getBatchPath() == SpeculaProperties.BatchPath.UNPADDED) {
                throw new InvalidSpeculaPropertyException(SpeculaProperties.CONFIG_PREFIX + ".scheduler.batch-path", "unpadded",
                        "padded or auto: the target has no " + PACKED_GRAPH + " next to its model.onnx (export it with "
                                + "`python -m specula_tools export ... --packed`)");
            }
            return locations;
        }
        Path packedDraft = locations.draft() == null ? null : packedGraph(locations.draft());
        return new ModelLocationsResolved(packedTarget, packedDraft != null ? packedDraft : locations.draft(),
                locations.modelName(), locations.embedded());
    }

    private static Path packedGraph(Path location) {
        Path directory = location.getFileName() != null && location.getFileName().toString().endsWith(".onnx")
                ? location.getParent() : location;
        Path packed = directory == null ? null : directory.resolve(PACKED_GRAPH);
        return packed != null && java.nio.file.Files.isRegularFile(packed) ? packed : null;
    }

    private static String propertyOf(Path failed, ModelLocationsResolved locations) {
        if (failed != null && locations.draft() != null && isWithin(failed, locations.draft())
                && !isWithin(failed, locations.target())) {
            return DRAFT_LOCATION;
        }
        return TARGET_LOCATION;
    }

    private static boolean isWithin(Path file, Path location) {
        Path directory = location.getFileName() != null && location.getFileName().toString().endsWith(".onnx")
                ? location.getParent() : location;
        Path normalized = file.toAbsolutePath().normalize();
        return directory != null && normalized.startsWith(directory.toAbsolutePath().normalize());
    }

    /**
     * Creates the default policy once, so a bad option or γ stops startup naming the property (the service
     * would fail the same way, without the property's name). An unknown name was reported while binding.
     */
    private static void checkPolicy(SpeculaProperties properties, PolicyParameters parameters) {
        SpeculaProperties.Policy policy = properties.getPolicy();
        try {
            SpeculationPolicies.factory(policy.getName(), parameters);
        }
        catch (UnknownPolicyException ex) {
            throw ex;
        }
        catch (ModelLoadException ex) { // a learned policy's file next to the target (ldlp.onnx)
            throw new InvalidSpeculaPropertyException(SpeculaProperties.CONFIG_PREFIX + ".policy.name", policy.getName(),
                    "a policy whose files are present (" + ex.getMessage() + ")", ex);
        }
        catch (IllegalArgumentException ex) {
            String message = ex.getMessage() == null ? ex.toString() : ex.getMessage();
            String allowed = "values policy '" + policy.getName() + "' accepts (" + message + ")";
            String prefix = SpeculaProperties.CONFIG_PREFIX + ".policy.";
            if (message.startsWith("Option") && !policy.getOptions().isEmpty()) {
                throw new InvalidSpeculaPropertyException(prefix + "options", policy.getOptions(), allowed, ex);
            }
            if (message.contains("gamma") && policy.getName().indexOf(':') < 0) {
                throw new InvalidSpeculaPropertyException(prefix + "gamma", policy.getGamma(), allowed, ex);
            }
            throw new InvalidSpeculaPropertyException(prefix + "name", policy.getName(), allowed, ex);
        }
    }

    private static boolean isEmbeddedPairAvailable(ClassLoader classLoader) {
        try {
            Class.forName(TINY_MODELS, false, classLoader);
            return EmbeddedPair.isAvailable();
        }
        catch (ClassNotFoundException | LinkageError ex) {
            return false;
        }
    }

    private static String directoryName(Path location) {
        Path directory = location.getFileName() != null && location.getFileName().toString().endsWith(".onnx")
                ? location.getParent() : location;
        return directory == null || directory.getFileName() == null ? PROVIDER : directory.getFileName().toString();
    }

    /** The only class touching the optional specula-models-tiny: loaded once its presence is known. */
    private static final class EmbeddedPair {

        static boolean isAvailable() {
            return dev.specula.models.tiny.TinyModels.isAvailable();
        }

        /** {target, draft} directories, extracted to the cache on first use. */
        static Path[] extract() {
            dev.specula.models.tiny.TinyModels.Pair pair = dev.specula.models.tiny.TinyModels.extract();
            return new Path[] {pair.target(), pair.draft()};
        }
    }
}
