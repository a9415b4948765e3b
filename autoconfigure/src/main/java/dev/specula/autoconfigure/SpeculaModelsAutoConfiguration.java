package dev.specula.autoconfigure;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;
import org.jspecify.annotations.Nullable;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.model.SpringAIModelProperties;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.core.io.ResourceLoader;

import dev.specula.engine.ModelPair;
import dev.specula.model.DecoderModel;
import dev.specula.model.ExecutionProvider;
import dev.specula.model.ModelLoadException;
import dev.specula.model.RuntimeOptions;
import dev.specula.serving.ModelPairHandle;

/**
 * The model pair: where it is ({@code specula.target/draft.location}, or the embedded
 * pair when {@code specula-models-tiny} is on the classpath and neither location is set)
 * and the loaded {@link ModelPairHandle}, which this configuration created and so closes
 * with the context. Selected like any Spring AI model:
 * {@code spring.ai.model.chat=specula} (the default) or {@code none}.
 */
@AutoConfiguration
@ConditionalOnClass(ChatModel.class)
@ConditionalOnProperty(name = SpringAIModelProperties.CHAT_MODEL, havingValue = SpeculaModelsAutoConfiguration.PROVIDER,
        matchIfMissing = true)
@EnableConfigurationProperties({ SpeculaModelProperties.class, SpeculaBatchingProperties.class,
        SpeculaPolicyProperties.class })
public class SpeculaModelsAutoConfiguration {

    private static final Log logger = LogFactory.getLog(SpeculaModelsAutoConfiguration.class);

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Spring AI's chat model selector property. */
    public static final String MODEL_SELECTOR = SpringAIModelProperties.CHAT_MODEL;

    /** Its value for Specula. */
    public static final String PROVIDER = "specula";

    /** Model name of the embedded pair. */
    public static final String EMBEDDED_MODEL_NAME = "specula-tiny";

    private static final String TINY_MODELS = "dev.specula.models.tiny.TinyModels";

    /** Graph file of a directory's --packed export, next to its model.onnx. */
    static final String PACKED_GRAPH = "model_packed.onnx";

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
    ModelLocationsResolved speculaModelLocations(SpeculaModelProperties properties, ResourceLoader resourceLoader) {
        SpeculaModelProperties.ModelLocation target = properties.getTarget();
        SpeculaModelProperties.DraftLocation draft = properties.getDraft();
        if (target.getLocation() == null && isEmbeddedPairAvailable(resourceLoader.getClassLoader())) {
            Path[] pair = EmbeddedPair.extract();
            String name = properties.getModelName() != null ? properties.getModelName() : EMBEDDED_MODEL_NAME;
            return new ModelLocationsResolved(pair[0], draft.isEnabled() ? pair[1] : null, name, true);
        }
        Path targetLocation = ModelLocations.resolve(target.getLocation(), SpeculaModelProperties.TARGET_LOCATION,
                resourceLoader);
        Path targetPath = ModelLocations.graph(targetLocation, target.getFile(), SpeculaModelProperties.TARGET_FILE);
        Path draftPath = draft.isEnabled() && draft.getLocation() != null ? ModelLocations.graph(
                ModelLocations.resolve(draft.getLocation(), SpeculaModelProperties.DRAFT_LOCATION, resourceLoader),
                draft.getFile(), SpeculaModelProperties.DRAFT_FILE) : null;
        String name = properties.getModelName() != null ? properties.getModelName() : defaultModelName(targetLocation);
        return new ModelLocationsResolved(targetPath, draftPath, name, false);
    }

    /** Created here, so closed here (after the service that uses it). */
    @Bean(destroyMethod = "close")
    @ConditionalOnMissingBean
    ModelPairHandle speculaModelPairHandle(ModelLocationsResolved locations, SpeculaModelProperties properties,
            SpeculaBatchingProperties batching, ObjectProvider<SpeculaPolicyProperties> policy) {
        RuntimeOptions options = properties.getRuntime().toRuntimeOptions();
        ModelLocationsResolved graphs = batchGraphs(locations, batching);
        String servingSummary = servingSummary(locations, graphs, batching, policy.getIfAvailable(), options);
        boolean trees = policy.getIfAvailable() != null && policy.getIfAvailable().tree() != null;
        if (properties.getLoadMode() == SpeculaModelProperties.LoadMode.BACKGROUND) {
            Executor loaderThread = (task) -> {
                Thread thread = new Thread(task, "specula-model-loader");
                thread.setDaemon(true);
                thread.start();
            };
            return ModelPairHandle.loading(() -> load(graphs, options, servingSummary, trees), loaderThread);
        }
        return ModelPairHandle.ready(load(graphs, options, servingSummary, trees));
    }

    /**
     * Loads the pair; a load failure names the property that pointed at the failing
     * model.
     */
    private static ModelPair load(ModelLocationsResolved locations, RuntimeOptions options, String servingSummary,
            boolean trees) {
        try {
            long start = System.nanoTime();
            ModelPair pair = ModelPair.load(locations.target(), locations.draft(), options);
            if (trees) {
                checkTrees(pair);
            }
            if (logger.isInfoEnabled()) {
                logger.info(
                        loadedMessage(pair, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start), servingSummary));
            }
            return pair;
        }
        catch (ConfiguredModelLoadException ex) {
            throw ex;
        }
        catch (ModelLoadException ex) {
            throw new ConfiguredModelLoadException(propertyOf(ex.getPath(), locations), ex);
        }
    }

    /**
     * The graphs batching runs on: with the unpadded path (EMS-SD), each model's
     * {@value #PACKED_GRAPH} from its directory (the draft's when it has one); the padded
     * path, or no batching, uses the configured graphs.
     */
    static ModelLocationsResolved batchGraphs(ModelLocationsResolved locations, SpeculaBatchingProperties batching) {
        if (!batching.isEnabled() || batching.getPath() == SpeculaBatchingProperties.BatchPath.PADDED) {
            return locations;
        }
        Path packedTarget = packedGraph(locations.target());
        if (packedTarget == null) {
            if (batching.getPath() == SpeculaBatchingProperties.BatchPath.UNPADDED) {
                throw PropertyChecks.invalid(SpeculaBatchingProperties.CONFIG_PREFIX + ".path", "unpadded",
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
        Path directory = directoryOf(location);
        Path packed = directory == null ? null : directory.resolve(PACKED_GRAPH);
        return packed != null && Files.isRegularFile(packed) ? packed : null;
    }

    /**
     * specula.policy.draft-shape=tree needs a draft and both graphs packed (an
     * attention_bias), refused at startup otherwise.
     */
    private static void checkTrees(ModelPair pair) {
        String property = SpeculaPolicyProperties.CONFIG_PREFIX + ".draft-shape";
        String problem = null;
        if (pair.draft().isEmpty()) {
            problem = "no draft model is loaded (" + SpeculaModelProperties.DRAFT_LOCATION + ")";
        }
        else if (!pair.target().supportsTrees() || !pair.draft().get().supportsTrees()) {
            problem = "the graphs loaded (" + pair.target().files().model() + ", " + pair.draft().get().files().model()
                    + ") are not both packed: a tree needs " + PACKED_GRAPH + " next to each model's model.onnx and "
                    + SpeculaBatchingProperties.CONFIG_PREFIX + ".path unpadded or auto";
        }
        if (problem != null) {
            pair.close();
            throw PropertyChecks.invalid(property, "tree", "chain, since " + problem);
        }
    }

    private static String propertyOf(Path failed, ModelLocationsResolved locations) {
        if (failed != null && locations.draft() != null && isWithin(failed, locations.draft())
                && !isWithin(failed, locations.target())) {
            return SpeculaModelProperties.DRAFT_LOCATION;
        }
        return SpeculaModelProperties.TARGET_LOCATION;
    }

    private static boolean isWithin(Path file, Path location) {
        Path directory = directoryOf(location);
        Path normalized = file.toAbsolutePath().normalize();
        return directory != null && normalized.startsWith(directory.toAbsolutePath().normalize());
    }

    private static Path directoryOf(Path location) {
        return location.getFileName() != null && location.getFileName().toString().endsWith(".onnx")
                ? location.getParent() : location;
    }

    /**
     * The INFO line written once the pair is loaded: what each model is, and how it is
     * served.
     */
    static String loadedMessage(ModelPair pair, long millis, String servingSummary) {
        StringBuilder message = new StringBuilder("Specula loaded its models in ").append(millis)
            .append(" ms: target ")
            .append(describe(pair.target()));
        pair.draft().ifPresentOrElse((draft) -> {
            message.append("; draft ");
            message.append(draft instanceof DecoderModel model ? describe(model) : draft.files().model().toString());
        }, () -> message.append("; no draft"));
        return message.append("; ").append(servingSummary).toString();
    }

    private static String describe(DecoderModel model) {
        return model.files().model() + " (" + model.config().modelType() + ", " + parameters(model.files().model())
                + " parameters, vocabulary " + model.tokenizer().vocabularySize() + ", " + model.logitsWidth()
                + " logits, context " + model.contextLength() + ")";
    }

    /** The initializers' element count, as 1.2M / 494.0M / 7.6B; "?" if unreadable. */
    static String parameters(Path model) {
        try {
            long count = OnnxParameters.count(model);
            if (count >= 1_000_000_000L) {
                return String.format(Locale.ROOT, "%.1fB", count / 1e9);
            }
            if (count >= 1_000_000L) {
                return String.format(Locale.ROOT, "%.1fM", count / 1e6);
            }
            return String.format(Locale.ROOT, "%.1fK", count / 1e3);
        }
        catch (IOException | RuntimeException ex) {
            return "?";
        }
    }

    /** Policy, batch path and execution provider, as configured. */
    private static String servingSummary(ModelLocationsResolved locations, ModelLocationsResolved graphs,
            SpeculaBatchingProperties batching, @Nullable SpeculaPolicyProperties policy, RuntimeOptions options) {
        String policyName = locations.draft() == null ? "plain (no draft)"
                : policy == null ? "(default)" : policy.getName() + " (gamma " + policy.getGamma() + ")"
                        + (policy.tree() == null ? "" : ", draft " + policy.tree());
        String batchPath = !batching.isEnabled() ? "off"
                : graphs.target().equals(locations.target()) ? "padded" : "unpadded (" + PACKED_GRAPH + ")";
        return "policy " + policyName + ", batching " + batchPath + ", execution provider " + options.provider()
                + (options.provider() == ExecutionProvider.CPU ? "" : " " + options.deviceId()) + ", served as '"
                + locations.modelName() + "'";
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

    /**
     * The served model's name when {@code specula.model-name} is not set: config.json's
     * {@code _name_or_path} (a Hugging Face id as it is, a local path by its last
     * segment), else the model directory's name, or its parent's when the directory is
     * literally {@code target} (the usual {@code <model>/target} layout).
     */
    static String defaultModelName(Path location) {
        Path directory = directoryOf(location);
        if (directory == null) {
            return PROVIDER;
        }
        String nameOrPath = nameOrPath(directory.resolve("config.json"));
        if (nameOrPath != null) {
            return nameOrPath;
        }
        Path name = directory.toAbsolutePath().normalize().getFileName();
        if (name != null && name.toString().equals("target")) {
            Path parent = directory.toAbsolutePath().normalize().getParent();
            name = parent == null ? name : parent.getFileName();
        }
        return name == null ? PROVIDER : name.toString();
    }

    private static @Nullable String nameOrPath(Path config) {
        if (!Files.isRegularFile(config)) {
            return null;
        }
        try {
            JsonNode node = JSON.readTree(config.toFile()).path("_name_or_path");
            String value = node.isTextual() ? node.asText().trim() : "";
            if (value.isEmpty()) {
                return null;
            }
            // a Hugging Face id is "name" or "org/name"; anything else is a local path
            boolean localPath = !value.matches("[\\w.-]+(/[\\w.-]+)?") || value.startsWith(".");
            if (!localPath) {
                return value;
            }
            String[] segments = value.replace('\\', '/').replaceAll("/+$", "").split("/");
            String last = segments[segments.length - 1];
            return last.isEmpty() ? null : last;
        }
        catch (IOException ex) {
            // config.json is checked, with a clear error, when the model loads
            return null;
        }
    }

    /**
     * The only class touching the optional specula-models-tiny: loaded once its presence
     * is known.
     */
    private static final class EmbeddedPair {

        static boolean isAvailable() {
            return dev.specula.models.tiny.TinyModels.isAvailable();
        }

        /** {target, draft} directories, extracted to the cache on first use. */
        static Path[] extract() {
            dev.specula.models.tiny.TinyModels.Pair pair = dev.specula.models.tiny.TinyModels.extract();
            return new Path[] { pair.target(), pair.draft() };
        }

    }

}
