package dev.specula.autoconfigure;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A stand-in GRIFFIN feature head for the embedded target, written as ONNX protobuf by
 * hand, so that the tests of a loaded head run whether or not the embedded pair ships a
 * trained one. It has a feature head's signature (engine's {@code GraphSignature}) and
 * drafts poorly, which speculation tolerates: the output is the target's either way.
 *
 * <pre>
 * inputs   input_ids                int64 [1, s]            (unused)
 *          attention_bias           float [1, 1, s, p + s]  (unused)
 *          hidden_states            float [1, s, hidden]
 *          past_key_values.0.key    float [1, kvHeads, p, headDim], .value the same
 * outputs  logits                   hidden_states x W, W [hidden, vocab] fixed pseudo-random
 *          regress                  hidden_states
 *          present.0.key / .value   past ++ hidden_states' first kvHeads heads of headDim
 * </pre>
 */
final class FeatureHeadGraph {

    private static final int FLOAT = 1;

    private static final int INT64 = 7;

    private static final int ATTRIBUTE_INT = 2;

    private static final int ATTRIBUTE_INTS = 7;

    private final int hidden;

    private final int vocab;

    private final int kvHeads;

    private final int headDim;

    /**
     * @param hidden width of the target's last_hidden_state (a multiple of headDim)
     * @param vocab columns of the logits
     * @param kvHeads KV heads of the head's one layer
     * @param headDim size of one KV head
     */
    FeatureHeadGraph(int hidden, int vocab, int kvHeads, int headDim) {
        this.hidden = hidden;
        this.vocab = vocab;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
    }

    /**
     * Writes a head directory: this graph as model.onnx, a config.json of model_type
     * griffin_head, and the target's tokenizer.json.
     */
    Path writeTo(Path directory, Path targetDirectory) {
        try {
            Files.createDirectories(directory);
            Files.write(directory.resolve("model.onnx"), model());
            Files.copy(targetDirectory.resolve("tokenizer.json"), directory.resolve("tokenizer.json"));
            Files.writeString(directory.resolve("config.json"),
                    "{\"model_type\": \"griffin_head\", \"vocab_size\": " + vocab + ", \"hidden_size\": " + hidden
                            + ", \"max_position_embeddings\": 2048, \"eos_token_id\": 0, \"bos_token_id\": 0}\n",
                    StandardCharsets.UTF_8);
            return directory;
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    /** ModelProto: ir_version 1, graph 7, opset_import 8. */
    byte[] model() {
        Proto opset = new Proto().string(1, "").int64(2, 17);
        return new Proto().int64(1, 8).string(2, "specula-tests").message(7, graph()).message(8, opset).bytes();
    }

    /** GraphProto: node 1, name 2, initializer 5, input 11, output 12. */
    private Proto graph() {
        Proto graph = new Proto().string(2, "feature_head");
        graph.message(1, node("Identity", new String[] { "hidden_states" }, "regress"));
        graph.message(1, node("MatMul", new String[] { "hidden_states", "W" }, "logits"));
        graph.message(1, node("Reshape", new String[] { "hidden_states", "heads_shape" }, "heads"));
        graph.message(1, node("Transpose", new String[] { "heads" }, "heads_first").message(5,
                new Proto().string(1, "perm").int64s(8, 0, 2, 1, 3).int64(20, ATTRIBUTE_INTS)));
        graph.message(1, node("Slice", new String[] { "heads_first", "kv_start", "kv_end", "kv_axis" }, "kv"));
        for (String kind : new String[] { "key", "value" }) {
            graph.message(1, node("Concat", new String[] { "past_key_values.0." + kind, "kv" }, "present.0." + kind)
                .message(5, new Proto().string(1, "axis").int64(3, 2).int64(20, ATTRIBUTE_INT)));
        }
        graph.message(5, weights());
        graph.message(5, int64s("heads_shape", 1, -1, hidden / headDim, headDim));
        graph.message(5, int64s("kv_start", 0));
        graph.message(5, int64s("kv_end", kvHeads));
        graph.message(5, int64s("kv_axis", 1));
        graph.message(11, value("input_ids", INT64, 1, "s"));
        graph.message(11, value("attention_bias", FLOAT, 1, 1, "s", "t"));
        graph.message(11, value("hidden_states", FLOAT, 1, "s", hidden));
        graph.message(11, value("past_key_values.0.key", FLOAT, 1, kvHeads, "p", headDim));
        graph.message(11, value("past_key_values.0.value", FLOAT, 1, kvHeads, "p", headDim));
        graph.message(12, value("logits", FLOAT, 1, "s", vocab));
        graph.message(12, value("regress", FLOAT, 1, "s", hidden));
        graph.message(12, value("present.0.key", FLOAT, 1, kvHeads, "t", headDim));
        graph.message(12, value("present.0.value", FLOAT, 1, kvHeads, "t", headDim));
        return graph;
    }

    /** NodeProto: input 1, output 2, name 3, op_type 4 (attribute 5 added by callers). */
    private static Proto node(String op, String[] inputs, String output) {
        Proto node = new Proto();
        for (String input : inputs) {
            node.string(1, input);
        }
        return node.string(2, output).string(3, output + "_node").string(4, op);
    }

    /**
     * W [hidden, vocab]: small fixed pseudo-random values, so drafts vary with features.
     */
    private Proto weights() {
        ByteBuffer raw = ByteBuffer.allocate(hidden * vocab * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        long state = 42;
        for (int i = 0; i < hidden * vocab; i++) {
            state = state * 6364136223846793005L + 1442695040888963407L;
            raw.putFloat(((state >>> 40) / (float) (1 << 24) - 0.5f) * 0.1f);
        }
        return new Proto().int64(1, hidden).int64(1, vocab).int64(2, FLOAT).string(8, "W").raw(9, raw.array());
    }

    /** TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian). */
    private static Proto int64s(String name, long... values) {
        ByteBuffer raw = ByteBuffer.allocate(values.length * Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (long value : values) {
            raw.putLong(value);
        }
        return new Proto().int64(1, values.length).int64(2, INT64).string(8, name).raw(9, raw.array());
    }

    /**
     * ValueInfoProto (name 1, type 2) of a tensor: TypeProto.tensor_type 1 (elem_type 1,
     * shape 2), TensorShapeProto.dim 1 (dim_value 1 or dim_param 2).
     */
    private static Proto value(String name, int type, Object... dims) {
        Proto shape = new Proto();
        for (Object dim : dims) {
            shape.message(1,
                    dim instanceof Integer size ? new Proto().int64(1, size) : new Proto().string(2, (String) dim));
        }
        Proto tensor = new Proto().int64(1, type).message(2, shape);
        return new Proto().string(1, name).message(2, new Proto().message(1, tensor));
    }

    /** A protobuf message being written: varint and length-delimited fields only. */
    private static final class Proto {

        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Proto int64(int field, long value) {
            varint((long) field << 3);
            varint(value);
            return this;
        }

        /** A packed repeated int64 field. */
        Proto int64s(int field, long... values) {
            Proto packed = new Proto();
            for (long value : values) {
                packed.varint(value);
            }
            return raw(field, packed.bytes());
        }

        Proto string(int field, String value) {
            return raw(field, value.getBytes(StandardCharsets.UTF_8));
        }

        Proto message(int field, Proto message) {
            return raw(field, message.bytes());
        }

        Proto raw(int field, byte[] bytes) {
            varint((long) field << 3 | 2);
            varint(bytes.length);
            out.writeBytes(bytes);
            return this;
        }

        byte[] bytes() {
            return out.toByteArray();
        }

        private void varint(long value) {
            long rest = value;
            while ((rest & ~0x7FL) != 0) {
                out.write((int) (rest & 0x7F) | 0x80);
                rest >>>= 7;
            }
            out.write((int) rest);
        }

    }

}
