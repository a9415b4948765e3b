package dev.specula.model;

import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.platform.Fp16Conversions;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.specula.kv.KvLayout;
import dev.specula.kv.KvSequence;
import dev.specula.kv.KvStore;
import dev.specula.tokenizer.ChatTemplate;
import dev.specula.tokenizer.TextTokenizer;
import dev.specula.tokenizer.TokenizerLoadException;

/**
 * One exported decoder: its ONNX Runtime session (created from the file path, so external
 * weights and models over 2 GB work), the signature read from the graph, its config,
 * tokenizer and chat template.
 *
 * <p>
 * {@link #forward(List)} is batch-first: it takes every active sequence's new tokens and
 * runs one ONNX Runtime call per {@link KvStore} they belong to ({@link BatchStep}), so
 * sequences that share a store (the batching scheduler's) are stepped together and a
 * sequence alone in its own store takes the single-sequence path.
 */
public final class DecoderModel implements Decoder {

    private static final Logger LOG = LoggerFactory.getLogger(DecoderModel.class);

    /**
     * Rollback on an inexact graph: compact after every rollback, so no hole is ever
     * attended.
     */
    private static final KvStore.Compaction NO_HOLES = new KvStore.Compaction(0, 0);

    private final String name;

    private final ModelFiles files;

    private final String kvIdentity;

    private final ModelConfig config;

    final GraphSignature signature;

    private final TextTokenizer tokenizer;

    private final Optional<ChatTemplate> chatTemplate;

    final OrtEnvironment environment;

    final OrtSession session;

    /**
     * How many of the session's MatMuls run on Specula's kernels
     * ({@link RuntimeOptions#kernels()}); 0 on ONNX Runtime's.
     */
    private final int speculaMatMuls;

    /**
     * Of {@link #speculaMatMuls}, the 4- and 8-bit ones ({@code PanelMatMulQ4},
     * {@code PanelMatMulQ8}).
     */
    private final int quantizedSpeculaMatMuls;

    /** Of {@link #quantizedSpeculaMatMuls}, the 8-bit ones. */
    private final int eightBitSpeculaMatMuls;

    /** GroupQueryAttention nodes on Specula's kernel ({@code SpeculaAttention}). */
    private final int speculaAttentions;

    /**
     * [1, kvHeads, 0, headDim]: the past of an empty cache, shared by every layer and
     * sequence.
     */
    final OnnxTensor emptyPast;

    /** use_cache_branch and logits_to_keep, shared by the calls. */
    final ConstantInputs constants;

    /**
     * A HashMap capacity that holds a call's inputs (or pinned outputs) without growing:
     * a past key and value per layer and up to six other inputs.
     */
    final int feedsCapacity;

    final String[] pastKeys;

    final String[] pastValues;

    final String[] presentKeys;

    final String[] presentValues;

    /**
     * {@link #requested}'s answer for every combination, at index logits · 4 + hidden · 2
     * + presentsBound (each 0 or 1): made once, not per call.
     */
    private final List<Set<String>> requestedOutputs;

    /**
     * Whether logits have a fixed width, so they can be written into a direct buffer of
     * ours.
     */
    final boolean pinLogits;

    /**
     * Whether masked slots change nothing ({@link HoleProbe}); when not, rollback
     * compacts by copy.
     */
    private final boolean holesExact;

    /**
     * Whether this model's one-row KV stores are written in place ({@link InPlaceProbe},
     * {@link RuntimeOptions#kvInPlace()}).
     */
    private final boolean kvInPlace;

    /**
     * The most tokens of one sequence a call feeds before a step's last call
     * ({@link RuntimeOptions#prefillChunkTokens()}).
     */
    final int prefillChunkTokens;

    final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

    /** Whether ONNX Runtime's profiler is on ({@link RuntimeOptions#profilePrefix()}). */
    private final boolean profiled;

    /**
     * Whether the session runs on the process's global intra-op pool
     * ({@link OrtEnvironments#globalPool()}) rather than a pool of its own.
     */
    private final boolean sharedThreadPool;

    /**
     * {@link #callTokens()}: the graph's {@code specula.min_call_tokens} and
     * {@code specula.call_tokens_multiple}, else {@link CallTokens#ANY}.
     */
    private final CallTokens callTokens;

    /** The graph metadata key of {@link CallTokens#min()}, written by tools' quantize. */
    public static final String MIN_CALL_TOKENS_METADATA = "specula.min_call_tokens";

    /**
     * The graph metadata key of {@link CallTokens#multiple()}, written by tools'
     * quantize.
     */
    public static final String CALL_TOKENS_MULTIPLE_METADATA = "specula.call_tokens_multiple";

    private DecoderModel(ModelFiles files, ModelConfig config, GraphSignature signature, TextTokenizer tokenizer,
            Optional<ChatTemplate> chatTemplate, OrtEnvironment environment, OrtSession session, Created created,
            int prefillChunkTokens, boolean profiled, boolean sharedThreadPool, boolean tryKvInPlace)
            throws OrtException {
        this.name = files.directory().getFileName().toString();
        this.files = files;
        this.kvIdentity = files.kvIdentity();
        this.config = config;
        this.signature = signature;
        this.tokenizer = tokenizer;
        this.chatTemplate = chatTemplate;
        this.environment = environment;
        this.session = session;
        this.speculaMatMuls = created.speculaMatMuls();
        this.quantizedSpeculaMatMuls = created.quantizedMatMuls();
        this.eightBitSpeculaMatMuls = created.eightBitMatMuls();
        this.speculaAttentions = created.attentions();
        CallTokens declared = readCallTokens(files, session);
        // Specula's 4- and 8-bit kernels compute each row on its own whatever the call:
        // ONNX
        // Runtime's even-call rule goes; the two-token minimum stays while ONNX Runtime
        // runs a matrix product or an attention of the graph (its one-row paths, which
        // the int8 rounding magnifies), and goes when Specula's kernels run them all
        this.callTokens = created.oneTokenCallsIndependent() ? CallTokens.ANY
                : created.rowsIndependent() ? new CallTokens(declared.min(), 1) : declared;
        // int8 activations magnify the last-bit differences a hole (or a pad) makes in
        // the attention's sums: such a cache is kept compact, and its sequences step
        // alone
        this.holesExact = declared.any() && probeHoles(files, signature, config, environment, session);
        this.kvInPlace = tryKvInPlace && probeInPlace(files, signature, config, environment, session);
        int layers = signature.layers();
        this.pastKeys = new String[layers];
        this.pastValues = new String[layers];
        this.presentKeys = new String[layers];
        this.presentValues = new String[layers];
        for (int layer = 0; layer < layers; layer++) {
            pastKeys[layer] = GraphSignature.pastKey(layer);
            pastValues[layer] = GraphSignature.pastValue(layer);
            presentKeys[layer] = GraphSignature.presentKey(layer);
            presentValues[layer] = GraphSignature.presentValue(layer);
        }
        List<Set<String>> sets = new ArrayList<>(8);
        for (int combination = 0; combination < 8; combination++) {
            Set<String> names = new LinkedHashSet<>();
            if ((combination & 4) != 0) {
                names.add(GraphSignature.LOGITS);
            }
            if ((combination & 2) != 0 && signature.hasHiddenState()) {
                names.add(signature.hiddenOutput());
            }
            if ((combination & 1) == 0) {
                names.addAll(Arrays.asList(presentKeys));
                names.addAll(Arrays.asList(presentValues));
            }
            sets.add(Set.copyOf(names));
        }
        this.requestedOutputs = List.copyOf(sets);
        this.pinLogits = signature.logitsWidth() > 0;
        this.prefillChunkTokens = prefillChunkTokens;
        this.profiled = profiled;
        this.sharedThreadPool = sharedThreadPool;
        long[] emptyShape = { 1, signature.kvHeads(), 0, signature.headDim() };
        this.emptyPast = signature.kvType() == OnnxJavaType.FLOAT16
                ? OnnxTensor.createTensor(environment, ShortBuffer.allocate(0), emptyShape, OnnxJavaType.FLOAT16)
                : OnnxTensor.createTensor(environment, FloatBuffer.allocate(0), emptyShape);
        this.constants = new ConstantInputs(environment, signature);
        this.feedsCapacity = (int) ((2 * signature.layers() + 6) / 0.75f) + 1;
    }

    /**
     * Loads a model directory (or a {@code model.onnx} path).
     * @throws ModelLoadException naming the path when a file is missing, corrupt or not
     * in the expected layout
     * @throws ExecutionProviderUnavailableException when CUDA is asked for but the ONNX
     * Runtime on the classpath does not have it
     */
    public static DecoderModel load(Path location, RuntimeOptions options) {
        ModelFiles files = ModelFiles.resolve(location);
        ModelConfig config = ModelConfig.read(files);
        Optional<ChatTemplate> template = loadChatTemplate(files);
        OrtEnvironment environment = OrtEnvironments.get(threadPool(options));
        Created created = createSession(environment, files.model(), options);
        OrtSession session = created.session();
        TextTokenizer tokenizer = null;
        try {
            GraphSignature signature = GraphSignature.introspect(files.model(), session.getInputInfo(),
                    session.getOutputInfo());
            tokenizer = loadTokenizer(files);
            return new DecoderModel(files, config, signature, tokenizer, template, environment, session, created,
                    options.prefillChunkTokens(), options.profilePrefix() != null, sharesGlobalPool(options),
                    options.kvInPlace() && options.provider() == ExecutionProvider.CPU);
        }
        catch (OrtException | RuntimeException ex) {
            if (tokenizer != null) {
                tokenizer.close();
            }
            closeQuietly(session);
            if (ex instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw new ModelLoadException(files.model(),
                    "Cannot read the graph of " + files.model() + ": " + ex.getMessage(), ex);
        }
    }

    private static boolean probeHoles(ModelFiles files, GraphSignature signature, ModelConfig config,
            OrtEnvironment environment, OrtSession session) throws OrtException {
        double change = HoleProbe.maxLogitChange(environment, session, signature, config.vocabSize());
        if (change <= HoleProbe.tolerance(signature)) {
            return true;
        }
        LOG.info("{} lets masked cache slots change its logits (by {} in a probe at load; graphs that take only "
                + "lengths from attention_mask, such as GroupQueryAttention ones, do): rejected draft tokens are "
                + "removed by copying the cache, and its sequences are decoded one at a time, not batched",
                files.model(), String.format(java.util.Locale.ROOT, "%.3g", change));
        return false;
    }

    private static boolean probeInPlace(ModelFiles files, GraphSignature signature, ModelConfig config,
            OrtEnvironment environment, OrtSession session) {
        InPlaceProbe.Outcome outcome = InPlaceProbe.probe(environment, session, signature, config.vocabSize());
        if (!outcome.writesInPlace()) {
            LOG.info("{} cannot write its new KV into the past it is given ({}): each call's present KV is a new "
                    + "copy of the past and the new slots (graphs of `python -m specula_tools export` write in place)",
                    files.model(), outcome.reason());
        }
        return outcome.writesInPlace();
    }

    /**
     * Whose kernels run this model's weight MatMuls (float32, and 4- or 8-bit with int8
     * activations): {@link MatMulKernels#SPECULA} when its session runs them on Specula's
     * ({@link RuntimeOptions#kernels()} asked for them and they could run), else
     * {@link MatMulKernels#ONNX_RUNTIME}.
     */
    public MatMulKernels kernelsInUse() {
        return speculaMatMuls + speculaAttentions > 0 ? MatMulKernels.SPECULA : MatMulKernels.ONNX_RUNTIME;
    }

    /**
     * How many of this model's MatMuls run on Specula's kernels (0 on ONNX Runtime's):
     * float32 ones and 4- and 8-bit ones with int8 activations.
     */
    public int speculaMatMuls() {
        return speculaMatMuls;
    }

    /** Of {@link #speculaMatMuls()}, the 4- and 8-bit ones. */
    public int quantizedSpeculaMatMuls() {
        return quantizedSpeculaMatMuls;
    }

    /**
     * Whose kernels run this model's weight MatMuls, in words: "31 float32 MatMuls on
     * Specula's kernels", "31 4-bit MatMuls on Specula's kernels" or "ONNX Runtime's
     * MatMul kernels".
     */
    public String kernelsSummary() {
        return speculaMatMuls + speculaAttentions == 0 ? "ONNX Runtime's MatMul kernels"
                : summary(speculaMatMuls - quantizedSpeculaMatMuls, quantizedSpeculaMatMuls - eightBitSpeculaMatMuls,
                        eightBitSpeculaMatMuls, speculaAttentions);
    }

    /** Of this model's attention nodes, how many run on Specula's kernel. */
    public int speculaAttentions() {
        return speculaAttentions;
    }

    private static String summary(int floats, int fourBit, int eightBit, int attentions) {
        List<String> parts = new ArrayList<>();
        if (floats > 0) {
            parts.add(floats + " float32");
        }
        if (fourBit > 0) {
            parts.add(fourBit + " 4-bit");
        }
        if (eightBit > 0) {
            parts.add(eightBit + " 8-bit");
        }
        String matMuls = parts.isEmpty() ? ""
                : String.join(" and ", parts) + (floats + fourBit + eightBit == 1 ? " MatMul" : " MatMuls");
        String attention = attentions == 0 ? "" : attentions + (attentions == 1 ? " attention" : " attentions");
        return (matMuls.isEmpty() ? attention : attention.isEmpty() ? matMuls : matMuls + " and " + attention)
                + " on Specula's kernels";
    }

    /** Whether this model's one-row KV stores are written in place. */
    public boolean writesKvInPlace() {
        return kvInPlace;
    }

    private static Optional<ChatTemplate> loadChatTemplate(ModelFiles files) {
        try {
            return ChatTemplate.load(files.tokenizerConfig(), files.chatTemplate());
        }
        catch (TokenizerLoadException ex) {
            throw new ModelLoadException(ex.getPath(), ex.getMessage(), ex);
        }
    }

    private static TextTokenizer loadTokenizer(ModelFiles files) {
        try {
            return TextTokenizer.load(files.tokenizer());
        }
        catch (TokenizerLoadException ex) {
            throw new ModelLoadException(ex.getPath(), ex.getMessage(), ex);
        }
    }

    /** The property and the CLI option that choose the kernels, for errors. */
    static final String KERNELS_SETTING = "specula.runtime.kernels (CLI: --kernels)";

    /**
     * The graph with its float32 weight MatMuls on Specula's kernels, when
     * {@link RuntimeOptions#kernels()} asks for them and they can run here; null for ONNX
     * Runtime's. {@link MatMulKernels#SPECULA} refuses to load where they cannot,
     * {@link MatMulKernels#AUTO} says why in the log.
     */
    private static @Nullable PanelGraph panelGraph(OrtEnvironment environment, Path model, RuntimeOptions options) {
        if (options.kernels() == MatMulKernels.ONNX_RUNTIME) {
            return null;
        }
        String unavailable = null;
        if (options.provider() != ExecutionProvider.CPU) {
            unavailable = "they run on the CPU provider, not " + options.provider();
        }
        else {
            try {
                NativeKernels.library();
            }
            catch (IllegalStateException ex) {
                unavailable = ex.getMessage();
            }
        }
        if (unavailable != null) {
            return kernelsUnavailable(model, options, unavailable, null);
        }
        try {
            long start = System.nanoTime();
            PanelGraph graph = PanelGraph.rewrite(model, environment);
            LOG.debug("{}: graph rewritten for Specula's kernels in {} ms", model,
                    (System.nanoTime() - start) / 1_000_000);
            if (graph.rewritten() == 0) {
                if (options.kernels() == MatMulKernels.SPECULA) {
                    LOG.info(
                            "{}: no weight MatMul for Specula's kernels (they take float32 weights, and 4- and 8-bit ones "
                                    + "computed with int8 activations; float16 weights keep ONNX Runtime's)",
                            model);
                }
                graph.close();
                return null;
            }
            return graph;
        }
        catch (java.io.IOException | OrtException | IllegalArgumentException ex) {
            return kernelsUnavailable(model, options, "cannot rewrite the graph: " + ex.getMessage(), ex);
        }
        catch (OutOfMemoryError ex) {
            return kernelsUnavailable(model, options, "no room in the JVM's memory to rewrite the graph ("
                    + ex.getMessage() + "): raise -Xmx or -XX:MaxDirectMemorySize", null);
        }
    }

    private static @Nullable PanelGraph kernelsUnavailable(Path model, RuntimeOptions options, String why,
            @Nullable Exception cause) {
        if (options.kernels() == MatMulKernels.SPECULA) {
            throw new ModelLoadException(model, "Specula's MatMul kernels cannot run " + model + ": " + why + ". Set "
                    + KERNELS_SETTING + " to auto (ONNX Runtime's where Specula's cannot run) or onnx-runtime.", cause);
        }
        LOG.info("{}: ONNX Runtime's MatMul kernels, as Specula's cannot run here: {}", model, why);
        return null;
    }

    /**
     * A session, how many of its MatMuls run on Specula's kernels (all, and the quantized
     * ones), and whether its rows are computed each on its own whatever the call (every
     * quantized MatMul of a graph that declared call sizes for ONNX Runtime's is
     * Specula's).
     */
    private record Created(OrtSession session, int speculaMatMuls, int quantizedMatMuls, int eightBitMatMuls,
            int attentions, boolean rowsIndependent, boolean oneTokenCallsIndependent) {

        static Created onnxRuntime(OrtSession session) {
            return new Created(session, 0, 0, 0, 0, false, false);
        }

        static Created specula(OrtSession session, PanelGraph panels) {
            return new Created(session, panels.matMuls() + panels.quantizedMatMuls(), panels.quantizedMatMuls(),
                    panels.eightBitMatMuls(), panels.attentions(), panels.everyQuantizedMatMulRewritten(),
                    panels.everyRowOnItsOwn());
        }

    }

    private static Created createSession(OrtEnvironment environment, Path model, RuntimeOptions options) {
        PanelGraph panels = panelGraph(environment, model, options);
        try {
            return createSession(environment, model, options, panels);
        }
        finally {
            // ONNX Runtime copied the weights it was given into the session
            // (AddExternalInitializers): ours go now
            if (panels != null) {
                panels.close();
            }
        }
    }

    private static Created createSession(OrtEnvironment environment, Path model, RuntimeOptions options,
            @Nullable PanelGraph panels) {
        try (OrtSession.SessionOptions sessionOptions = new OrtSession.SessionOptions()) {
            sessionOptions.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            sessionOptions.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
            sessionOptions.setInterOpNumThreads(1);
            if (sharesGlobalPool(options)) {
                // the process's pool, shared with the other models of these options
                sessionOptions.disablePerSessionThreads();
            }
            else {
                sessionOptions.setIntraOpNumThreads(options.intraOpThreads());
                sessionOptions.addConfigEntry("session.intra_op.allow_spinning", options.spinning() ? "1" : "0");
            }
            if (options.profilePrefix() != null) {
                sessionOptions.enableProfiling(options.profilePrefix().toString());
            }
            if (options.provider() == ExecutionProvider.CUDA) {
                try {
                    sessionOptions.addCUDA(options.deviceId());
                }
                catch (OrtException | RuntimeException | UnsatisfiedLinkError ex) {
                    throw new ExecutionProviderUnavailableException(ExecutionProvider.CUDA,
                            "The CUDA execution provider is not available (" + ex.getMessage()
                                    + "). Replace the dependency " + "com.microsoft.onnxruntime:onnxruntime with "
                                    + ExecutionProviderUnavailableException.CUDA_ARTIFACT
                                    + " (same version) and install CUDA and cuDNN, or run on the CPU provider.",
                            ex);
                }
            }
            if (panels != null) {
                registerKernels(sessionOptions, model, panels);
                try {
                    return Created.specula(environment.createSession(panels.model(), sessionOptions), panels);
                }
                catch (OrtException ex) {
                    String message = "Cannot load " + model + " with its " + panels.rewritten()
                            + " MatMuls on Specula's kernels: " + ex.getMessage();
                    if (options.kernels() == MatMulKernels.SPECULA) {
                        throw new ModelLoadException(model, message + ". Set " + KERNELS_SETTING
                                + " to auto or onnx-runtime to load the graph as exported, and report it.", ex);
                    }
                    // auto: the graph as exported, on fresh session options
                    LOG.warn("{}; loading the graph as exported, on ONNX Runtime's kernels (please report it)",
                            message);
                    return createSession(environment, model, options, null);
                }
            }
            try {
                return Created.onnxRuntime(environment.createSession(model.toString(), sessionOptions));
            }
            catch (OrtException ex) {
                throw new ModelLoadException(model,
                        "Cannot load ONNX model " + model + " (corrupt or not an ONNX file?): " + ex.getMessage()
                                + ". Re-export it with `python -m specula_tools export`.",
                        ex);
            }
        }
        catch (OrtException ex) {
            throw new ModelLoadException(model,
                    "Cannot configure an ONNX Runtime session for " + model + ": " + ex.getMessage(), ex);
        }
    }

    /**
     * Registers the kernel library (which {@link NativeKernels#library()} already saw
     * register in this process) and the panels on these session options.
     */
    private static void registerKernels(OrtSession.SessionOptions sessionOptions, Path model, PanelGraph panels)
            throws OrtException {
        sessionOptions.registerCustomOpLibrary(NativeKernels.library().toString());
        // the graph comes from memory: its other external weights lie beside the file
        sessionOptions.addConfigEntry("session.model_external_initializers_file_folder_path",
                model.toAbsolutePath().getParent().toString());
        sessionOptions.addExternalInitializers(panels.initializers());
        LOG.info("{}: {} ({} MB of weights in panels)", model, summary(panels.matMuls(),
                panels.quantizedMatMuls() - panels.eightBitMatMuls(), panels.eightBitMatMuls(), panels.attentions()),
                panels.panelBytes() >> 20);
    }

    private static OrtEnvironments.ThreadPool threadPool(RuntimeOptions options) {
        return new OrtEnvironments.ThreadPool(options.intraOpThreads(), options.spinning());
    }

    /** Whether a session of these options runs on the environment's global pool. */
    private static boolean sharesGlobalPool(RuntimeOptions options) {
        return threadPool(options).equals(OrtEnvironments.globalPool());
    }

    /** Whether this model's session runs on the process's global intra-op pool. */
    boolean sharesThreadPool() {
        return sharedThreadPool;
    }

    /** The shape of this model's KV. */
    KvLayout kvLayout() {
        return KvLayout.of(signature.layers(), signature.kvHeads(), signature.headDim(), signature.kvType());
    }

    /**
     * How sequences share a store of this graph: packed when it takes an attention bias,
     * else padded.
     */
    KvStore.Layout storeLayout() {
        return signature.hasAttentionMask() ? KvStore.Layout.PADDED : KvStore.Layout.PACKED;
    }

    /**
     * A new, empty sequence in a KV store of its own, compacted by
     * {@link KvStore.Compaction#SEQUENCE}.
     */
    @Override
    public KvSequence newCache() {
        return newCache(sequenceCompaction());
    }

    @Override
    public KvSequence newCache(int maxTokens) {
        if (maxTokens < 1) {
            throw new IllegalArgumentException("maxTokens must be >= 1 but was " + maxTokens);
        }
        return newCache(sequenceCompaction(), maxTokens);
    }

    /**
     * A sequence alone: compacted by {@link KvStore.Compaction#SEQUENCE} when holes are
     * exact.
     */
    private KvStore.Compaction sequenceCompaction() {
        return holesExact ? KvStore.Compaction.SEQUENCE : NO_HOLES;
    }

    /**
     * A new, empty sequence in a KV store of its own, compacted as {@code compaction}
     * says, with room for the model's context and the holes it may leave.
     */
    KvSequence newCache(KvStore.Compaction compaction) {
        return newCache(compaction,
                (int) Math.min(Integer.MAX_VALUE, (long) config.contextLength() + KvStore.HEADROOM_SLOTS));
    }

    private KvSequence newCache(KvStore.Compaction compaction, int roomSlots) {
        return KvStore.single(environment, kvLayout(), storeLayout(), compaction, kvInPlace, roomSlots);
    }

    /** A KV store for batched steps, compacted by {@link KvStore.Compaction#BATCH}. */
    @Override
    public KvStore newStore() {
        return newStore(holesExact ? KvStore.Compaction.BATCH : NO_HOLES);
    }

    /** A KV store for batched steps, compacted as {@code compaction} says. */
    KvStore newStore(KvStore.Compaction compaction) {
        return KvStore.batch(environment, kvLayout(), storeLayout(), compaction, kvInPlace);
    }

    /**
     * Appends each input's tokens to its sequence and returns the requested logits rows,
     * in input order. Inputs of one store go through ONE ONNX Runtime call
     * ({@link BatchStep}); a sequence alone in a one-row store takes the single-sequence
     * path (pinned direct input buffers). On failure no sequence has advanced past the
     * failing group of inputs: earlier ones have, which the caller undoes by rolling
     * back.
     */
    @Override
    public List<StepOutput> forward(List<StepInput> batch) throws OrtException {
        if (batch.size() == 1) {
            return List.of(forward(batch.get(0)));
        }
        KvStore first = sequence(batch.get(0)).store();
        if (batch.stream().allMatch((input) -> sequence(input).store() == first)) {
            return new BatchStep(this, first, batch).run();
        }
        StepOutput[] results = new StepOutput[batch.size()];
        Map<KvStore, List<Integer>> byStore = new java.util.LinkedHashMap<>();
        for (int i = 0; i < batch.size(); i++) {
            byStore.computeIfAbsent(sequence(batch.get(i)).store(), (store) -> new ArrayList<>()).add(i);
        }
        for (Map.Entry<KvStore, List<Integer>> group : byStore.entrySet()) {
            List<StepInput> inputs = group.getValue().stream().map(batch::get).toList();
            List<StepOutput> outputs = inputs.size() == 1 ? List.of(forward(inputs.get(0)))
                    : new BatchStep(this, group.getKey(), inputs).run();
            for (int j = 0; j < outputs.size(); j++) {
                results[group.getValue().get(j)] = outputs.get(j);
            }
        }
        return List.of(results);
    }

    private static KvSequence sequence(StepInput input) {
        if (input.cache() instanceof KvSequence sequence) {
            return sequence;
        }
        throw new IllegalArgumentException("A step input's cache must come from Decoder.newCache() or a KvStore, not "
                + input.cache().getClass().getName());
    }

    /**
     * One sequence's step: input_ids [1, s], attention_mask [1, past + s], position_ids
     * [1, s], past → logits. A sequence that shares its store with others goes through
     * {@link BatchStep}.
     *
     * <p>
     * A long input is fed in several ONNX Runtime calls, each one's present KV being the
     * next one's past: its tokens before the last call ({@link #lastCallTokens}) go
     * {@code prefillChunkTokens} at a time without logits, and only the last call returns
     * logits, of the rows asked for: with {@code logits_to_keep} = rows when the graph
     * takes it, else because the last call feeds no more tokens than the rows it returns.
     * A failing call rolls the sequence back to where the step began.
     */
    public StepOutput forward(StepInput input) throws OrtException {
        KvSequence cache = sequence(input);
        checkTree(input);
        checkFeatures(input);
        KvStore store = cache.store();
        if (store.rows() != 1 || store.memberCount() != 1) {
            return new BatchStep(this, store, List.of(input)).run().get(0);
        }
        int[] tokens = input.tokens();
        int rows = input.logitsRows();
        int prefix = tokens.length - lastCallTokens(tokens.length, rows);
        int start = cache.logicalLength();
        HiddenRows hidden = HiddenRows.of(input, signature);
        long nanos = 0;
        try {
            // written in place: room for the whole input before its first call
            store.reserve(tokens.length);
            for (int from = 0; from < prefix;) {
                int to = chunkEnd(from, prefix, prefillChunkTokens);
                nanos += step(cache, input, from, to, 0, hidden).runNanos();
                from = to;
            }
            StepOutput last = step(cache, input, prefix, tokens.length, rows, hidden);
            return prefix == 0 ? last : last.plusNanos(nanos);
        }
        catch (OrtException | RuntimeException ex) {
            rollBack(cache, start, ex);
            throw ex;
        }
    }

    /**
     * Refuses a step whose features do not fit the graph, before any call.
     * @throws IllegalArgumentException naming the model and what is missing
     */
    void checkFeatures(StepInput input) {
        if (signature.takesFeatures() != (input.features() != null)) {
            throw new IllegalArgumentException("Model " + name
                    + (signature.takesFeatures()
                            ? " is a feature head: each step needs hidden_states (StepInput.features)"
                            : " takes no hidden_states, but the step carries features"));
        }
        if (input.hiddenRows() > 0 && !signature.hasHiddenState()) {
            throw new IllegalArgumentException("Model " + name + " has no " + signature.hiddenOutput()
                    + " output, and the step asks for hidden states: export it with --with-hidden");
        }
        if (input.features() != null && signature.hiddenSize() > 0
                && input.features().length != input.tokens().length * signature.hiddenSize()) {
            throw new IllegalArgumentException("Model " + name + " takes hidden_states rows of "
                    + signature.hiddenSize() + " values, but the step carries " + input.features().length
                    + " values for " + input.tokens().length + " tokens");
        }
    }

    @Override
    public CallTokens callTokens() {
        return callTokens;
    }

    @Override
    public boolean takesFeatures() {
        return signature.takesFeatures();
    }

    @Override
    public int hiddenSize() {
        return signature.hasHiddenState() ? signature.hiddenSize() : -1;
    }

    /**
     * A graph with an attention bias and exact holes: see
     * {@link Decoder#supportsTrees()}.
     */
    @Override
    public boolean supportsTrees() {
        return !signature.hasAttentionMask() && holesExact;
    }

    /**
     * Refuses a tree this model cannot express, before any call.
     * @throws IllegalArgumentException naming the graph's attention input
     */
    void checkTree(StepInput input) {
        if (input.tree() != null && !supportsTrees()) {
            throw new IllegalArgumentException("Model " + name + " cannot verify a draft tree: "
                    + (signature.hasAttentionMask()
                            ? "its graph takes an attention_mask, which cannot say that "
                                    + "a node sees only its ancestors; export it with --packed (model_packed.onnx)"
                            : "rolled-back slots change its results (holes are not exact)"));
        }
    }

    private static CallTokens readCallTokens(ModelFiles files, OrtSession session) throws OrtException {
        Map<String, String> metadata = session.getMetadata().getCustomMetadata();
        int min = readCallTokensEntry(files, metadata, MIN_CALL_TOKENS_METADATA, 16);
        int multiple = readCallTokensEntry(files, metadata, CALL_TOKENS_MULTIPLE_METADATA, 2);
        return new CallTokens(min, multiple);
    }

    /** A metadata entry from 1 to {@code most}; 1 when absent. */
    private static int readCallTokensEntry(ModelFiles files, Map<String, String> metadata, String key, int most) {
        String value = metadata.get(key);
        if (value == null) {
            return 1;
        }
        try {
            int tokens = Integer.parseInt(value.trim());
            if (tokens >= 1 && tokens <= most) {
                return tokens;
            }
        }
        catch (NumberFormatException ex) {
            // reported below
        }
        throw new ModelLoadException(files.model(), "The graph's metadata " + key + " must be an integer from 1 to "
                + most + " but is '" + value + "': re-quantize it with python -m specula_tools quantize");
    }

    /**
     * Where a chunk of a long input that starts at {@code from} ends, before {@code end}:
     * {@code chunk} tokens on, cut to a size {@link #callTokens()} allows, and never
     * leaving fewer than it allows for the next call (that chunk is then shortened, or
     * takes the rest).
     */
    int chunkEnd(int from, int end, int chunk) {
        int take = chunkTake(end - from, chunk);
        return take == 0 ? end : from + take;
    }

    /**
     * Of {@code rest} tokens of a sequence still to feed before its last call, how many a
     * chunk with {@code room} left takes: a size {@link #callTokens()} allows (0: it
     * waits for the next chunk), never leaving fewer behind than the smallest it allows.
     */
    int chunkTake(int rest, int room) {
        int smallest = callTokens.smallest();
        int take = Math.min(rest, room);
        if (take < rest) {
            take = callTokens.roundDown(take);
            if (rest - take < smallest) {
                take = rest - smallest;
            }
        }
        return take < Math.min(smallest, rest) ? 0 : take;
    }

    /**
     * How many of a step's {@code tokens} its last ONNX Runtime call feeds, for
     * {@code rows} rows of logits. With {@code logits_to_keep}: up to a chunk (the graph
     * computes only the rows kept). Without: the whole input when it has at most
     * max(rows, 2) tokens (a verification, a draft catching up on 2 tokens), else only
     * {@code rows} tokens, the earlier ones going in chunks without logits; so the logits
     * a call computes are at most max(rows, 2) rows per sequence, whatever the prompt.
     * Rounded up to a size {@link #callTokens()} allows (the caller's {@code tokens}
     * being one, the earlier chunks are too).
     */
    int lastCallTokens(int tokens, int rows) {
        int last;
        if (signature.hasLogitsToKeep()) {
            last = Math.min(tokens, Math.max(rows, prefillChunkTokens));
        }
        else {
            last = tokens <= Math.max(rows, 2) ? tokens : rows;
        }
        last = Math.min(tokens, callTokens.atLeast(last));
        // nor do the earlier calls carry fewer than the smallest call
        return tokens - last > 0 && tokens - last < callTokens.smallest() ? tokens : last;
    }

    /** Undoes a failed step's earlier calls: the sequence is as before the step. */
    static void rollBack(KvSequence cache, int length, Exception failure) {
        if (cache.logicalLength() > length) {
            try {
                cache.rollbackTo(length);
            }
            catch (RuntimeException ex) {
                failure.addSuppressed(ex);
            }
        }
    }

    /**
     * One ONNX Runtime call that appends {@code tokens[from, to)} to a sequence alone in
     * its store and returns the last {@code rows} rows of logits ({@code rows} = 0: none,
     * a chunk of a prefill).
     */
    private StepOutput step(KvSequence cache, StepInput input, int from, int to, int rows, HiddenRows hidden)
            throws OrtException {
        int[] tokens = input.tokens();
        TreeAttention tree = input.tree();
        OrtSession.RunOptions runOptions = input.runOptions();
        // the input's last hidden rows that this call computes
        boolean withHidden = hidden.overlaps(from, to);
        KvStore store = cache.store();
        int newTokens = to - from;
        // an input of a size the graph's rule allows is never cut into calls it does not
        // (tests run with assertions on)
        assert !callTokens.allows(tokens.length) || callTokens.allows(newTokens)
                : "a call of " + newTokens + " tokens of an input of " + tokens.length + " breaks " + callTokens;
        Scratch buffers = scratch.get();
        Map<String, OnnxTensorLike> feeds = new HashMap<>(feedsCapacity);
        List<OnnxTensor> created = new ArrayList<>(5);
        try {
            LongBuffer ids = buffers.ids(newTokens);
            LongBuffer positions = buffers.positions(newTokens);
            for (int i = 0; i < newTokens; i++) {
                ids.put(i, tokens[from + i]);
                int logical = cache.logicalLength() + i;
                positions.put(i, tree == null ? logical : tree.position(logical));
            }
            long[] shape = { 1, newTokens };
            created.add(put(feeds, GraphSignature.INPUT_IDS, OnnxTensor.createTensor(environment, ids, shape)));
            if (signature.hasUseCacheBranch()) {
                // a merged decoder: its with-past branch also serves an empty past
                feeds.put(GraphSignature.USE_CACHE_BRANCH, constants.useCacheBranch());
            }
            if (signature.hasPositionIds()) {
                created.add(put(feeds, GraphSignature.POSITION_IDS,
                        OnnxTensor.createTensor(environment, positions, shape)));
            }
            if (input.features() != null) {
                // hidden_states [1, s, hidden]: the rows of tokens [from, to)
                int width = input.features().length / tokens.length;
                created.add(put(feeds, GraphSignature.FEATURES,
                        OnnxTensor.createTensor(environment,
                                FloatBuffer.wrap(input.features(), from * width, (to - from) * width).slice(),
                                new long[] { 1, to - from, width })));
            }
            if (signature.hasAttentionMask()) {
                int maskLength = Math.addExact(store.physicalLength(), newTokens);
                LongBuffer mask = buffers.mask(maskLength);
                store.writeAttentionMask(mask, cache, newTokens);
                created.add(put(feeds, GraphSignature.ATTENTION_MASK,
                        OnnxTensor.createTensor(environment, mask, new long[] { 1, maskLength })));
            }
            else {
                created.add(put(feeds, GraphSignature.ATTENTION_BIAS, attentionBias(buffers, cache, newTokens, tree)));
            }
            // the graph computes logits for outputRows positions: the rows kept, or every
            // new token
            int outputRows = signature.hasLogitsToKeep() ? Math.max(rows, 1) : newTokens;
            if (signature.hasLogitsToKeep()) {
                feeds.put(GraphSignature.LOGITS_TO_KEEP, constants.logitsToKeep(outputRows, created));
            }
            Map<String, OnnxTensor> pinned = new HashMap<>(feedsCapacity);
            // past (and, written in place, present) KV: the store's tensors
            store.bind(newTokens, feeds, pinned, pastKeys, pastValues, presentKeys, presentValues, emptyPast);
            boolean logitsAllocated = rows > 0 && !pinLogits;
            if (rows > 0 && pinLogits) {
                // logits of a known width are written by ONNX Runtime straight into this
                // thread's buffer, which holds only the rows of this call
                OnnxTensor logitsTensor = buffers.pinLogits(environment, signature.logitsType(), 1, outputRows,
                        signature.logitsWidth());
                created.add(logitsTensor);
                pinned.put(GraphSignature.LOGITS, logitsTensor);
            }
            Set<String> requested = requested(logitsAllocated, withHidden, store.writesInPlace());
            long start = System.nanoTime();
            OrtSession.Result result = runOptions == null ? session.run(feeds, requested, pinned)
                    : session.run(feeds, requested, pinned, runOptions);
            long nanos = System.nanoTime() - start;
            try {
                float[] logits = new float[0];
                int width = logitsWidth();
                if (rows > 0) {
                    OnnxTensor logitsTensor = logitsAllocated
                            ? (OnnxTensor) result.get(GraphSignature.LOGITS).orElseThrow()
                            : pinned.get(GraphSignature.LOGITS);
                    width = (int) logitsTensor.getInfo().getShape()[2];
                    logits = rows(logitsTensor, logitsAllocated ? null : buffers.pinnedLogits(), 0, outputRows,
                            outputRows, rows, width, input.logitsInto());
                }
                if (withHidden) {
                    // [1, newTokens, hidden]: every new token's row
                    hidden.collect((OnnxTensor) result.get(signature.hiddenOutput()).orElseThrow(), from, to);
                }
                store.advance(result, cache, newTokens, presentKeys, presentValues);
                return new StepOutput(logits, rows, width, rows > 0 ? hidden.rows() : null,
                        rows > 0 ? hidden.count() : 0, nanos);
            }
            catch (RuntimeException ex) {
                result.close();
                throw ex;
            }
        }
        finally {
            created.forEach(OnnxTensor::close);
        }
    }

    /**
     * The outputs ONNX Runtime allocates for a call: the logits when asked for and not
     * pinned, the hidden state when asked for, and the presents unless the KV store binds
     * its own buffers to them ({@link KvStore#writesInPlace()}).
     */
    Set<String> requested(boolean logits, boolean hidden, boolean presentsBound) {
        return requestedOutputs.get((logits ? 4 : 0) + (hidden ? 2 : 0) + (presentsBound ? 1 : 0));
    }

    /**
     * Direct buffers reused by one thread's calls for the inputs (ids, positions, mask or
     * bias, single or batched) and the pinned logits: a tensor over a direct buffer is
     * neither copied nor allocated by ONNX Runtime's Java binding (about 20–40 µs a call
     * otherwise, measured on a 0.3 ms draft step). The logits buffer holds one call's
     * returned rows only: at most max(γ + 1, 2) rows per sequence.
     */
    static final class Scratch {

        private LongBuffer ids = longs(64);

        private LongBuffer positions = longs(64);

        private LongBuffer mask = longs(1024);

        private @Nullable FloatBuffer bias;

        /**
         * The attention bias's rows while it is written: a sequence's past, a query's.
         */
        private float[] pastRow = new float[0];

        private float[] queryRow = new float[0];

        private @Nullable ByteBuffer logits;

        /**
         * The view of {@link #logits} the latest {@link #pinLogits} tensor lies over: a
         * FloatBuffer, or a ShortBuffer of float16 values.
         */
        private @Nullable Buffer pinnedLogits;

        LongBuffer ids(int length) {
            ids = ids.capacity() >= length ? ids : longs(grown(length));
            return ids.clear().limit(length);
        }

        LongBuffer positions(int length) {
            positions = positions.capacity() >= length ? positions : longs(grown(length));
            return positions.clear().limit(length);
        }

        LongBuffer mask(int length) {
            mask = mask.capacity() >= length ? mask : longs(grown(length));
            return mask.clear().limit(length);
        }

        /**
         * A packed batch's attention_bias; grown to exactly its size when too small (it
         * is S × (P + S): megabytes for a large batch).
         */
        FloatBuffer bias(int length) {
            if (bias == null || bias.capacity() < length) {
                bias = null;
                bias = ByteBuffer.allocateDirect(Math.multiplyExact(length, Float.BYTES))
                    .order(ByteOrder.nativeOrder())
                    .asFloatBuffer();
            }
            return bias.clear().limit(length);
        }

        /** A row of at least {@code length} floats for an attention bias's past part. */
        float[] pastRow(int length) {
            pastRow = atLeast(pastRow, length);
            return pastRow;
        }

        /** A row of at least {@code length} floats for one query's attention bias. */
        float[] queryRow(int length) {
            queryRow = atLeast(queryRow, length);
            return queryRow;
        }

        /** {@code row}, or a new one of twice {@code length} when it is shorter. */
        private static float[] atLeast(float[] row, int length) {
            return row.length >= length ? row : new float[(int) Math.min(2L * length, Integer.MAX_VALUE - 8)];
        }

        /**
         * A tensor [batch, rows, width] of float32 or float16 over this thread's logits
         * buffer, grown to exactly its size when too small.
         */
        OnnxTensor pinLogits(OrtEnvironment environment, OnnxJavaType type, int batch, int rows, int width)
                throws OrtException {
            int bytesPerElement = type == OnnxJavaType.FLOAT16 ? 2 : Float.BYTES;
            int elements = Sizes.elements("Logits", batch, rows, width, bytesPerElement);
            int bytes = elements * bytesPerElement;
            if (logits == null || logits.capacity() < bytes) {
                logits = null;
                logits = ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
            }
            ByteBuffer view = logits.clear().limit(bytes);
            long[] shape = { batch, rows, width };
            if (type == OnnxJavaType.FLOAT16) {
                ShortBuffer halves = view.asShortBuffer();
                pinnedLogits = halves;
                return OnnxTensor.createTensor(environment, halves, shape, OnnxJavaType.FLOAT16);
            }
            FloatBuffer floats = view.asFloatBuffer();
            pinnedLogits = floats;
            return OnnxTensor.createTensor(environment, floats, shape);
        }

        /**
         * The buffer the latest {@link #pinLogits} tensor lies over, which ONNX Runtime's
         * call wrote.
         */
        Buffer pinnedLogits() {
            if (pinnedLogits == null) {
                throw new IllegalStateException("No logits were pinned on this thread");
            }
            return pinnedLogits;
        }

        long logitsBytes() {
            return logits == null ? 0 : logits.capacity();
        }

        /** Twice {@code length}, at most what one long buffer holds. */
        private static int grown(int length) {
            return (int) Math.min(2L * length, Integer.MAX_VALUE / Long.BYTES);
        }

        private static LongBuffer longs(int length) {
            return ByteBuffer.allocateDirect(Math.multiplyExact(length, Long.BYTES))
                .order(ByteOrder.nativeOrder())
                .asLongBuffer();
        }

    }

    /** Bytes of the calling thread's pinned logits buffer (for tests). */
    long pinnedLogitsBytes() {
        return scratch.get().logitsBytes();
    }

    /**
     * attention_bias [1, 1, s, physical + s] for a model exported --packed, one sequence
     * alone: a chain sees its live past and its earlier new tokens; a tree node, only the
     * tokens before the tree and its ancestors. Written into this thread's direct buffer,
     * which ONNX Runtime reads in place (a heap array would be copied into new direct
     * memory every call).
     */
    private OnnxTensor attentionBias(Scratch buffers, KvSequence cache, int newTokens, @Nullable TreeAttention tree)
            throws OrtException {
        KvStore store = cache.store();
        int physical = store.physicalLength();
        int columns = physical + newTokens;
        FloatBuffer bias = buffers.bias(Sizes.elements("Attention bias", 1, newTokens, columns, Float.BYTES));
        float[] pastRow = buffers.pastRow(physical);
        for (int slot = 0; slot < physical; slot++) {
            pastRow[slot] = store.owns(cache, 0, slot) ? 0f : Float.NEGATIVE_INFINITY;
        }
        float[] queryRow = buffers.queryRow(columns);
        for (int row = 0; row < newTokens; row++) {
            System.arraycopy(pastRow, 0, queryRow, 0, physical);
            for (int j = 0; j < newTokens; j++) {
                queryRow[physical + j] = j <= row ? 0f : Float.NEGATIVE_INFINITY;
            }
            if (tree != null) {
                TreeBias.restrict(queryRow, 0, cache, physical, cache.logicalLength(), cache.logicalLength() + row,
                        tree);
            }
            bias.put(row * columns, queryRow, 0, columns);
        }
        return OnnxTensor.createTensor(environment, bias, new long[] { 1, 1, newTokens, columns });
    }

    /**
     * Positions {@code end − rows .. end − 1} of batch row {@code batchRow} of a [b,
     * positions, width] float32 or float16 tensor, as float32: into the first rows ×
     * width floats of {@code into} when it holds them, else a new array of exactly those.
     * Reads only those rows from a tensor over a buffer of ours ({@code own}: pinned
     * logits, read straight from that buffer); ONNX Runtime's own output tensors are
     * copied whole by its Java binding, so they should hold only the rows needed.
     */
    static float[] rows(OnnxTensor tensor, @Nullable Buffer own, int batchRow, int positions, int end, int rows,
            int width, float @Nullable [] into) {
        int length = Sizes.elements("Logits rows", 1, rows, width, Float.BYTES);
        float[] out = into != null && into.length >= length ? into : new float[length];
        long first = ((long) batchRow * positions + end - rows) * width;
        if (tensor.getInfo().type == OnnxJavaType.FLOAT16) {
            ShortBuffer halves = own instanceof ShortBuffer ours ? ours : tensor.getShortBuffer();
            for (int i = 0; i < length; i++) {
                out[i] = Fp16Conversions.fp16ToFloat(halves.get(Math.toIntExact(first + i)));
            }
        }
        else {
            FloatBuffer floats = own instanceof FloatBuffer ours ? ours : tensor.getFloatBuffer();
            floats.get(Math.toIntExact(first), out, 0, length);
        }
        return out;
    }

    private static OnnxTensor put(Map<String, OnnxTensorLike> feeds, String name, OnnxTensor tensor) {
        feeds.put(name, tensor);
        return tensor;
    }

    /**
     * Stops ONNX Runtime's profiler (on with {@link RuntimeOptions#withProfiling}) and
     * returns the trace it wrote: Chrome trace events, one {@code model_run} per call and
     * one {@code *_kernel_time} per node run.
     * @throws IllegalStateException when the model was loaded without profiling
     */
    public Path endProfiling() throws OrtException {
        if (!profiled) {
            throw new IllegalStateException(
                    "Model " + name() + " was loaded without profiling (RuntimeOptions.withProfiling)");
        }
        return Path.of(session.endProfiling());
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public ModelFiles files() {
        return files;
    }

    @Override
    public String kvIdentity() {
        return kvIdentity;
    }

    /** What config.json and generation_config.json say. */
    @Override
    public boolean holesAreExact() {
        return holesExact;
    }

    public ModelConfig config() {
        return config;
    }

    /** The graph's inputs and outputs. */
    public GraphSignature signature() {
        return signature;
    }

    @Override
    public TextTokenizer tokenizer() {
        return tokenizer;
    }

    /** The model's chat template, empty when it has none. */
    public Optional<ChatTemplate> chatTemplate() {
        return chatTemplate;
    }

    /**
     * Columns of the logits: from the graph when fixed, else config.json's vocab_size.
     */
    @Override
    public int logitsWidth() {
        return signature.logitsWidth() > 0 ? signature.logitsWidth() : config.vocabSize();
    }

    /** Longest sequence (prompt + generated tokens) the model accepts. */
    @Override
    public int contextLength() {
        return config.contextLength();
    }

    @Override
    public void close() {
        closeQuietly(emptyPast);
        closeQuietly(constants);
        closeQuietly(session);
        tokenizer.close();
    }

    private static void closeQuietly(AutoCloseable closeable) {
        try {
            closeable.close();
        }
        catch (Exception ignored) {
            // releasing native memory; nothing to recover
        }
    }

    @Override
    public String toString() {
        return "DecoderModel[" + files.directory() + ", " + signature.layers() + " layers, vocab " + logitsWidth()
                + "]";
    }

}
