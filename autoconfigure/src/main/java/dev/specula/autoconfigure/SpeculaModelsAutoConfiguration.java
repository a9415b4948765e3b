package dev.specula.autoconfigure;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Optional;
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
import dev.specula.model.Decoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.ExecutionProvider;
import dev.specula.model.RuntimeOptions;
import dev.specula.proposer.ProposerKind;
import dev.specula.serving.BatchingSettings;
import dev.specula.serving.ModelPairHandle;
import dev.specula.serving.ModelWarmUp;
import dev.specula.serving.PolicySettings;

/**
 * The model pair: where it is ({@code specula.target/draft/griffin.location}, or the
 * embedded pair when {@code specula-models-tiny} is on the classpath and neither the
 * target nor the draft location is set) and the loaded {@link ModelPairHandle}, which
 * this configuration created and so closes with the context. Selected like any Spring AI
 * model: {@code spring.ai.model.chat=specula} (the default) or {@code none}.
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
     * Where the target, the draft and the feature head are, resolved to paths.
     *
     * @param target the target's directory or model.onnx
     * @param draft the draft's, or null for none
     * @param head the GRIFFIN feature head's directory or model.onnx, or null for none
     * (its only graph is packed: batching does not change it)
     * @param modelName the served model's name
     * @param embedded whether these are the embedded pair's (no location was configured)
     */
    public record ModelLocationsResolved(Path target, @Nullable Path draft, @Nullable Path head, String modelName,
            boolean embedded) {

        /** Locations without a feature head. */
        public ModelLocationsResolved(Path target, @Nullable Path draft, String modelName, boolean embedded) {
            this(target, draft, null, modelName, embedded);
        }

        /** Configured locations without a feature head. */
        public ModelLocationsResolved(Path target, @Nullable Path draft, String modelName) {
            this(target, draft, null, modelName, false);
        }

        /** These locations with {@code target} and {@code draft} instead. */
        ModelLocationsResolved withGraphs(Path newTarget, @Nullable Path newDraft) {
            return new ModelLocationsResolved(newTarget, newDraft, head, modelName, embedded);
        }

    }

    @Bean
    @ConditionalOnMissingBean
    ModelLocationsResolved speculaModelLocations(SpeculaModelProperties properties, ResourceLoader resourceLoader) {
        SpeculaModelProperties.ModelLocation target = properties.getTarget();
        SpeculaModelProperties.DraftLocation draft = properties.getDraft();
        SpeculaModelProperties.HeadLocation griffin = properties.getGriffin();
        if (target.getLocation() == null && isEmbeddedPairAvailable(resourceLoader.getClassLoader())) {
            Path[] pair = EmbeddedPair.extract();
            String name = properties.getModelName() != null ? properties.getModelName() : EMBEDDED_MODEL_NAME;
            return new ModelLocationsResolved(pair[0], draft.isEnabled() ? pair[1] : null,
                    griffin.isEnabled() ? pair[2] : null, name, true);
        }
        Path targetLocation = ModelLocations.resolve(target.getLocation(), SpeculaModelProperties.TARGET_LOCATION,
                resourceLoader);
        Path targetPath = ModelLocations.graph(targetLocation, target.getFile(), SpeculaModelProperties.TARGET_FILE);
        Path draftPath = draft.isEnabled() && draft.getLocation() != null ? ModelLocations.graph(
                ModelLocations.resolve(draft.getLocation(), SpeculaModelProperties.DRAFT_LOCATION, resourceLoader),
                draft.getFile(), SpeculaModelProperties.DRAFT_FILE) : null;
        Path headPath = griffin.isEnabled() && griffin.getLocation() != null
                ? ModelLocations.resolve(griffin.getLocation(), SpeculaModelProperties.GRIFFIN_LOCATION, resourceLoader)
                : null;
        String name = properties.getModelName() != null ? properties.getModelName() : defaultModelName(targetLocation);
        return new ModelLocationsResolved(targetPath, draftPath, headPath, name, false);
    }

    /** Created here, so closed here (after the service that uses it). */
    @Bean(destroyMethod = "close")
    @ConditionalOnMissingBean
    ModelPairHandle speculaModelPairHandle(ModelLocationsResolved locations, SpeculaModelProperties properties,
            SpeculaBatchingProperties batching, ObjectProvider<SpeculaPolicyProperties> policy) {
        RuntimeOptions options = properties.getRuntime().toRuntimeOptions();
        ModelLocationsResolved graphs = batchGraphs(locations, batching);
        String servingSummary = servingSummary(locations, graphs, batching, policy.getIfAvailable(), options);
        SpeculaPolicyProperties policyProperties = policy.getIfAvailable();
        Trees trees = policyProperties != null && policyProperties.tree() != null
                ? new Trees(policyProperties.proposerKind()) : null;
        WarmUp warmUp = new WarmUp(properties.getWarmUp(),
                policyProperties != null ? policyProperties.toSettings() : PolicySettings.defaults(),
                batching.toSettings());
        if (properties.getLoadMode() == SpeculaModelProperties.LoadMode.BACKGROUND) {
            Executor loaderThread = (task) -> {
                Thread thread = new Thread(task, "specula-model-loader");
                thread.setDaemon(true);
                thread.start();
            };
            return ModelPairHandle.loading(() -> load(graphs, options, servingSummary, trees, warmUp), loaderThread);
        }
        return ModelPairHandle.ready(load(graphs, options, servingSummary, trees, warmUp));
    }

    /**
     * Draft trees are configured ({@code specula.policy.draft-shape=tree}).
     *
     * @param proposer the configured default proposer, null when unset
     */
    private record Trees(@Nullable ProposerKind proposer) {
    }

    /**
     * {@code specula.warm-up}, with the policy and batching the service will run.
     */
    private record WarmUp(Duration budget, PolicySettings policy, BatchingSettings batching) {
    }

    /**
     * Loads the pair, checks that it can draft the configured trees, and warms it up.
     */
    private static ModelPair load(ModelLocationsResolved locations, RuntimeOptions options, String servingSummary,
            @Nullable Trees trees, WarmUp warmUp) {
        long start = System.nanoTime();
        ModelPair pair = PairLoader.load(locations, options);
        try {
            if (trees != null) {
                checkTrees(pair, trees.proposer());
            }
            if (logger.isInfoEnabled()) {
                logger.info(
                        loadedMessage(pair, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start), servingSummary));
            }
            if (!warmUp.budget().isZero()) {
                ModelWarmUp.Report report = ModelWarmUp.run(pair, warmUp.policy(), warmUp.batching(), warmUp.budget());
                logger.info("Specula warmed up in " + TimeUnit.NANOSECONDS.toMillis(report.nanos()) + " ms: "
                        + report.plainGenerations() + " plain and " + report.speculativeGenerations()
                        + " speculative generations, " + report.tokens() + " tokens (" + SpeculaModelProperties.WARM_UP
                        + ")");
            }
            return pair;
        }
        catch (RuntimeException ex) {
            pair.close();
            throw ex;
        }
    }

    /**
     * The graphs decoding runs on: unless the padded batch path is set, each model's
     * {@value #PACKED_GRAPH} from its directory when it has one: the unpadded path
     * (EMS-SD) needs it, and without batching a sequence alone decodes on it too (one
     * row, no mask-to-lengths nodes and no padded-batch branch in each layer: a cheaper
     * call, docs/benchmarks.md "The CLI decodes on the packed graph"). The padded path
     * uses the configured graphs. A feature head's only graph is packed already: it stays
     * as configured.
     */
    static ModelLocationsResolved batchGraphs(ModelLocationsResolved locations, SpeculaBatchingProperties batching) {
        if (batching.getPath() == SpeculaBatchingProperties.BatchPath.PADDED) {
            return locations;
        }
        Path packedTarget = packedGraph(locations.target());
        if (packedTarget == null) {
            if (batching.isEnabled() && batching.getPath() == SpeculaBatchingProperties.BatchPath.UNPADDED) {
                throw PropertyChecks.invalid(SpeculaBatchingProperties.CONFIG_PREFIX + ".path", "unpadded",
                        "padded or auto: the target has no " + PACKED_GRAPH + " next to its model.onnx (export it with "
                                + "`python -m specula_tools export ... --packed`)");
            }
            return locations;
        }
        Path packedDraft = locations.draft() == null ? null : packedGraph(locations.draft());
        return locations.withGraphs(packedTarget, packedDraft != null ? packedDraft : locations.draft());
    }

    private static Path packedGraph(Path location) {
        Path directory = directoryOf(location);
        Path packed = directory == null ? null : directory.resolve(PACKED_GRAPH);
        return packed != null && Files.isRegularFile(packed) ? packed : null;
    }

    /**
     * specula.policy.draft-shape=tree needs a drafter (the draft model, or the feature
     * head when the proposer is griffin or the head drafts alone) and the target's and
     * the drafter's graphs packed (an attention_bias), refused at startup otherwise.
     */
    private static void checkTrees(ModelPair pair, @Nullable ProposerKind proposer) {
        String property = SpeculaPolicyProperties.CONFIG_PREFIX + ".draft-shape";
        boolean griffin = proposer == null ? pair.draft().isEmpty() && pair.head().isPresent() : proposer.usesHead();
        Optional<Decoder> drafter = griffin ? pair.head() : pair.draft();
        String problem = null;
        if (drafter.isEmpty()) {
            problem = griffin ? "no feature head is loaded (" + SpeculaModelProperties.GRIFFIN_LOCATION + ")"
                    : "neither a draft model (" + SpeculaModelProperties.DRAFT_LOCATION + ") nor a feature head ("
                            + SpeculaModelProperties.GRIFFIN_LOCATION + ") is loaded";
        }
        else if (griffin && !pair.target().supportsTrees()) {
            // a feature head's only graph is packed
            problem = "the target's graph loaded (" + pair.target().files().model() + ") is not packed: a tree needs "
                    + PACKED_GRAPH + " next to the target's model.onnx and " + SpeculaBatchingProperties.CONFIG_PREFIX
                    + ".path unpadded or auto";
        }
        else if (!pair.target().supportsTrees() || !drafter.get().supportsTrees()) {
            problem = "the graphs loaded (" + pair.target().files().model() + ", " + drafter.get().files().model()
                    + ") are not both packed: a tree needs " + PACKED_GRAPH + " next to each model's model.onnx and "
                    + SpeculaBatchingProperties.CONFIG_PREFIX + ".path unpadded or auto";
        }
        if (problem != null) {
            pair.close();
            throw PropertyChecks.invalid(property, "tree", "chain, since " + problem);
        }
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
        pair.draft()
            .ifPresentOrElse((draft) -> message.append("; draft ").append(describe(draft)),
                    () -> message.append("; no draft"));
        pair.head().ifPresent((head) -> message.append("; GRIFFIN feature head ").append(describe(head)));
        return message.append("; ").append(servingSummary).toString();
    }

    private static String describe(Decoder decoder) {
        return decoder instanceof DecoderModel model ? describe(model) : decoder.files().model().toString();
    }

    private static String describe(DecoderModel model) {
        return model.files().model() + " (" + model.config().modelType() + ", " + parameters(model.files().model())
                + " parameters, vocabulary " + model.tokenizer().vocabularySize() + ", " + model.logitsWidth()
                + " logits, context " + model.contextLength() + ", " + kernels(model) + ")";
    }

    /** Whose kernels run the model's weight MatMuls (specula.runtime.kernels). */
    private static String kernels(DecoderModel model) {
        return model.kernelsSummary();
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
        String policyName = locations.draft() == null && locations.head() == null ? "plain (no draft)"
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

        /**
         * {target, draft, feature head (null when the pair ships none)} directories,
         * extracted to the cache on first use.
         */
        static Path[] extract() {
            dev.specula.models.tiny.TinyModels.Pair pair = dev.specula.models.tiny.TinyModels.extract();
            return new Path[] { pair.target(), pair.draft(), pair.head().orElse(null) };
        }

    }

}
