package dev.specula.model;

import java.nio.file.Path;
import java.util.Map;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.TensorInfo;

/**
 * The decoder's inputs and outputs, read from the ONNX graph (Optimum
 * {@code text-generation-with-past} layout). <pre>
 * inputs   input_ids              int64 [b, s]
 *          attention_mask         int64 [b, past + s]        (or, --packed exports:)
 *          attention_bias         float [1, 1, s, past + s]  additive: 0 attends, large negative masks
 *          position_ids           int64 [b, s]               optional
 *          logits_to_keep         int64 [] or [1]            optional: k, logits of the last k positions only
 *          past_key_values.{i}.key / .value   [b, kvHeads, past, headDim]  float32 or float16
 *          use_cache_branch       bool [1]                   optional: Optimum's merged decoders, fed true
 *                                                            (the with-past branch also runs an empty past)
 * outputs  logits                 [b, s, vocab]              float32 or float16; [b, k, vocab] with logits_to_keep
 *          present.{i}.key / .value           [b, kvHeads, past + s, headDim]
 *          last_hidden_state      [b, s, hidden]             optional (--with-hidden)
 * </pre> A feature head (GRIFFIN, {@code python -m specula_tools train-griffin}) is a
 * one-layer packed graph of the same layout, with one more input and another hidden
 * output: <pre>
 * inputs   hidden_states          float [1, s, hidden]       the target's feature, or the parent's regress
 * outputs  regress                [1, s, hidden]             the predicted next target feature
 * </pre>
 *
 * @param layers transformer layers (pairs of past key/value inputs)
 * @param kvHeads key/value heads per layer
 * @param headDim size of one head
 * @param kvType element type of the KV cache (FLOAT or FLOAT16)
 * @param logitsType element type of the logits (FLOAT or FLOAT16)
 * @param logitsWidth columns of the logits, -1 when the graph leaves it symbolic
 * @param hasPositionIds whether {@code position_ids} is an input
 * @param hasAttentionMask whether {@code attention_mask} is an input
 * @param hasAttentionBias whether {@code attention_bias} is an input (packed variant)
 * @param hasHiddenState whether {@code last_hidden_state} (a feature head:
 * {@code regress}) is an output
 * @param hiddenSize width of that output, -1 when absent or symbolic
 * @param logitsToKeepRank rank of the {@code logits_to_keep} input (0: a scalar, 1: [1]),
 * -1 when the graph has none (it then returns the logits of every position)
 * @param hasUseCacheBranch whether {@code use_cache_branch} is an input (a merged
 * decoder)
 * @param takesFeatures whether {@code hidden_states} is an input: a feature head's graph
 */
public record GraphSignature(int layers, int kvHeads, int headDim, OnnxJavaType kvType, OnnxJavaType logitsType,
        int logitsWidth, boolean hasPositionIds, boolean hasAttentionMask, boolean hasAttentionBias,
        boolean hasHiddenState, int hiddenSize, int logitsToKeepRank, boolean hasUseCacheBranch,
        boolean takesFeatures) {

    static final String INPUT_IDS = "input_ids";
    static final String ATTENTION_MASK = "attention_mask";
    static final String ATTENTION_BIAS = "attention_bias";
    static final String POSITION_IDS = "position_ids";
    static final String LOGITS = "logits";
    static final String HIDDEN_STATE = "last_hidden_state";
    static final String USE_CACHE_BRANCH = "use_cache_branch";
    static final String LOGITS_TO_KEEP = "logits_to_keep";

    static final String FEATURES = "hidden_states";

    static final String REGRESS = "regress";

    /** The hidden output's name: {@code regress} for a feature head. */
    String hiddenOutput() {
        return takesFeatures ? REGRESS : HIDDEN_STATE;
    }

    /**
     * Whether the graph takes {@code logits_to_keep}: only the last k positions' logits
     * are computed.
     */
    public boolean hasLogitsToKeep() {
        return logitsToKeepRank >= 0;
    }

    static String pastKey(int layer) {
        return "past_key_values." + layer + ".key";
    }

    static String pastValue(int layer) {
        return "past_key_values." + layer + ".value";
    }

    static String presentKey(int layer) {
        return "present." + layer + ".key";
    }

    static String presentValue(int layer) {
        return "present." + layer + ".value";
    }

    /**
     * Reads the signature, failing with the model path and the missing name when the
     * layout is not Optimum's.
     */
    static GraphSignature introspect(Path model, Map<String, NodeInfo> inputs, Map<String, NodeInfo> outputs) {
        requireName(model, inputs, INPUT_IDS, "input");
        requireName(model, outputs, LOGITS, "output");
        boolean hasMask = inputs.containsKey(ATTENTION_MASK);
        boolean hasBias = inputs.containsKey(ATTENTION_BIAS);
        if (!hasMask && !hasBias) {
            throw layoutError(model, "has neither an 'attention_mask' nor an 'attention_bias' input");
        }
        int layers = 0;
        while (inputs.containsKey(pastKey(layers))) {
            requireName(model, inputs, pastValue(layers), "input");
            requireName(model, outputs, presentKey(layers), "output");
            requireName(model, outputs, presentValue(layers), "output");
            layers++;
        }
        if (layers == 0) {
            throw layoutError(model, "has no 'past_key_values.0.key' input: export it with past "
                    + "(Optimum task text-generation-with-past, or `python -m specula_tools export`)");
        }
        TensorInfo past = tensor(model, inputs, pastKey(0));
        long[] pastShape = past.getShape();
        if (pastShape.length != 4 || pastShape[1] <= 0 || pastShape[3] <= 0) {
            throw layoutError(model, "has past_key_values.0.key of shape " + java.util.Arrays.toString(pastShape)
                    + "; expected [batch, kv_heads, past, head_dim] with fixed kv_heads and head_dim");
        }
        OnnxJavaType kvType = past.type;
        if (kvType != OnnxJavaType.FLOAT && kvType != OnnxJavaType.FLOAT16) {
            throw layoutError(model, "has a " + kvType + " KV cache; only float32 and float16 are supported");
        }
        TensorInfo logits = tensor(model, outputs, LOGITS);
        if (logits.type != OnnxJavaType.FLOAT && logits.type != OnnxJavaType.FLOAT16) {
            throw layoutError(model, "has " + logits.type + " logits; only float32 and float16 are supported");
        }
        long[] logitsShape = logits.getShape();
        int logitsWidth = logitsShape.length == 3 ? (int) logitsShape[2] : -1;
        refuseUnknownInputs(model, inputs, layers);
        boolean takesFeatures = inputs.containsKey(FEATURES);
        String hiddenName = takesFeatures ? REGRESS : HIDDEN_STATE;
        if (takesFeatures) {
            requireName(model, outputs, REGRESS, "output (a feature head's graph, which takes hidden_states)");
            if (!hasBias) {
                throw layoutError(model, "takes hidden_states (a feature head) but no attention_bias: feature "
                        + "heads are packed graphs (python -m specula_tools train-griffin)");
            }
        }
        boolean hasHidden = outputs.containsKey(hiddenName);
        int hiddenSize = -1;
        if (hasHidden) {
            long[] hiddenShape = tensor(model, outputs, hiddenName).getShape();
            hiddenSize = hiddenShape.length == 3 ? (int) hiddenShape[2] : -1;
        }
        int keepRank = -1;
        if (inputs.containsKey(LOGITS_TO_KEEP)) {
            TensorInfo keep = tensor(model, inputs, LOGITS_TO_KEEP);
            long[] keepShape = keep.getShape();
            if (keep.type != OnnxJavaType.INT64 || keepShape.length > 1
                    || (keepShape.length == 1 && keepShape[0] != 1)) {
                throw layoutError(model, "has a logits_to_keep input of type " + keep.type + " and shape "
                        + java.util.Arrays.toString(keepShape) + "; expected an int64 scalar or [1]");
            }
            keepRank = keepShape.length;
        }
        return new GraphSignature(layers, (int) pastShape[1], (int) pastShape[3], kvType, logits.type, logitsWidth,
                inputs.containsKey(POSITION_IDS), hasMask, hasBias, hasHidden, hiddenSize, keepRank,
                inputs.containsKey(USE_CACHE_BRANCH), takesFeatures);
    }

    /**
     * An input Specula does not feed would fail the first call; name it at load instead.
     */
    private static void refuseUnknownInputs(Path model, Map<String, NodeInfo> inputs, int layers) {
        for (String name : inputs.keySet()) {
            boolean known = switch (name) {
                case INPUT_IDS, ATTENTION_MASK, ATTENTION_BIAS, POSITION_IDS, USE_CACHE_BRANCH, LOGITS_TO_KEEP,
                        FEATURES ->
                    true;
                default -> name.startsWith("past_key_values.") && pastIndex(name) < layers;
            };
            if (!known) {
                throw layoutError(model, "has an input '" + name + "' that Specula does not know how to feed (it"
                        + " feeds input_ids, attention_mask or attention_bias, position_ids, logits_to_keep, use_cache_branch, a"
                        + " feature head's hidden_states and" + " past_key_values.{0.." + (layers - 1)
                        + "}.key/.value)");
            }
        }
    }

    private static int pastIndex(String name) {
        String[] parts = name.split("\\.");
        try {
            return parts.length == 3 && (parts[2].equals("key") || parts[2].equals("value"))
                    ? Integer.parseInt(parts[1]) : Integer.MAX_VALUE;
        }
        catch (NumberFormatException ex) {
            return Integer.MAX_VALUE;
        }
    }

    private static void requireName(Path model, Map<String, NodeInfo> nodes, String name, String kind) {
        if (!nodes.containsKey(name)) {
            throw layoutError(model, "has no '" + name + "' " + kind + " (it has " + nodes.keySet() + ")");
        }
    }

    private static TensorInfo tensor(Path model, Map<String, NodeInfo> nodes, String name) {
        if (!(nodes.get(name).getInfo() instanceof TensorInfo info)) {
            throw layoutError(model, "has a non-tensor '" + name + "'");
        }
        return info;
    }

    private static ModelLoadException layoutError(Path model, String what) {
        return new ModelLoadException(model, "ONNX graph " + model + " " + what
                + ". Specula expects the Optimum text-generation-with-past layout (docs/models.md).");
    }
}
