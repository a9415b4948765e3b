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
 * A decoder graph with its float32 weight MatMuls as Specula's {@code PanelMatMul}
 * (native library {@code engine/src/main/native}), rewritten in memory at load: the model
 * file is not changed and nothing is written to disk.
 *
 * <p>
 * A top-level {@code MatMul(A, B)} is rewritten when B is a float32 weight [K, N] with N
 * a multiple of 16: an initializer, or one reached through {@code Cast} to float32 (of a
 * float16-stored weight, widened exactly) and {@code Transpose} [1, 0] (a tied
 * {@code lm_head}). Its weight becomes panels P [N/16, K, 16] (P[j, k, c] = W[k, 16 j +
 * c]) in a direct buffer that ONNX Runtime reads in place
 * ({@code addExternalInitializers}); the graph declares each as an external initializer
 * that the buffer replaces. Cast and Transpose nodes and initializers left without a use
 * are dropped, so the weight is held once. Every other field of the model is copied as it
 * was read.
 */
final class PanelGraph implements AutoCloseable {

    static final String DOMAIN = "dev.specula.kernels";

    static final String OP = "PanelMatMul";

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

    private static final int ATTRIBUTE_I = 3;

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

    private static final int FLOAT16 = 10;

    private final byte[] model;

    private final Map<String, OnnxTensor> panels;

    private final int matMuls;

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
            List<ByteBuffer> owners, int matMuls) {
        this.model = model;
        this.owners = owners;
        this.panels = panels;
        this.mapped = mapped;
        this.matMuls = matMuls;
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

    /** How many MatMuls were rewritten (0: the graph has none this kernel takes). */
    int matMuls() {
        return matMuls;
    }

    /** Bytes of panel weights held. */
    long panelBytes() {
        return panels.values()
            .stream()
            .mapToLong((tensor) -> tensor.getBufferRef().orElseThrow().capacity() * 4L)
            .sum();
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
        for (Node node : nodes) {
            if (node.standard("MatMul") && node.inputs().size() == 2) {
                Source source = source(node.inputs().get(1), producers, initializers);
                if (source != null) {
                    rewrites.put(node, source);
                }
            }
        }
        if (rewrites.isEmpty()) {
            return new PanelGraph(bytes, Map.of(), Map.of(), new ArrayList<>(), 0);
        }
        Map<String, OnnxTensor> panels = new LinkedHashMap<>();
        Map<String, OnnxTensor> mapped = new HashMap<>();
        List<ByteBuffer> owners = new ArrayList<>();
        Path directory = modelPath.toAbsolutePath().getParent();
        try {
            for (Source source : rewrites.values()) {
                if (!panels.containsKey(source.panelName())) {
                    panels.put(source.panelName(), panels(source, bytes, directory, environment, owners));
                }
            }
            Set<String> droppedNames = new HashSet<>();
            byte[] rewritten = write(modelFields, graph, nodes, initializers, outputs, rewrites, panels, droppedNames);
            for (Tensor tensor : initializers.values()) {
                if (!droppedNames.contains(tensor.name())) {
                    OnnxTensor weight = mapped(tensor, directory, environment);
                    if (weight != null) {
                        mapped.put(tensor.name(), weight);
                    }
                }
            }
            return new PanelGraph(rewritten, panels, mapped, owners, rewrites.size());
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
        FloatBuffer panels;
        try {
            ByteBuffer owner = ByteBuffer.allocateDirect(k * n * 4).order(ByteOrder.nativeOrder());
            owners.add(owner);
            panels = owner.asFloatBuffer();
        }
        catch (OutOfMemoryError ex) {
            // the JVM's direct memory (-XX:MaxDirectMemorySize, by default the heap's
            // size) is full: no panels, nothing else touched
            throw new IOException("no room for " + ((long) k * n * 4 >> 20) + " MB of panels of weight "
                    + source.tensor().name() + " in the JVM's direct memory (" + ex.getMessage()
                    + "): raise -XX:MaxDirectMemorySize (or -Xmx)", ex);
        }
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
     * A weight's elements as float32, read in runs from the graph's bytes or its file
     * (read, not mapped: the source's pages do not stay in the process once its panels
     * are made).
     */
    private static final class WeightReader implements AutoCloseable {

        private final boolean half;

        private final ByteBuffer inGraph;

        private final FileChannel file;

        private final long fileOffset;

        private ByteBuffer chunk = ByteBuffer.allocate(0);

        private WeightReader(boolean half, ByteBuffer inGraph, FileChannel file, long fileOffset) {
            this.half = half;
            this.inGraph = inGraph;
            this.file = file;
            this.fileOffset = fileOffset;
        }

        static WeightReader open(Tensor tensor, byte[] model, Path directory, long elements) throws IOException {
            boolean half = tensor.dataType() == FLOAT16;
            long bytes = elements * (half ? 2 : 4);
            for (Field field : tensor.fields()) {
                if (field.number() == TENSOR_RAW_DATA) {
                    if (field.length() < bytes) {
                        throw tooShort(tensor, field.length(), bytes);
                    }
                    ByteBuffer raw = ByteBuffer.wrap(model, field.offset(), field.length())
                        .slice()
                        .order(ByteOrder.LITTLE_ENDIAN);
                    return new WeightReader(half, raw, null, 0);
                }
            }
            External external = External.of(tensor, directory);
            FileChannel channel = FileChannel.open(external.file(), StandardOpenOption.READ);
            long available = (external.length() >= 0 ? external.length() : channel.size() - external.offset());
            if (available < bytes || channel.size() < external.offset() + bytes) {
                channel.close();
                throw tooShort(tensor, available, bytes);
            }
            return new WeightReader(half, null, channel, external.offset());
        }

        private static IOException tooShort(Tensor tensor, long held, long needed) {
            return new IOException(
                    "weight " + tensor.name() + " holds " + held + " bytes, not the " + needed + " its shape needs");
        }

        /** Elements {@code [first, first + count)} into {@code into[0, count)}. */
        void read(long first, float[] into, int count) throws IOException {
            int elementBytes = half ? 2 : 4;
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
    private static byte[] write(List<Field> modelFields, List<Field> graph, List<Node> nodes,
            Map<String, Tensor> initializers, Set<String> outputs, Map<Node, Source> rewrites,
            Map<String, OnnxTensor> panels, Set<String> droppedNames) {
        // uses of every name once the MatMuls read their panels, subgraphs' included
        Map<String, Integer> uses = new HashMap<>();
        for (Node node : nodes) {
            List<String> inputs = rewrites.containsKey(node) ? node.inputs().subList(0, 1) : node.inputs();
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
            for (Source source : rewrites.values()) {
                for (Node node : source.path()) {
                    if (!dropped.contains(node) && uses.getOrDefault(node.outputs().get(0), 0) == 0) {
                        dropped.add(node);
                        uses.merge(node.inputs().get(0), -1, Integer::sum);
                        changed = true;
                    }
                }
            }
        }
        dropped.forEach((node) -> droppedNames.addAll(node.outputs()));
        for (Source source : rewrites.values()) {
            if (uses.getOrDefault(source.tensor().name(), 0) <= 0) {
                droppedNames.add(source.tensor().name());
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
            Source source = rewrites.get(node);
            if (source == null) {
                OnnxWire.Writer same = new OnnxWire.Writer();
                node.fields().forEach(same::field);
                graphOut.message(GRAPH_NODE, same);
                continue;
            }
            OnnxWire.Writer panelNode = new OnnxWire.Writer().string(NODE_INPUT, node.inputs().get(0))
                .string(NODE_INPUT, source.panelName());
            node.outputs().forEach((output) -> panelNode.string(NODE_OUTPUT, output));
            panelNode.string(NODE_NAME, nodeName(node)).string(NODE_OP_TYPE, OP).string(NODE_DOMAIN, DOMAIN);
            graphOut.message(GRAPH_NODE, panelNode);
        }
        for (Map.Entry<String, OnnxTensor> entry : panels.entrySet()) {
            graphOut.message(GRAPH_INITIALIZER, placeholder(entry.getKey(), entry.getValue().getInfo().getShape()));
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
     * A float32 initializer declared external, whose data {@code addExternalInitializers}
     * supplies (ONNX Runtime replaces it before it would read the location, which names
     * no file).
     */
    private static OnnxWire.Writer placeholder(String name, long[] shape) {
        OnnxWire.Writer tensor = new OnnxWire.Writer();
        for (long dim : shape) {
            tensor.varint(TENSOR_DIMS, dim);
        }
        long bytes = shape[0] * shape[1] * shape[2] * 4;
        tensor.varint(TENSOR_DATA_TYPE, FLOAT).string(TENSOR_NAME, name);
        tensor.message(TENSOR_EXTERNAL_DATA, new OnnxWire.Writer().string(1, "location").string(2, "specula-panels"));
        tensor.message(TENSOR_EXTERNAL_DATA, new OnnxWire.Writer().string(1, "offset").string(2, "0"));
        tensor.message(TENSOR_EXTERNAL_DATA, new OnnxWire.Writer().string(1, "length").string(2, Long.toString(bytes)));
        tensor.varint(TENSOR_DATA_LOCATION, 1);
        return tensor;
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
