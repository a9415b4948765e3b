package dev.specula.model;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.platform.Fp16Conversions;
import dev.specula.kv.KvCache;
import dev.specula.kv.KvPool;
import dev.specula.kv.PooledSequence;
import dev.specula.tokenizer.ChatTemplate;
import dev.specula.tokenizer.TextTokenizer;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * One exported decoder: its ONNX Runtime session (created from the file path, so external weights and
 * models over 2 GB work), the signature read from the graph, its config, tokenizer and chat template.
 *
 * <p>{@link #forward(List)} is batch-first: it takes every active sequence's new tokens. This
 * implementation runs one ONNX Runtime call per sequence; the batching scheduler replaces it with one
 * call for all of them without changing the decode loop.
 */
public final class DecoderModel implements Decoder {

    private final String name;
    private final ModelFiles files;
    private final String kvIdentity;
    private final ModelConfig config;
    final GraphSignature signature;
    private final TextTokenizer tokenizer;
    private final Optional<ChatTemplate> chatTemplate;
    final OrtEnvironment environment;
    final OrtSession session;
    /** [1, kvHeads, 0, headDim]: the past of an empty cache, shared by every layer and sequence. */
    final OnnxTensor emptyPast;
    final String[] pastKeys;
    final String[] pastValues;
    final String[] presentKeys;
    final String[] presentValues;
    final Set<String> outputs;
    final Set<String> outputsWithHidden;
    final Set<String> presents;
    final Set<String> presentsWithHidden;
    /** Whether logits are float32 of a fixed width, so they can be written into a direct buffer of ours. */
    final boolean pinLogits;
    final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

    private DecoderModel(ModelFiles files, ModelConfig config, GraphSignature signature, TextTokenizer tokenizer,
            Optional<ChatTemplate> chatTemplate, OrtEnvironment environment, OrtSession session) throws OrtException {
        this.name = files.directory().getFileName().toString();
        this.files = files;
        this.kvIdentity = Decoder.kvIdentity(files);
        this.config = config;
        this.signature = signature;
        this.tokenizer = tokenizer;
        this.chatTemplate = chatTemplate;
        this.environment = environment;
        this.session = session;
        int layers = signature.layers();
        this.pastKeys = new String[layers];
        this.pastValues = new String[layers];
        this.presentKeys = new String[layers];
        this.presentValues = new String[layers];
        Set<String> names = new LinkedHashSet<>();
        names.add(GraphSignature.LOGITS);
        for (int layer = 0; layer < layers; layer++) {
            pastKeys[layer] = GraphSignature.pastKey(layer);
            pastValues[layer] = GraphSignature.pastValue(layer);
            presentKeys[layer] = GraphSignature.presentKey(layer);
            presentValues[layer] = GraphSignature.presentValue(layer);
            names.add(presentKeys[layer]);
            names.add(presentValues[layer]);
        }
        this.outputs = Set.copyOf(names);
        names.remove(GraphSignature.LOGITS);
        this.presents = Set.copyOf(names);
        if (signature.hasHiddenState()) {
            names.add(GraphSignature.HIDDEN_STATE);
        }
        this.presentsWithHidden = Set.copyOf(names);
        names.add(GraphSignature.LOGITS);
        this.outputsWithHidden = Set.copyOf(names);
        this.pinLogits = signature.logitsType() == OnnxJavaType.FLOAT && signature.logitsWidth() > 0;
        long[] emptyShape = {1, signature.kvHeads(), 0, signature.headDim()};
        this.emptyPast = signature.kvType() == OnnxJavaType.FLOAT16
                ? OnnxTensor.createTensor(environment, ShortBuffer.allocate(0), emptyShape, OnnxJavaType.FLOAT16)
                : OnnxTensor.createTensor(environment, FloatBuffer.allocate(0), emptyShape);
    }

    /**
     * Loads a model directory (or a {@code model.onnx} path).
     *
     * @throws ModelLoadException naming the path when a file is missing, corrupt or not in the expected layout
     * @throws ExecutionProviderUnavailableException when CUDA is asked for but the ONNX Runtime on the
     *         classpath does not have it
     */
    public static DecoderModel load(Path location, RuntimeOptions options) {
        ModelFiles files = ModelFiles.resolve(location);
        ModelConfig config = ModelConfig.read(files);
        Optional<ChatTemplate> template = ChatTemplate.load(files);
        OrtEnvironment environment = OrtEnvironments.get();
        OrtSession session = createSession(environment, files.model(), options);
        TextTokenizer tokenizer = null;
        try {
            GraphSignature signature = GraphSignature.introspect(files.model(), session.getInputInfo(), session.getOutputInfo());
            tokenizer = TextTokenizer.load(files.tokenizer());
            return new DecoderModel(files, config, signature, tokenizer, template, environment, session);
        }
        catch (OrtException | RuntimeException ex) {
            if (tokenizer != null) {
                tokenizer.close();
            }
            closeQuietly(session);
            if (ex instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw new ModelLoadException(files.model(), "Cannot read the graph of " + files.model() + ": " + ex.getMessage(), ex);
        }
    }

    private static OrtSession createSession(OrtEnvironment environment, Path model, RuntimeOptions options) {
        try (OrtSession.SessionOptions sessionOptions = new OrtSession.SessionOptions()) {
            sessionOptions.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            sessionOptions.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
            sessionOptions.setIntraOpNumThreads(options.intraOpThreads());
            sessionOptions.setInterOpNumThreads(1);
            sessionOptions.addConfigEntry("session.intra_op.allow_spinning", options.spinning() ? "1" : "0");
            if (options.provider() == ExecutionProvider.CUDA) {
                try {
                    sessionOptions.addCUDA(options.deviceId());
                }
                catch (OrtException | RuntimeException | UnsatisfiedLinkError ex) {
                    throw new ExecutionProviderUnavailableException(ExecutionProvider.CUDA,
                            "The CUDA execution provider is not available (" + ex.getMessage() + "). Replace the dependency "
                                    + "com.microsoft.onnxruntime:onnxruntime with "
                                    + ExecutionProviderUnavailableException.CUDA_ARTIFACT
                                    + " (same version) and install CUDA and cuDNN, or run on the CPU provider.", ex);
                }
            }
            try {
                return environment.createSession(model.toString(), sessionOptions);
            }
            catch (OrtException ex) {
                throw new ModelLoadException(model, "Cannot load ONNX model " + model + " (corrupt or not an ONNX file?): "
                        + ex.getMessage() + ". Re-export it with `python -m specula_tools export`.", ex);
            }
        }
        catch (OrtException ex) {
            throw new ModelLoadException(model, "Cannot configure an ONNX Runtime session for " + model + ": " + ex.getMessage(), ex);
        }
    }

    /** A new, empty KV cache for one sequence in this model. */
    @Override
    public KvCache newCache() {
        return new KvCache(environment, signature.layers(), signature.kvHeads(), signature.headDim(), signature.kvType());
    }

    /**
     * Appends each input's tokens to its sequence and returns the requested logits rows, in input order.
     * One ONNX Runtime call per sequence (see the class comment). On failure no cache has advanced past
     * the failing input: earlier inputs have, which the caller undoes by rolling back.
     */
    @Override
    public KvPool newPool() {
        return new KvPool(environment, signature.layers(), signature.kvHeads(), signature.headDim(), signature.kvType(),
                signature.hasAttentionMask() ? KvPool.Layout.PADDED : KvPool.Layout.PACKED);
    }

    /**
     * Steps every input. Inputs whose caches share a {@link KvPool} go through ONE ONNX Runtime call
     * ({@link BatchStep}); inputs with their own {@link KvCache} one call each.
     */
    @Override
    public List<StepOutput> forward(List<StepInput> batch) throws OrtException {
        if (!batch.isEmpty() && batch.get(0).cache() instanceof PooledSequence first) {
            return new BatchStep(this, first.pool(), batch).run();
        }
        List<StepOutput> results = new ArrayList<>(batch.size());
        for (StepInput input : batch) {
            results.add(forward(input));
        }
        return results;
    }

    /** One sequence's step: input_ids [1, s], attention_mask [1, past + s], position_ids [1, s], past → logits. */
    public StepOutput forward(StepInput input) throws OrtException {
        if (!(input.cache() instanceof KvCache cache)) {
            throw new IllegalArgumentException("A pooled sequence steps through forward(List) with the rest of its pool");
        }
        int[] tokens = input.tokens();
        int newTokens = tokens.length;
        Scratch buffers = scratch.get();
        Map<String, OnnxTensorLike> feeds = new HashMap<>();
        List<OnnxTensor> created = new ArrayList<>(4);
        try {
            LongBuffer ids = buffers.ids(newTokens);
            LongBuffer positions = buffers.positions(newTokens);
            for (int i = 0; i < newTokens; i++) {
                ids.put(i, tokens[i]);
                positions.put(i, cache.logicalLength() + i);
            }
            long[] shape = {1, newTokens};
            created.add(put(feeds, GraphSignature.INPUT_IDS, OnnxTensor.createTensor(environment, ids, shape)));
            if (signature.hasPositionIds()) {
                created.add(put(feeds, GraphSignature.POSITION_IDS, OnnxTensor.createTensor(environment, positions, shape)));
            }
            if (signature.hasAttentionMask()) {
                int maskLength = cache.physicalLength() + newTokens;
                LongBuffer mask = buffers.mask(maskLength);
                cache.writeAttentionMask(mask, newTokens);
                created.add(put(feeds, GraphSignature.ATTENTION_MASK, OnnxTensor.createTensor(environment, mask, new long[] {1, maskLength})));
            }
            else {
                created.add(put(feeds, GraphSignature.ATTENTION_BIAS, attentionBias(cache, newTokens)));
            }
            for (int layer = 0; layer < signature.layers(); layer++) {
                feeds.put(pastKeys[layer], cache.isEmpty() ? emptyPast : cache.key(layer));
                feeds.put(pastValues[layer], cache.isEmpty() ? emptyPast : cache.value(layer));
            }
            boolean withHidden = input.withHiddenState() && signature.hasHiddenState();
            Set<String> requested = withHidden ? outputsWithHidden : outputs;
            // float32 logits of a known width are written by ONNX Runtime straight into this thread's buffer
            Map<String, OnnxTensor> pinned = Map.of();
            FloatBuffer pinnedLogits = null;
            if (pinLogits) {
                pinnedLogits = buffers.logits(newTokens * signature.logitsWidth());
                OnnxTensor logitsTensor = OnnxTensor.createTensor(environment, pinnedLogits,
                        new long[] {1, newTokens, signature.logitsWidth()});
                created.add(logitsTensor);
                pinned = Map.of(GraphSignature.LOGITS, logitsTensor);
                requested = withHidden ? presentsWithHidden : presents;
            }
            long start = System.nanoTime();
            OrtSession.Result result = input.runOptions() == null
                    ? session.run(feeds, requested, pinned)
                    : session.run(feeds, requested, pinned, input.runOptions());
            long nanos = System.nanoTime() - start;
            try {
                int rows = input.logitsRows();
                int width;
                float[] logits;
                if (pinnedLogits != null) {
                    width = signature.logitsWidth();
                    logits = new float[rows * width];
                    pinnedLogits.get((newTokens - rows) * width, logits);
                }
                else {
                    OnnxTensor logitsTensor = (OnnxTensor) result.get(GraphSignature.LOGITS).orElseThrow();
                    width = (int) logitsTensor.getInfo().getShape()[2];
                    logits = lastRows(logitsTensor, newTokens, rows, width);
                }
                float[] hidden = null;
                if (withHidden) {
                    OnnxTensor hiddenTensor = (OnnxTensor) result.get(GraphSignature.HIDDEN_STATE).orElseThrow();
                    hidden = lastRows(hiddenTensor, newTokens, rows, (int) hiddenTensor.getInfo().getShape()[2]);
                }
                cache.advance(result, newTokens, presentKeys, presentValues);
                return new StepOutput(logits, rows, width, hidden, nanos);
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
     * Direct buffers reused by one thread's calls for the small inputs and the pinned logits: a tensor over a
     * direct buffer is neither copied nor allocated by ONNX Runtime's Java binding (about 20–40 µs a call
     * otherwise, measured on a 0.3 ms draft step).
     */
    static final class Scratch {

        private LongBuffer ids = longs(64);
        private LongBuffer positions = longs(64);
        private LongBuffer mask = longs(1024);
        private FloatBuffer logits;

        LongBuffer ids(int length) {
            ids = ids.capacity() >= length ? ids : longs(length * 2);
            return ids.clear().limit(length);
        }

        LongBuffer positions(int length) {
            positions = positions.capacity() >= length ? positions : longs(length * 2);
            return positions.clear().limit(length);
        }

        LongBuffer mask(int length) {
            mask = mask.capacity() >= length ? mask : longs(length * 2);
            return mask.clear().limit(length);
        }

        FloatBuffer logits(int length) {
            if (logits == null || logits.capacity() < length) {
                logits = ByteBuffer.allocateDirect(length * 2 * Float.BYTES).order(ByteOrder.nativeOrder()).asFloatBuffer();
            }
            return logits.clear().limit(length);
        }

        private static LongBuffer longs(int length) {
            return ByteBuffer.allocateDirect(length * Long.BYTES).order(ByteOrder.nativeOrder()).asLongBuffer();
        }
    }

    /** attention_bias [1, 1, s, physical + s] for a model exported --packed, one sequence alone. */
    private OnnxTensor attentionBias(KvCache cache, int newTokens) throws OrtException {
        int physical = cache.physicalLength();
        int columns = physical + newTokens;
        float[] bias = new float[newTokens * columns];
        for (int row = 0; row < newTokens; row++) {
            int base = row * columns;
            for (int slot = 0; slot < physical; slot++) {
                bias[base + slot] = cache.isLive(slot) ? 0f : Float.NEGATIVE_INFINITY;
            }
            for (int j = 0; j < newTokens; j++) {
                bias[base + physical + j] = j <= row ? 0f : Float.NEGATIVE_INFINITY;
            }
        }
        return OnnxTensor.createTensor(environment, FloatBuffer.wrap(bias), new long[] {1, 1, newTokens, columns});
    }

    /** The last {@code rows} rows of a [1, s, width] float32 or float16 tensor, as float32. */
    static float[] lastRows(OnnxTensor tensor, int positions, int rows, int width) {
        float[] out = new float[rows * width];
        int first = (positions - rows) * width;
        if (tensor.getInfo().type == OnnxJavaType.FLOAT16) {
            ShortBuffer halves = tensor.getShortBuffer();
            for (int i = 0; i < out.length; i++) {
                out[i] = Fp16Conversions.fp16ToFloat(halves.get(first + i));
            }
        }
        else {
            FloatBuffer floats = tensor.getFloatBuffer();
            floats.position(first);
            floats.get(out);
        }
        return out;
    }

    private static OnnxTensor put(Map<String, OnnxTensorLike> feeds, String name, OnnxTensor tensor) {
        feeds.put(name, tensor);
        return tensor;
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

    public ModelConfig config() {
        return config;
    }

    public GraphSignature signature() {
        return signature;
    }

    @Override
    public TextTokenizer tokenizer() {
        return tokenizer;
    }

    public Optional<ChatTemplate> chatTemplate() {
        return chatTemplate;
    }

    /** Columns of the logits: from the graph when fixed, else config.json's vocab_size. */
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
        return "DecoderModel[" + files.directory() + ", " + signature.layers() + " layers, vocab " + logitsWidth() + "]";
    }
}
