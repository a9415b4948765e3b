package dev.specula.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.platform.Fp16Conversions;

import dev.specula.model.OnnxWire.Field;

/**
 * A decoder graph with its float32 weight MatMuls as Specula's {@code PanelMatMul}, and
 * its 4- and 8-bit ones computed with int8 activations as {@code PanelMatMulQ4} and
 * {@code PanelMatMulQ8} (native library {@code engine/src/main/native}), rewritten in
 * memory at load: the model file is not changed and nothing is written to disk.
 *
 * <p>
 * A top-level {@code MatMul(A, B)} is rewritten when B is a float32 weight [K, N] with N
 * a multiple of 16: an initializer, or one reached through {@code Cast} to float32 (of a
 * float16-stored weight, widened exactly) and {@code Transpose} [1, 0] (a tied
 * {@code lm_head}). Its weight becomes panels P [N/16, K, 16] (P[j, k, c] = W[k, 16 j +
 * c]) in a direct buffer that ONNX Runtime reads in place
 * ({@code addExternalInitializers}); the graph declares each as an external initializer
 * that the buffer replaces. Cast and Transpose nodes and initializers left without a use
 * are dropped, so the weight is held once.
 *
 * <p>
 * A top-level {@code com.microsoft:MatMulNBits} with {@code bits} 4 or 8 and
 * {@code accuracy_level} 4 (int8 activations: {@code tools quantize}'s {@code -a8}
 * schemes) whose weight, scales and zero points (packed 4-bit or 8-bit, or none: 8 or
 * 128) are initializers, with N a multiple of 16, a block a multiple of 16 up to 4096 at
 * 4 bits and 256 at 8, and no {@code g_idx} or bias, becomes {@code PanelMatMulQ4} or
 * {@code PanelMatMulQ8}: its weights regrouped in panels of 16 columns (the layouts the
 * native file describes). Every other field of the model is copied as it was read.
 */
final class PanelGraph implements AutoCloseable {

    static final String DOMAIN = "dev.specula.kernels";

    static final String OP = "PanelMatMul";

    static final String QUANTIZED_OP = "PanelMatMulQ4";

    static final String QUANTIZED_8_OP = "PanelMatMulQ8";

    /** The 4-bit kernel's largest block (its integer sums stay exact in float32). */
    static final int MAX_BLOCK = 4096;

    /** The 8-bit kernel's largest block. */
    static final int MAX_BLOCK_8 = 256;

    /** Panels hold 16 columns of W. */
    static final int PANEL = 16;

    // ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto field numbers
    // (onnx.proto)
    private static final int MODEL_GRAPH = 7;

    private static final int MODEL_OPSET_IMPORT = 8;

    private static final int GRAPH_NODE = 1;

    private static final int GRAPH_INITIALIZER = 5;

    private static final int GRAPH_INPUT = 11;

    private static final int GRAPH_OUTPUT = 12;

    private static final int GRAPH_VALUE_INFO = 13;

    private static final int NODE_INPUT = 1;

    private static final int NODE_OUTPUT = 2;

    private static final int NODE_NAME = 3;

    private static final int NODE_OP_TYPE = 4;

    private static final int NODE_ATTRIBUTE = 5;

    private static final int NODE_DOMAIN = 7;

    private static final int ATTRIBUTE_NAME = 1;

    private static final int ATTRIBUTE_F = 2;

    private static final int ATTRIBUTE_I = 3;

    private static final int ATTRIBUTE_S = 4;

    private static final int ATTRIBUTE_G = 6;

    private static final int ATTRIBUTE_INTS = 8;

    private static final int ATTRIBUTE_GRAPHS = 11;

    private static final int TENSOR_DIMS = 1;

    private static final int TENSOR_DATA_TYPE = 2;

    private static final int TENSOR_NAME = 8;

    private static final int TENSOR_RAW_DATA = 9;

    private static final int TENSOR_EXTERNAL_DATA = 13;

    private static final int TENSOR_DATA_LOCATION = 14;

    private static final int FLOAT = 1;

    private static final int UINT8 = 2;

    private static final int FLOAT16 = 10;

    private final byte[] model;

    private final Map<String, OnnxTensor> panels;

    private final int matMuls;

    private final int quantizedMatMuls;

    /** Of {@link #quantizedMatMuls}, the 8-bit ones. */
    private final int eightBitMatMuls;

    /** MatMulNBits nodes left to ONNX Runtime, in subgraphs too. */
    private final int quantizedLeft;

    /**
     * Nodes left to ONNX Runtime, in subgraphs too, whose kernels may compute a row
     * differently with other rows in the call (matrix products, softmax, attention,
     * control flow): {@link #ROW_COUPLED}.
     */
    private final int rowCoupled;

    /**
     * Operators whose ONNX Runtime kernels may take other paths for one row than for
     * several.
     */
    static final Set<String> ROW_COUPLED = Set.of("MatMul", "Gemm", "MatMulNBits", "MatMulInteger",
            "DynamicQuantizeMatMul", "FusedMatMul", "QGemm", "Einsum", "Conv", "Softmax", "LogSoftmax", "Attention",
            "MultiHeadAttention", "GroupQueryAttention", "PackedAttention", "SparseAttention", "If", "Loop", "Scan");

    private final int attentions;

    /**
     * The graph's other weights whose data lies in files, mapped from them and supplied
     * as they are: ONNX Runtime resolves no external data path of a graph given as bytes,
     * so a model directory of symbolic links (Hugging Face's cache) loads as its file
     * would.
     */
    private final Map<String, OnnxTensor> mapped;

    /** The panels' direct buffers, freed on {@link #close()}. */
    private final List<ByteBuffer> owners;

    private PanelGraph(byte[] model, Map<String, OnnxTensor> panels, Map<String, OnnxTensor> mapped,
            List<ByteBuffer> owners, int matMuls, int quantizedMatMuls, int eightBitMatMuls, int quantizedLeft,
            int rowCoupled, int attentions) {
        this.model = model;
        this.owners = owners;
        this.panels = panels;
        this.mapped = mapped;
        this.matMuls = matMuls;
        this.quantizedMatMuls = quantizedMatMuls;
        this.eightBitMatMuls = eightBitMatMuls;
        this.quantizedLeft = quantizedLeft;
        this.rowCoupled = rowCoupled;
        this.attentions = attentions;
    }

    /** How many GroupQueryAttention nodes became {@code SpeculaAttention}. */
    int attentions() {
        return attentions;
    }

    /** The rewritten ModelProto. */
    byte[] model() {
        return model;
    }

    /** The panels by initializer name, for {@code addExternalInitializers}. */
    Map<String, OnnxTensorLike> initializers() {
        Map<String, OnnxTensorLike> all = new HashMap<>(mapped);
        all.putAll(panels);
        return all;
    }

    /**
     * How many float32 MatMuls were rewritten into {@code PanelMatMul} (0: the graph has
     * none this kernel takes).
     */
    int matMuls() {
        return matMuls;
    }

    /**
     * How many 4- and 8-bit {@code MatMulNBits} were rewritten into {@code PanelMatMulQ4}
     * and {@code PanelMatMulQ8}.
     */
    int quantizedMatMuls() {
        return quantizedMatMuls;
    }

    /** Of {@link #quantizedMatMuls()}, the 8-bit ones. */
    int eightBitMatMuls() {
        return eightBitMatMuls;
    }

    /**
     * Whether every {@code MatMulNBits} of the graph (one at least) became
     * {@code PanelMatMulQ4} or {@code PanelMatMulQ8}, whose rows never depend on the
     * other rows of a call: the call sizes that ONNX Runtime's int8-activation kernels
     * need ({@link CallTokens}) no longer apply.
     */
    boolean everyQuantizedMatMulRewritten() {
        return quantizedMatMuls > 0 && quantizedLeft == 0;
    }

    /**
     * Whether a call of one token computes its row as any other call does: every
     * {@code MatMulNBits} became {@code PanelMatMulQ4} and nothing of
     * {@link #ROW_COUPLED} is left to ONNX Runtime (its attention is
     * {@code SpeculaAttention}), so the two-token minimum of an int8-activation graph
     * goes too.
     */
    boolean everyRowOnItsOwn() {
        return everyQuantizedMatMulRewritten() && rowCoupled == 0;
    }

    /** How many nodes run on Specula's kernels. */
    int rewritten() {
        return matMuls + quantizedMatMuls + attentions;
    }

    /** Bytes of panel weights held. */
    long panelBytes() {
        return panels.values().stream().mapToLong((tensor) -> {
            java.nio.Buffer buffer = tensor.getBufferRef().orElseThrow();
            return buffer.capacity() * (long) (buffer instanceof FloatBuffer ? 4 : 1);
        }).sum();
    }

    /**
     * Releases the panels (their memory at once, where the JVM allows) and the mapped
     * weights: call it once the session is made, as ONNX Runtime copies what
     * {@code addExternalInitializers} gives it into the session and holds no reference to
     * it afterwards (its C API's documentation says so).
     */
    @Override
    public void close() {
        panels.values().forEach(OnnxTensor::close);
        mapped.values().forEach(OnnxTensor::close);
        owners.forEach(PanelGraph::free);
        owners.clear();
    }

    /** sun.misc.Unsafe#invokeCleaner, where the JVM has it: frees a direct buffer now. */
    private static final java.lang.invoke.MethodHandle FREE = freeHandle();

    private static java.lang.invoke.MethodHandle freeHandle() {
        try {
            Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
            java.lang.reflect.Field field = unsafeClass.getDeclaredField("theUnsafe");
            field.setAccessible(true);
            return java.lang.invoke.MethodHandles.lookup()
                .findVirtual(unsafeClass, "invokeCleaner",
                        java.lang.invoke.MethodType.methodType(void.class, ByteBuffer.class))
                .bindTo(field.get(null));
        }
        catch (ReflectiveOperationException | RuntimeException ex) {
            return null; // freed by the garbage collector instead
        }
    }

    private static void free(ByteBuffer buffer) {
        if (FREE != null) {
            try {
                FREE.invokeExact(buffer);
            }
            catch (Throwable ex) {
                // left to the garbage collector
            }
        }
    }

    /**
     * One node of the top-level graph, its fields kept to write it back unchanged (two
     * nodes never hold equal fields: a graph's output names are unique).
     */
    private record Node(List<Field> fields, List<String> inputs, List<String> outputs, String opType, String domain) {

        static Node of(Field field) {
            List<Field> fields = field.message();
            return new Node(fields, OnnxWire.strings(fields, NODE_INPUT), OnnxWire.strings(fields, NODE_OUTPUT),
                    OnnxWire.string(fields, NODE_OP_TYPE), OnnxWire.string(fields, NODE_DOMAIN));
        }

        boolean standard(String op) {
            return opType.equals(op) && (domain.isEmpty() || domain.equals("ai.onnx"));
        }

        /** An attribute's fields, or null. */
        List<Field> attribute(String name) {
            for (Field field : fields) {
                if (field.number() == NODE_ATTRIBUTE) {
                    List<Field> attribute = field.message();
                    if (OnnxWire.string(attribute, ATTRIBUTE_NAME).equals(name)) {
                        return attribute;
                    }
                }
            }
            return null;
        }

        /** An int attribute, or {@code absent}. */
        long integer(String name, long absent) {
            List<Field> attribute = attribute(name);
            return attribute == null ? absent : OnnxWire.integer(attribute, ATTRIBUTE_I, absent);
        }

        /** A float attribute, 0 when absent. */
        float real(String name) {
            List<Field> attribute = attribute(name);
            if (attribute != null) {
                for (Field field : attribute) {
                    if (field.number() == ATTRIBUTE_F && field.wireType() == OnnxWire.FIXED32) {
                        return Float.intBitsToFloat((int) field.value());
                    }
                }
            }
            return 0;
        }

    }

    /** An initializer: its name, element type, shape and fields. */
    private record Tensor(String name, int dataType, long[] dims, List<Field> fields) {

        static Tensor of(Field field) {
            List<Field> fields = field.message();
            List<Long> dims = OnnxWire.longs(fields, TENSOR_DIMS);
            return new Tensor(OnnxWire.string(fields, TENSOR_NAME), (int) OnnxWire.integer(fields, TENSOR_DATA_TYPE, 0),
                    dims.stream().mapToLong(Long::longValue).toArray(), fields);
        }

    }

    /**
     * A MatMul's weight: the initializer, whether it is read transposed, and the Cast or
     * Transpose nodes on the way.
     */
    private record Source(Tensor tensor, boolean transposed, List<Node> path) {

        long k() {
            return transposed ? tensor.dims()[1] : tensor.dims()[0];
        }

        long n() {
            return transposed ? tensor.dims()[0] : tensor.dims()[1];
        }

        String panelName() {
            return tensor.name() + (transposed ? "::specula_panels_t" : "::specula_panels");
        }

    }

    /**
     * What replaces a node: the kernel's operator, its inputs (the node's, then new
     * initializers: {@code added} or the panels), the Cast or Transpose nodes on the way
     * to the old weight, the initializers it no longer reads, and small initializers
     * written into the graph with it.
     */
    private record Replacement(String op, List<String> inputs, List<Node> path, List<Tensor> consumed,
            List<OnnxWire.Writer> added) {

        Replacement(String op, List<String> inputs, List<Node> path, List<Tensor> consumed) {
            this(op, inputs, path, consumed, List.of());
        }

    }

    /**
     * A {@code com.microsoft:GroupQueryAttention} as the engine's fused graphs write it,
     * which {@code SpeculaAttention} takes: query, key, value, past key and value,
     * seqlens_k, total_sequence_length and an attention_bias, no rotary, cos/sin caches
     * or position_ids, no local window or smooth softmax, three outputs.
     */
    private record Attention(int heads, int kvHeads, float scale, float softcap) {

        static final String OP = "SpeculaAttention";

        static Attention of(Node node) {
            if (!node.opType().equals("GroupQueryAttention") || !node.domain().equals("com.microsoft")) {
                return null;
            }
            List<String> inputs = node.inputs();
            if (inputs.size() != 11 || node.outputs().size() != 3) {
                return null;
            }
            for (int i = 0; i < inputs.size(); i++) {
                boolean wanted = i < 7 || i == 10;
                if (inputs.get(i).isEmpty() == wanted) {
                    return null;
                }
            }
            if (node.outputs().stream().anyMatch(String::isEmpty)) {
                return null;
            }
            long heads = node.integer("num_heads", 0);
            long kvHeads = node.integer("kv_num_heads", 0);
            if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0 || node.integer("local_window_size", -1) != -1
                    || node.integer("do_rotary", 0) != 0 || node.integer("smooth_softmax", 0) != 0
                    || node.integer("qk_output", 0) != 0) {
                return null;
            }
            return new Attention((int) heads, (int) kvHeads, node.real("scale"), node.real("softcap"));
        }

        /**
         * The node's inputs for SpeculaAttention: its own but the empty ones, then the
         * params.
         */
        List<String> inputs(Node node, String params) {
            List<String> inputs = new ArrayList<>(node.inputs().subList(0, 7));
            inputs.add(node.inputs().get(10));
            inputs.add(params);
            return inputs;
        }

        /**
         * params [4] float: heads, kv heads, scale, softcap, as an initializer in the
         * graph.
         */
        OnnxWire.Writer params(String name) {
            ByteBuffer raw = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
            raw.putFloat(heads).putFloat(kvHeads).putFloat(scale).putFloat(softcap);
            return new OnnxWire.Writer().varint(TENSOR_DIMS, 4)
                .varint(TENSOR_DATA_TYPE, FLOAT)
                .string(TENSOR_NAME, name)
                .bytes(TENSOR_RAW_DATA, raw.array());
        }

    }

    /**
     * A 4- or 8-bit {@code MatMulNBits} with int8 activations that {@code PanelMatMulQ4}
     * or {@code PanelMatMulQ8} takes: its weight B [N, blocks, block × bits / 8] (uint8;
     * at 4 bits two values a byte, the lower k in the low nibble), scales [N, blocks]
     * (float32) and zero points (uint8: at 4 bits two a byte, the lower block in the low
     * nibble, at 8 bits one; null: 8 or 128 each).
     */
    private record Quantized(Tensor weight, Tensor scales, Tensor zeros, int bits, int k, int n, int block,
            int blocks) {

        static Quantized of(Node node, Map<String, Tensor> initializers) {
            if (!node.opType().equals("MatMulNBits") || !node.domain().equals("com.microsoft")) {
                return null;
            }
            long bits = node.integer("bits", 4);
            long accuracy = node.integer("accuracy_level", 0);
            long k = node.integer("K", -1);
            long n = node.integer("N", -1);
            long block = node.integer("block_size", -1);
            List<String> inputs = node.inputs();
            if ((bits != 4 && bits != 8) || accuracy != 4 || inputs.size() < 3 || inputs.size() > 6) {
                return null;
            }
            for (int i = 4; i < inputs.size(); i++) {
                if (!inputs.get(i).isEmpty()) {
                    return null; // g_idx or bias: ONNX Runtime's
                }
            }
            if (k <= 0 || n <= 0 || n % PANEL != 0 || block < 16 || block % 16 != 0
                    || block > (bits == 4 ? MAX_BLOCK : MAX_BLOCK_8)) {
                return null;
            }
            long blocks = (k + block - 1) / block;
            Tensor weight = initializers.get(inputs.get(1));
            Tensor scales = initializers.get(inputs.get(2));
            boolean zeroPoints = inputs.size() > 3 && !inputs.get(3).isEmpty();
            Tensor zeros = zeroPoints ? initializers.get(inputs.get(3)) : null;
            if (weight == null || scales == null || (zeroPoints && zeros == null)) {
                return null;
            }
            if (weight.dataType() != UINT8
                    || !java.util.Arrays.equals(weight.dims(), new long[] { n, blocks, block * bits / 8 })
                    || n * blocks * block * bits / 8 > Integer.MAX_VALUE || !readable(weight)) {
                return null;
            }
            if (scales.dataType() != FLOAT || elements(scales) != n * blocks || !readable(scales)) {
                return null;
            }
            long zeroBytes = bits == 4 ? n * ((blocks + 1) / 2) : n * blocks;
            if (zeros != null && (zeros.dataType() != UINT8 || elements(zeros) != zeroBytes || !readable(zeros))) {
                return null;
            }
            return new Quantized(weight, scales, zeros, (int) bits, (int) k, (int) n, (int) block, (int) blocks);
        }

        private static long elements(Tensor tensor) {
            long count = 1;
            for (long dim : tensor.dims()) {
                count *= dim;
            }
            return count;
        }

        /** K rounded up to the block. */
        int paddedK() {
            return blocks * block;
        }

        String panelsName() {
            return weight.name() + "::specula_q" + bits;
        }

        String scalesName() {
            return weight.name() + "::specula_q" + bits + "_scales";
        }

        String zerosName() {
            return weight.name() + "::specula_q" + bits + "_zeros";
        }

        List<Tensor> consumed() {
            return zeros == null ? List.of(weight, scales) : List.of(weight, scales, zeros);
        }

    }

    /**
     * Rewrites the graph at {@code modelPath}; its external weights are read from the
     * model's directory. A graph with no MatMul to rewrite gives {@link #matMuls()} 0.
     */
    static PanelGraph rewrite(Path modelPath, OrtEnvironment environment) throws IOException, OrtException {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(modelPath);
        }
        catch (OutOfMemoryError ex) {
            throw new IOException("no room in the heap to read " + modelPath + " (" + (Files.size(modelPath) >> 20)
                    + " MB, weights inside the graph) for the rewrite: raise -Xmx, or export the weights beside "
                    + "the graph", ex);
        }
        List<Field> modelFields = OnnxWire.read(bytes);
        Field graphField = null;
        for (Field field : modelFields) {
            if (field.number() == MODEL_GRAPH) {
                graphField = field;
            }
        }
        if (graphField == null) {
            throw new IOException(modelPath + " has no graph");
        }
        List<Field> graph = graphField.message();
        List<Node> nodes = new ArrayList<>();
        Map<String, Node> producers = new HashMap<>();
        Map<String, Tensor> initializers = new LinkedHashMap<>();
        Set<String> outputs = new HashSet<>();
        Set<String> inputs = new HashSet<>();
        for (Field field : graph) {
            if (field.number() == GRAPH_NODE) {
                Node node = Node.of(field);
                nodes.add(node);
                node.outputs().forEach((output) -> producers.put(output, node));
            }
            else if (field.number() == GRAPH_INITIALIZER) {
                Tensor tensor = Tensor.of(field);
                initializers.put(tensor.name(), tensor);
            }
            else if (field.number() == GRAPH_OUTPUT) {
                outputs.add(OnnxWire.string(field.message(), 1));
            }
            else if (field.number() == GRAPH_INPUT) {
                inputs.add(OnnxWire.string(field.message(), 1));
            }
        }
        // an initializer that is also a graph input (IR < 4) can be fed: not a constant
        inputs.forEach(initializers::remove);
        Map<Node, Source> rewrites = new LinkedHashMap<>();
        Map<Node, Quantized> quantized = new LinkedHashMap<>();
        Map<Node, Attention> attentions = new LinkedHashMap<>();
        for (Node node : nodes) {
            if (node.standard("MatMul") && node.inputs().size() == 2) {
                Source source = source(node.inputs().get(1), producers, initializers);
                if (source != null) {
                    rewrites.put(node, source);
                }
            }
            Quantized weights = Quantized.of(node, initializers);
            if (weights != null) {
                quantized.put(node, weights);
            }
            Attention attention = Attention.of(node);
            if (attention != null) {
                attentions.put(node, attention);
            }
        }
        if (rewrites.isEmpty() && quantized.isEmpty() && attentions.isEmpty()) {
            return new PanelGraph(bytes, Map.of(), Map.of(), new ArrayList<>(), 0, 0, 0, 0, 1, 0);
        }
        int quantizedLeft = 0;
        int rowCoupled = 0;
        for (Node node : nodes) {
            boolean kept = !rewrites.containsKey(node) && !quantized.containsKey(node) && !attentions.containsKey(node);
            if (node.opType().equals("MatMulNBits") && kept) {
                quantizedLeft++;
            }
            if (ROW_COUPLED.contains(node.opType()) && kept) {
                rowCoupled++;
            }
            for (Field field : node.fields()) {
                if (field.number() == NODE_ATTRIBUTE) {
                    quantizedLeft += subgraphOps(field.message(), Set.of("MatMulNBits"));
                    rowCoupled += subgraphOps(field.message(), ROW_COUPLED);
                }
            }
        }
        Map<String, OnnxTensor> panels = new LinkedHashMap<>();
        Map<String, OnnxTensor> mapped = new HashMap<>();
        List<ByteBuffer> owners = new ArrayList<>();
        Path directory = modelPath.toAbsolutePath().getParent();
        try {
            Map<Node, Replacement> replacements = new LinkedHashMap<>();
            for (Map.Entry<Node, Source> entry : rewrites.entrySet()) {
                Source source = entry.getValue();
                if (!panels.containsKey(source.panelName())) {
                    panels.put(source.panelName(), panels(source, bytes, directory, environment, owners));
                }
                replacements.put(entry.getKey(),
                        new Replacement(OP, List.of(entry.getKey().inputs().get(0), source.panelName()), source.path(),
                                List.of(source.tensor())));
            }
            for (Map.Entry<Node, Quantized> entry : quantized.entrySet()) {
                Quantized weights = entry.getValue();
                if (!panels.containsKey(weights.panelsName())) {
                    quantizedPanels(weights, bytes, directory, environment, owners, panels);
                }
                replacements.put(entry.getKey(), new Replacement(
                        weights.bits() == 8 ? QUANTIZED_8_OP : QUANTIZED_OP, List.of(entry.getKey().inputs().get(0),
                                weights.panelsName(), weights.scalesName(), weights.zerosName()),
                        List.of(), weights.consumed()));
            }
            for (Map.Entry<Node, Attention> entry : attentions.entrySet()) {
                String params = nodeName(entry.getKey()) + "::specula_attention";
                replacements.put(entry.getKey(),
                        new Replacement(Attention.OP, entry.getValue().inputs(entry.getKey(), params), List.of(),
                                List.of(), List.of(entry.getValue().params(params))));
            }
            Set<String> droppedNames = new HashSet<>();
            byte[] rewritten = write(modelFields, graph, nodes, outputs, replacements, panels, droppedNames);
            for (Tensor tensor : initializers.values()) {
                if (!droppedNames.contains(tensor.name())) {
                    OnnxTensor weight = mapped(tensor, directory, environment);
                    if (weight != null) {
                        mapped.put(tensor.name(), weight);
                    }
                }
            }
            int eightBit = (int) quantized.values().stream().filter((weights) -> weights.bits() == 8).count();
            return new PanelGraph(rewritten, panels, mapped, owners, rewrites.size(), quantized.size(), eightBit,
                    quantizedLeft, rowCoupled, attentions.size());
        }
        catch (IOException | OrtException | RuntimeException | OutOfMemoryError ex) {
            panels.values().forEach(OnnxTensor::close);
            mapped.values().forEach(OnnxTensor::close);
            owners.forEach(PanelGraph::free);
            throw ex;
        }
    }

    /** B's weight if this kernel takes it, else null. */
    private static Source source(String name, Map<String, Node> producers, Map<String, Tensor> initializers) {
        String current = name;
        boolean transposed = false;
        boolean cast = false;
        List<Node> path = new ArrayList<>();
        while (!initializers.containsKey(current)) {
            Node node = producers.get(current);
            if (node == null || path.size() == 2 || node.inputs().isEmpty()) {
                return null;
            }
            if (node.standard("Cast")) {
                List<Field> to = node.attribute("to");
                if (to == null || OnnxWire.integer(to, ATTRIBUTE_I, -1) != FLOAT || cast) {
                    return null;
                }
                cast = true;
            }
            else if (node.standard("Transpose") && node.inputs().size() == 1) {
                List<Field> perm = node.attribute("perm");
                List<Long> order = perm == null ? List.of(1L, 0L) : OnnxWire.longs(perm, ATTRIBUTE_INTS);
                if (!order.equals(List.of(1L, 0L)) || transposed) {
                    return null;
                }
                transposed = true;
            }
            else {
                return null;
            }
            path.add(node);
            current = node.inputs().get(0);
        }
        Tensor tensor = initializers.get(current);
        boolean widened = tensor.dataType() == FLOAT16 && cast;
        if ((tensor.dataType() != FLOAT && !widened) || tensor.dims().length != 2 || !readable(tensor)) {
            return null;
        }
        Source source = new Source(tensor, transposed, path);
        return source.k() > 0 && source.n() > 0 && source.n() % PANEL == 0
                && source.n() * source.k() <= Integer.MAX_VALUE / 4 ? source : null;
    }

    /** Whether the tensor's data is raw bytes, in the model or in an external file. */
    private static boolean readable(Tensor tensor) {
        for (Field field : tensor.fields()) {
            if (field.number() == TENSOR_RAW_DATA) {
                return true;
            }
        }
        return OnnxWire.integer(tensor.fields(), TENSOR_DATA_LOCATION, 0) == 1;
    }

    /** P [N/16, K, 16] of the source's W [K, N], as a tensor over a direct buffer. */
    private static OnnxTensor panels(Source source, byte[] model, Path directory, OrtEnvironment environment,
            List<ByteBuffer> owners) throws IOException, OrtException {
        int k = (int) source.k();
        int n = (int) source.n();
        FloatBuffer panels = direct((long) k * n * 4, source.tensor(), owners).asFloatBuffer();
        try (WeightReader weight = WeightReader.open(source.tensor(), model, directory, (long) k * n)) {
            float[] panel = new float[k * PANEL];
            if (source.transposed()) {
                // stored [N, K]: a panel is 16 whole rows, [16, K] -> [K, 16]
                float[] rows = new float[PANEL * k];
                for (int j = 0; j < n / PANEL; j++) {
                    weight.read((long) j * PANEL * k, rows, rows.length);
                    for (int row = 0; row < k; row++) {
                        for (int c = 0; c < PANEL; c++) {
                            panel[row * PANEL + c] = rows[c * k + row];
                        }
                    }
                    panels.put(j * k * PANEL, panel, 0, panel.length);
                }
            }
            else {
                // stored [K, N]: rows of W a block at a time (about 1 MB), each row's 16
                // columns of panel j to P[j, row, :]
                int block = Math.max(1, (1 << 18) / n);
                float[] rows = new float[block * n];
                float[] slices = new float[block * n]; // [N/16, count, 16]: the block's
                                                       // rows of each panel
                for (int first = 0; first < k; first += block) {
                    int count = Math.min(block, k - first);
                    weight.read((long) first * n, rows, count * n);
                    for (int row = 0; row < count; row++) {
                        for (int j = 0; j < n / PANEL; j++) {
                            System.arraycopy(rows, row * n + j * PANEL, slices, (j * count + row) * PANEL, PANEL);
                        }
                    }
                    for (int j = 0; j < n / PANEL; j++) {
                        panels.put((j * k + first) * PANEL, slices, j * count * PANEL, count * PANEL);
                    }
                }
            }
        }
        return OnnxTensor.createTensor(environment, panels, new long[] { n / PANEL, k, PANEL });
    }

    /**
     * {@code PanelMatMulQ4}'s (or {@code PanelMatMulQ8}'s) three inputs for a 4-bit (or
     * 8-bit) weight, into {@code into}: Q [N/16, Kp/8 (Kp/4), 64] uint8, S and Z [N/16,
     * blocks, 16] float32, the panels in groups of 4 (then the tail panels one by one), a
     * group's panels interleaved step by step in Q and block by block in S and Z
     * (specula_kernels.cc says why).
     */
    private static void quantizedPanels(Quantized source, byte[] model, Path directory, OrtEnvironment environment,
            List<ByteBuffer> owners, Map<String, OnnxTensor> into) throws IOException, OrtException {
        int n = source.n();
        int kp = source.paddedK();
        int blocks = source.blocks();
        int panelCount = n / PANEL;
        int groupsEnd = panelCount / 4 * 4;
        boolean eightBits = source.bits() == 8;
        // k a 64-byte step of a panel holds: 8 at 4 bits, 4 at 8
        int stepK = 32 / source.bits();
        long panelBytes = (long) kp / stepK * 64;
        ByteBuffer q = direct((long) n * kp * source.bits() / 8, source.weight(), owners);
        FloatBuffer s = direct((long) n * blocks * 4, source.weight(), owners).asFloatBuffer();
        FloatBuffer z = direct((long) n * blocks * 4, source.weight(), owners).asFloatBuffer();
        int columnBytes = kp * source.bits() / 8;
        int zeroBytes = eightBits ? blocks : (blocks + 1) / 2;
        byte[] columns = new byte[PANEL * columnBytes]; // 16 columns of B as stored
        byte[] values = new byte[kp * PANEL]; // [Kp, 16]: the 4-bit values
        byte[] step = new byte[64];
        float[] scales = new float[PANEL * blocks];
        byte[] zeros = new byte[PANEL * zeroBytes];
        try (WeightReader weight = WeightReader.open(source.weight(), model, directory, (long) n * columnBytes);
                WeightReader scale = WeightReader.open(source.scales(), model, directory, (long) n * blocks);
                WeightReader zero = source.zeros() == null ? null
                        : WeightReader.open(source.zeros(), model, directory, (long) n * zeroBytes)) {
            for (int j = 0; j < panelCount; j++) {
                weight.readBytes((long) j * PANEL * columnBytes, columns, columns.length);
                scale.read((long) j * PANEL * blocks, scales, scales.length);
                if (zero != null) {
                    zero.readBytes((long) j * PANEL * zeroBytes, zeros, zeros.length);
                }
                for (int c = 0; c < PANEL; c++) {
                    for (int k = 0; k < kp; k++) {
                        if (eightBits) {
                            values[k * PANEL + c] = columns[c * columnBytes + k];
                        }
                        else {
                            int packed = columns[c * columnBytes + k / 2];
                            values[k * PANEL + c] = (byte) ((k % 2 == 0 ? packed : packed >> 4) & 15);
                        }
                    }
                }
                boolean grouped = j < groupsEnd;
                int first = grouped ? j - j % 4 : j;
                int within = grouped ? j % 4 : 0;
                int stepStride = grouped ? 256 : 64;
                int blockStride = grouped ? 64 : 16;
                for (int k0 = 0; k0 < kp; k0 += stepK) {
                    for (int c = 0; c < PANEL; c++) {
                        for (int i = 0; i < 4; i++) {
                            step[4 * c + i] = eightBits ? values[(k0 + i) * PANEL + c]
                                    : (byte) (values[(k0 + i) * PANEL + c] | values[(k0 + 4 + i) * PANEL + c] << 4);
                        }
                    }
                    q.put((int) (first * panelBytes + (long) (k0 / stepK) * stepStride + within * 64), step);
                }
                for (int b = 0; b < blocks; b++) {
                    for (int c = 0; c < PANEL; c++) {
                        int at = first * PANEL * blocks + b * blockStride + within * PANEL + c;
                        s.put(at, scales[c * blocks + b]);
                        int zeroPoint;
                        if (eightBits) {
                            zeroPoint = zero == null ? 128 : zeros[c * zeroBytes + b] & 255;
                        }
                        else {
                            zeroPoint = zero == null ? 8 : (zeros[c * zeroBytes + b / 2] >> (b % 2 == 0 ? 0 : 4)) & 15;
                        }
                        z.put(at, zeroPoint);
                    }
                }
            }
        }
        long[] scaleShape = { panelCount, blocks, PANEL };
        into.put(source.panelsName(),
                OnnxTensor.createTensor(environment, q, new long[] { panelCount, kp / stepK, 64 }, OnnxJavaType.UINT8));
        into.put(source.scalesName(), OnnxTensor.createTensor(environment, s, scaleShape));
        into.put(source.zerosName(), OnnxTensor.createTensor(environment, z, scaleShape));
    }

    /**
     * A new direct buffer of {@code bytes} for weight {@code of}'s panels, owned (freed
     * on close). When the JVM's direct memory (-XX:MaxDirectMemorySize, by default the
     * heap's size) is full: an IOException, nothing else touched.
     */
    private static ByteBuffer direct(long bytes, Tensor of, List<ByteBuffer> owners) throws IOException {
        try {
            ByteBuffer buffer = ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.nativeOrder());
            owners.add(buffer);
            return buffer;
        }
        catch (OutOfMemoryError ex) {
            throw new IOException("no room for " + (bytes >> 20) + " MB of panels of weight " + of.name()
                    + " in the JVM's direct memory (" + ex.getMessage() + "): raise -XX:MaxDirectMemorySize (or -Xmx)",
                    ex);
        }
    }

    /**
     * A weight's elements as float32, read in runs from the graph's bytes or its file
     * (read, not mapped: the source's pages do not stay in the process once its panels
     * are made).
     */
    private static final class WeightReader implements AutoCloseable {

        private final boolean half;

        private final int elementBytes;

        private final ByteBuffer inGraph;

        private final FileChannel file;

        private final long fileOffset;

        private ByteBuffer chunk = ByteBuffer.allocate(0);

        private WeightReader(int elementBytes, ByteBuffer inGraph, FileChannel file, long fileOffset) {
            this.half = elementBytes == 2;
            this.elementBytes = elementBytes;
            this.inGraph = inGraph;
            this.file = file;
            this.fileOffset = fileOffset;
        }

        static WeightReader open(Tensor tensor, byte[] model, Path directory, long elements) throws IOException {
            int elementBytes = tensor.dataType() == FLOAT16 ? 2 : tensor.dataType() == UINT8 ? 1 : 4;
            long bytes = elements * elementBytes;
            for (Field field : tensor.fields()) {
                if (field.number() == TENSOR_RAW_DATA) {
                    if (field.length() < bytes) {
                        throw tooShort(tensor, field.length(), bytes);
                    }
                    ByteBuffer raw = ByteBuffer.wrap(model, field.offset(), field.length())
                        .slice()
                        .order(ByteOrder.LITTLE_ENDIAN);
                    return new WeightReader(elementBytes, raw, null, 0);
                }
            }
            External external = External.of(tensor, directory);
            FileChannel channel = FileChannel.open(external.file(), StandardOpenOption.READ);
            long available = (external.length() >= 0 ? external.length() : channel.size() - external.offset());
            if (available < bytes || channel.size() < external.offset() + bytes) {
                channel.close();
                throw tooShort(tensor, available, bytes);
            }
            return new WeightReader(elementBytes, null, channel, external.offset());
        }

        private static IOException tooShort(Tensor tensor, long held, long needed) {
            return new IOException(
                    "weight " + tensor.name() + " holds " + held + " bytes, not the " + needed + " its shape needs");
        }

        /** Elements {@code [first, first + count)} of a uint8 tensor. */
        void readBytes(long first, byte[] into, int count) throws IOException {
            bytes(first, count).get(0, into, 0, count);
        }

        /** Elements {@code [first, first + count)} into {@code into[0, count)}. */
        void read(long first, float[] into, int count) throws IOException {
            ByteBuffer bytes = bytes(first, count);
            if (half) {
                ShortBuffer halves = bytes.asShortBuffer();
                for (int i = 0; i < count; i++) {
                    into[i] = Fp16Conversions.fp16ToFloat(halves.get(i));
                }
            }
            else {
                bytes.asFloatBuffer().get(0, into, 0, count);
            }
        }

        /** The bytes of elements {@code [first, first + count)}, little-endian. */
        private ByteBuffer bytes(long first, int count) throws IOException {
            ByteBuffer bytes;
            if (inGraph != null) {
                bytes = inGraph.slice((int) (first * elementBytes), count * elementBytes)
                    .order(ByteOrder.LITTLE_ENDIAN);
            }
            else {
                if (chunk.capacity() < count * elementBytes) {
                    chunk = ByteBuffer.allocate(count * elementBytes);
                }
                chunk.clear().limit(count * elementBytes);
                long position = fileOffset + first * elementBytes;
                while (chunk.hasRemaining()) {
                    if (file.read(chunk, position + chunk.position()) < 0) {
                        throw new IOException("the weights file ends early");
                    }
                }
                bytes = chunk.flip().order(ByteOrder.LITTLE_ENDIAN);
            }
            return bytes;
        }

        @Override
        public void close() throws IOException {
            if (file != null) {
                file.close();
            }
        }

    }

    /** ONNX element types a mapped weight may have, by TensorProto.DataType. */
    private static final Map<Integer, OnnxJavaType> JAVA_TYPES = Map.of(FLOAT, OnnxJavaType.FLOAT, 2,
            OnnxJavaType.UINT8, 3, OnnxJavaType.INT8, 5, OnnxJavaType.INT16, 6, OnnxJavaType.INT32, 7,
            OnnxJavaType.INT64, 9, OnnxJavaType.BOOL, FLOAT16, OnnxJavaType.FLOAT16, 11, OnnxJavaType.DOUBLE, 16,
            OnnxJavaType.BFLOAT16);

    /**
     * An initializer whose data lies in a file, as a tensor over the mapped file; null
     * for one in the graph, of another element type or over 2 GB, which ONNX Runtime
     * reads itself (from the model's directory).
     */
    private static OnnxTensor mapped(Tensor tensor, Path directory, OrtEnvironment environment)
            throws IOException, OrtException {
        OnnxJavaType type = JAVA_TYPES.get(tensor.dataType());
        if (OnnxWire.integer(tensor.fields(), TENSOR_DATA_LOCATION, 0) != 1 || type == null) {
            return null;
        }
        long bytes = type.size;
        for (long dim : tensor.dims()) {
            bytes *= dim;
        }
        if (bytes > Integer.MAX_VALUE) {
            return null;
        }
        ByteBuffer data = data(tensor, directory);
        if (data.remaining() < bytes) {
            throw new IOException("weight " + tensor.name() + " holds " + data.remaining() + " bytes, not the " + bytes
                    + " its shape needs");
        }
        ByteBuffer exact = data.slice(data.position(), (int) bytes).order(ByteOrder.nativeOrder());
        return OnnxTensor.createTensor(environment, exact, tensor.dims(), type);
    }

    /** Where a weight's data lies in a file beside the graph. */
    private record External(Path file, long offset, long length) {

        static External of(Tensor tensor, Path directory) throws IOException {
            String location = "";
            long offset = 0;
            long length = -1;
            for (Field field : tensor.fields()) {
                if (field.number() == TENSOR_EXTERNAL_DATA) {
                    List<Field> entry = field.message();
                    String value = OnnxWire.string(entry, 2);
                    switch (OnnxWire.string(entry, 1)) {
                        case "location" -> location = value;
                        case "offset" -> offset = Long.parseLong(value);
                        case "length" -> length = Long.parseLong(value);
                        default -> {
                        }
                    }
                }
            }
            Path file = directory.resolve(location).normalize();
            if (location.isEmpty() || !file.startsWith(directory)) {
                throw new IOException("weight " + tensor.name() + " has external data at '" + location
                        + "', which is not a file in " + directory);
            }
            return new External(file, offset, length);
        }

    }

    /** A weight's bytes in its file, mapped, little-endian. */
    private static ByteBuffer data(Tensor tensor, Path directory) throws IOException {
        External external = External.of(tensor, directory);
        try (FileChannel channel = FileChannel.open(external.file(), StandardOpenOption.READ)) {
            long size = external.length() >= 0 ? external.length() : channel.size() - external.offset();
            return channel.map(FileChannel.MapMode.READ_ONLY, external.offset(), size).order(ByteOrder.LITTLE_ENDIAN);
        }
    }

    /** The model with the rewritten graph and the kernels' domain imported. */
    private static byte[] write(List<Field> modelFields, List<Field> graph, List<Node> nodes, Set<String> outputs,
            Map<Node, Replacement> rewrites, Map<String, OnnxTensor> panels, Set<String> droppedNames) {
        // uses of every name once the MatMuls read their panels, subgraphs' included
        Map<String, Integer> uses = new HashMap<>();
        for (Node node : nodes) {
            Replacement replacement = rewrites.get(node);
            List<String> inputs = replacement == null ? node.inputs() : replacement.inputs();
            inputs.forEach((input) -> uses.merge(input, 1, Integer::sum));
            for (Field field : node.fields()) {
                if (field.number() == NODE_ATTRIBUTE) {
                    subgraphNames(field.message(), uses);
                }
            }
        }
        outputs.forEach((output) -> uses.merge(output, 1, Integer::sum));
        // Cast and Transpose nodes on the way to a weight, and the weights, left unused
        Set<Node> dropped = new HashSet<>();
        boolean changed = true;
        while (changed) {
            changed = false;
            for (Replacement replacement : rewrites.values()) {
                for (Node node : replacement.path()) {
                    if (!dropped.contains(node) && uses.getOrDefault(node.outputs().get(0), 0) == 0) {
                        dropped.add(node);
                        uses.merge(node.inputs().get(0), -1, Integer::sum);
                        changed = true;
                    }
                }
            }
        }
        dropped.forEach((node) -> droppedNames.addAll(node.outputs()));
        for (Replacement replacement : rewrites.values()) {
            for (Tensor tensor : replacement.consumed()) {
                if (uses.getOrDefault(tensor.name(), 0) <= 0) {
                    droppedNames.add(tensor.name());
                }
            }
        }
        OnnxWire.Writer graphOut = new OnnxWire.Writer();
        for (Field field : graph) {
            if (field.number() == GRAPH_NODE) {
                continue;
            }
            if (field.number() == GRAPH_INITIALIZER && droppedNames.contains(Tensor.of(field).name())) {
                continue;
            }
            if (field.number() == GRAPH_VALUE_INFO && droppedNames.contains(OnnxWire.string(field.message(), 1))) {
                continue;
            }
            graphOut.field(field);
        }
        for (Node node : nodes) {
            if (dropped.contains(node)) {
                continue;
            }
            Replacement replacement = rewrites.get(node);
            if (replacement == null) {
                OnnxWire.Writer same = new OnnxWire.Writer();
                node.fields().forEach(same::field);
                graphOut.message(GRAPH_NODE, same);
                continue;
            }
            OnnxWire.Writer panelNode = new OnnxWire.Writer();
            replacement.inputs().forEach((input) -> panelNode.string(NODE_INPUT, input));
            node.outputs().forEach((output) -> panelNode.string(NODE_OUTPUT, output));
            panelNode.string(NODE_NAME, nodeName(node))
                .string(NODE_OP_TYPE, replacement.op())
                .string(NODE_DOMAIN, DOMAIN);
            graphOut.message(GRAPH_NODE, panelNode);
        }
        for (Map.Entry<String, OnnxTensor> entry : panels.entrySet()) {
            graphOut.message(GRAPH_INITIALIZER, placeholder(entry.getKey(), entry.getValue().getInfo()));
        }
        for (Replacement replacement : rewrites.values()) {
            replacement.added().forEach((tensor) -> graphOut.message(GRAPH_INITIALIZER, tensor));
        }
        OnnxWire.Writer modelOut = new OnnxWire.Writer();
        for (Field field : modelFields) {
            if (field.number() == MODEL_GRAPH) {
                modelOut.message(MODEL_GRAPH, graphOut);
            }
            else {
                modelOut.field(field);
            }
        }
        modelOut.message(MODEL_OPSET_IMPORT, new OnnxWire.Writer().string(1, DOMAIN).varint(2, 1));
        return modelOut.toBytes();
    }

    private static String nodeName(Node node) {
        String name = OnnxWire.string(node.fields(), NODE_NAME);
        return (name.isEmpty() ? node.outputs().get(0) : name) + "/panels";
    }

    /**
     * A float32 or uint8 initializer declared external, whose data
     * {@code addExternalInitializers} supplies (ONNX Runtime replaces it before it would
     * read the location, which names no file).
     */
    private static OnnxWire.Writer placeholder(String name, ai.onnxruntime.TensorInfo info) {
        OnnxWire.Writer tensor = new OnnxWire.Writer();
        long bytes = info.type.size;
        for (long dim : info.getShape()) {
            tensor.varint(TENSOR_DIMS, dim);
            bytes *= dim;
        }
        tensor.varint(TENSOR_DATA_TYPE, info.type == OnnxJavaType.UINT8 ? UINT8 : FLOAT).string(TENSOR_NAME, name);
        tensor.message(TENSOR_EXTERNAL_DATA, new OnnxWire.Writer().string(1, "location").string(2, "specula-panels"));
        tensor.message(TENSOR_EXTERNAL_DATA, new OnnxWire.Writer().string(1, "offset").string(2, "0"));
        tensor.message(TENSOR_EXTERNAL_DATA, new OnnxWire.Writer().string(1, "length").string(2, Long.toString(bytes)));
        tensor.varint(TENSOR_DATA_LOCATION, 1);
        return tensor;
    }

    /**
     * How many nodes of the attribute's subgraphs (theirs included) have one of these op
     * types.
     */
    private static int subgraphOps(List<Field> attribute, Set<String> opTypes) {
        int count = 0;
        for (Field field : attribute) {
            if (field.number() == ATTRIBUTE_G || field.number() == ATTRIBUTE_GRAPHS) {
                for (Field graphField : field.message()) {
                    if (graphField.number() == GRAPH_NODE) {
                        List<Field> node = graphField.message();
                        count += opTypes.contains(OnnxWire.string(node, NODE_OP_TYPE)) ? 1 : 0;
                        for (Field nodeField : node) {
                            if (nodeField.number() == NODE_ATTRIBUTE) {
                                count += subgraphOps(nodeField.message(), opTypes);
                            }
                        }
                    }
                }
            }
        }
        return count;
    }

    /** Counts every node input of the attribute's subgraphs as a use (outer names). */
    private static void subgraphNames(List<Field> attribute, Map<String, Integer> uses) {
        for (Field field : attribute) {
            if (field.number() == ATTRIBUTE_G || field.number() == ATTRIBUTE_GRAPHS) {
                for (Field graphField : field.message()) {
                    if (graphField.number() == GRAPH_NODE) {
                        List<Field> node = graphField.message();
                        OnnxWire.strings(node, NODE_INPUT).forEach((input) -> uses.merge(input, 1, Integer::sum));
                        for (Field nodeField : node) {
                            if (nodeField.number() == NODE_ATTRIBUTE) {
                                subgraphNames(nodeField.message(), uses);
                            }
                        }
                    }
                    else if (graphField.number() == GRAPH_OUTPUT) {
                        uses.merge(OnnxWire.string(graphField.message(), 1), 1, Integer::sum);
                    }
                }
            }
        }
    }

}
