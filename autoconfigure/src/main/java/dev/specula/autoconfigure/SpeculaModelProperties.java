package dev.specula.autoconfigure;

import java.time.Duration;

import org.springframework.beans.factory.InitializingBean;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.NestedConfigurationProperty;

import dev.specula.model.ExecutionProvider;
import dev.specula.model.MatMulKernels;
import dev.specula.model.RuntimeOptions;

/**
 * The served models: where the target, the draft and the GRIFFIN feature head are, the
 * served model's name, when they load and how ONNX Runtime runs them. Checked once bound:
 * a value out of range stops startup naming the property.
 */
@ConfigurationProperties(SpeculaModelProperties.CONFIG_PREFIX)
public class SpeculaModelProperties implements InitializingBean {

    public static final String CONFIG_PREFIX = "specula";

    /** Property of the target's location. */
    public static final String TARGET_LOCATION = CONFIG_PREFIX + ".target.location";

    /** Property of the draft's location. */
    public static final String DRAFT_LOCATION = CONFIG_PREFIX + ".draft.location";

    /** Property of the GRIFFIN feature head's location. */
    public static final String GRIFFIN_LOCATION = CONFIG_PREFIX + ".griffin.location";

    /** Property of the warm-up's duration. */
    public static final String WARM_UP = CONFIG_PREFIX + ".warm-up";

    /** Property of the target's graph file inside its location. */
    public static final String TARGET_FILE = CONFIG_PREFIX + ".target.file";

    /** Property of the draft's graph file inside its location. */
    public static final String DRAFT_FILE = CONFIG_PREFIX + ".draft.file";

    /**
     * Target model: the large model whose output is returned. Unset (with the draft unset
     * too): the embedded pair.
     */
    @NestedConfigurationProperty
    private final ModelLocation target = new ModelLocation();

    /**
     * Draft model: the small model that proposes tokens; it must share the target's
     * tokenizer.
     */
    @NestedConfigurationProperty
    private final DraftLocation draft = new DraftLocation();

    /**
     * GRIFFIN feature head: a one-layer graph trained on the target that drafts from the
     * target's last hidden states (proposer "griffin"). Unset with the embedded pair: its
     * head, when it ships one.
     */
    @NestedConfigurationProperty
    private final HeadLocation griffin = new HeadLocation();

    /**
     * Name of the served model, as requests and responses name it. Defaults to the
     * target's config.json "_name_or_path" (a Hugging Face id as it is, a local path by
     * its last segment), else the target directory's name, or its parent's when the
     * directory is named "target" ("specula-tiny" for the embedded pair).
     */
    private String modelName;

    /**
     * When the models are loaded: at startup (errors stop the application), or in the
     * background (requests fail as "not ready" until loaded).
     */
    private LoadMode loadMode = LoadMode.EAGER;

    /**
     * How long to decode once the models are loaded, before they serve (plain and
     * speculative generations of a fixed prompt under the configured policy), so the
     * first requests do not run while the JVM compiles the decode loop or ONNX Runtime
     * makes its first allocations. Part of loading: the application starts, or reports
     * "loading", that much later. 0 (the default) turns it off: on the CPU, behind the
     * gateway, 2 s of it made no measurable difference (docs/benchmarks.md).
     */
    private Duration warmUp = Duration.ZERO;

    /** How ONNX Runtime runs the models. */
    private final OnnxRuntime runtime = new OnnxRuntime();

    public ModelLocation getTarget() {
        return target;
    }

    public DraftLocation getDraft() {
        return draft;
    }

    public HeadLocation getGriffin() {
        return griffin;
    }

    public String getModelName() {
        return modelName;
    }

    public void setModelName(String modelName) {
        this.modelName = modelName;
    }

    public LoadMode getLoadMode() {
        return loadMode;
    }

    public void setLoadMode(LoadMode loadMode) {
        this.loadMode = loadMode;
    }

    public Duration getWarmUp() {
        return warmUp;
    }

    public void setWarmUp(Duration warmUp) {
        this.warmUp = warmUp;
    }

    public OnnxRuntime getRuntime() {
        return runtime;
    }

    @Override
    public void afterPropertiesSet() {
        String prefix = CONFIG_PREFIX + ".";
        PropertyChecks.requireLocation(TARGET_LOCATION, target.getLocation());
        PropertyChecks.requireLocation(DRAFT_LOCATION, draft.getLocation());
        PropertyChecks.requireLocation(GRIFFIN_LOCATION, griffin.getLocation());
        PropertyChecks.requireGraphFile(TARGET_FILE, target.getFile(), TARGET_LOCATION, target.getLocation());
        PropertyChecks.requireGraphFile(DRAFT_FILE, draft.getFile(), DRAFT_LOCATION, draft.getLocation());
        if (target.getLocation() == null && draft.getLocation() != null && draft.isEnabled()) {
            throw PropertyChecks.invalid(TARGET_LOCATION, null, "a model location whenever " + DRAFT_LOCATION
                    + " is set (the embedded pair is used only when both are unset)");
        }
        if (target.getLocation() == null && griffin.getLocation() != null && griffin.isEnabled()) {
            throw PropertyChecks.invalid(TARGET_LOCATION, null, "a model location whenever " + GRIFFIN_LOCATION
                    + " is set (a feature head drafts for the target it was trained on; the embedded pair brings its own)");
        }
        if (modelName != null && modelName.isBlank()) {
            throw PropertyChecks.invalid(prefix + "model-name", modelName, "a non-blank name, or unset");
        }
        PropertyChecks.requireNotNegative(WARM_UP, warmUp, "a duration >= 0, e.g. 2s (0 turns it off)");
        PropertyChecks.requireAtLeast(prefix + "runtime.device-id", runtime.getDeviceId(), 0,
                "an integer >= 0 (the GPU index)");
        PropertyChecks.requireAtLeast(prefix + "runtime.intra-op-threads", runtime.getIntraOpThreads(), 0,
                "an integer >= 0 (0 lets ONNX Runtime choose)");
        PropertyChecks.requireAtLeast(prefix + "runtime.prefill-chunk-tokens", runtime.getPrefillChunkTokens(), 1,
                "an integer >= 1 (tokens per ONNX Runtime call while prefilling; default 256)");
    }

    /** When models are loaded. */
    public enum LoadMode {

        /**
         * While the application starts; a missing or broken model stops it with a clear
         * message.
         */
        EAGER,
        /**
         * On a background thread; the application starts at once and reports "loading"
         * until done.
         */
        BACKGROUND

    }

    /** One model's location. */
    public static class ModelLocation {

        /**
         * Model directory in the Optimum text-generation-with-past layout, or its
         * model.onnx: a path, "file:..." or "classpath:...".
         */
        private String location;

        /**
         * Graph to load, relative to the location, when the location is a directory with
         * several: e.g. "onnx/model_q4.onnx" in onnx-community's layout. Unset:
         * model.onnx, else onnx/model.onnx.
         */
        private String file;

        public String getLocation() {
            return location;
        }

        public void setLocation(String location) {
            this.location = location;
        }

        public String getFile() {
            return file;
        }

        public void setFile(String file) {
            this.file = file;
        }

    }

    /** The draft's location, and whether to use one. */
    public static class DraftLocation extends ModelLocation {

        /** Whether to use a draft; false serves plain target decoding only. */
        private boolean enabled = true;

        public boolean isEnabled() {
            return enabled;
        }

        public void setEnabled(boolean enabled) {
            this.enabled = enabled;
        }

    }

    /** The GRIFFIN feature head's location, and whether to use one. */
    public static class HeadLocation {

        /**
         * Feature head directory (model.onnx, a packed graph taking hidden_states;
         * config.json with model_type griffin_head; tokenizer.json), or its model.onnx: a
         * path, "file:..." or "classpath:...".
         */
        private String location;

        /**
         * Whether to load the feature head: the embedded pair's when it ships one, else
         * the one at the location; false drafts without it.
         */
        private boolean enabled = true;

        public String getLocation() {
            return location;
        }

        public void setLocation(String location) {
            this.location = location;
        }

        public boolean isEnabled() {
            return enabled;
        }

        public void setEnabled(boolean enabled) {
            this.enabled = enabled;
        }

    }

    /**
     * How ONNX Runtime runs the models; defaults are {@link RuntimeOptions#defaults()}'s.
     */
    public static class OnnxRuntime {

        /**
         * Execution provider: CPU, or CUDA (needs
         * com.microsoft.onnxruntime:onnxruntime_gpu instead of onnxruntime).
         */
        private ExecutionProvider provider = ExecutionProvider.CPU;

        /** GPU index for the CUDA provider. */
        private int deviceId = 0;

        /**
         * Threads inside one ONNX Runtime operator; 0 lets ONNX Runtime choose. 1 is
         * fastest on small CPUs.
         */
        private int intraOpThreads = 1;

        /**
         * Whether idle ONNX Runtime threads spin (only matters with more than one
         * intra-op thread).
         */
        private boolean spinning = false;

        /**
         * Most tokens of one prompt fed to one ONNX Runtime call (like llama.cpp's
         * n_batch): longer prompts are prefilled in chunks.
         */
        private int prefillChunkTokens = 256;

        /**
         * Whether a sequence's KV cache is written in place on the CPU when the graph can
         * (graphs of specula_tools export): each call writes its new slots into one
         * preallocated buffer per layer instead of returning a new copy of the whole
         * cache. False only to compare.
         */
        private boolean kvInPlace = true;

        /**
         * Whose kernels run weight MatMuls on the CPU, float32 ones and 4- and 8-bit ones
         * computed with int8 activations: onnx-runtime (the graph as exported), auto
         * (Specula's native ones where they load: Linux x86-64 with AVX2 and FMA; ONNX
         * Runtime's elsewhere) or specula (Specula's, or the model does not load).
         * Float16 weights, and 4- and 8-bit ones with float activations, keep ONNX
         * Runtime's.
         */
        private MatMulKernels kernels = RuntimeOptions.DEFAULT_KERNELS;

        public ExecutionProvider getProvider() {
            return provider;
        }

        public void setProvider(ExecutionProvider provider) {
            this.provider = provider;
        }

        public int getDeviceId() {
            return deviceId;
        }

        public void setDeviceId(int deviceId) {
            this.deviceId = deviceId;
        }

        public int getIntraOpThreads() {
            return intraOpThreads;
        }

        public void setIntraOpThreads(int intraOpThreads) {
            this.intraOpThreads = intraOpThreads;
        }

        public boolean isSpinning() {
            return spinning;
        }

        public void setSpinning(boolean spinning) {
            this.spinning = spinning;
        }

        public int getPrefillChunkTokens() {
            return prefillChunkTokens;
        }

        public void setPrefillChunkTokens(int prefillChunkTokens) {
            this.prefillChunkTokens = prefillChunkTokens;
        }

        public boolean isKvInPlace() {
            return kvInPlace;
        }

        public void setKvInPlace(boolean kvInPlace) {
            this.kvInPlace = kvInPlace;
        }

        public MatMulKernels getKernels() {
            return kernels;
        }

        public void setKernels(MatMulKernels kernels) {
            this.kernels = kernels;
        }

        /** These settings as the engine takes them. */
        public RuntimeOptions toRuntimeOptions() {
            return new RuntimeOptions(provider, deviceId, intraOpThreads, spinning, prefillChunkTokens)
                .withKvInPlace(kvInPlace)
                .withKernels(kernels);
        }

    }

}
