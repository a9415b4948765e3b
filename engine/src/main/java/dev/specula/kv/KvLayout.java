package dev.specula.kv;

import ai.onnxruntime.OnnxJavaType;

/**
 * The shape of one model's KV: per layer a key and a value
 * {@code [rows, kvHeads, slots, headDim]} of {@code elementBytes}-byte floats (4 =
 * float32, 2 = float16). Byte sizes are {@code long}.
 */
public record KvLayout(int layers, int kvHeads, int headDim, int elementBytes) {

    public KvLayout {
        if (layers < 1 || kvHeads < 1 || headDim < 1) {
            throw new IllegalArgumentException("A KV layout needs layers, kvHeads and headDim ≥ 1 but was " + layers
                    + ", " + kvHeads + ", " + headDim);
        }
        if (elementBytes != 2 && elementBytes != 4) {
            throw new IllegalArgumentException(
                    "KV elements are float16 (2 bytes) or float32 (4 bytes), not " + elementBytes + " bytes");
        }
    }

    /**
     * The layout of a graph's KV of element type {@code type} (FLOAT or FLOAT16).
     * Internal to the engine.
     */
    public static KvLayout of(int layers, int kvHeads, int headDim, OnnxJavaType type) {
        return new KvLayout(layers, kvHeads, headDim, type == OnnxJavaType.FLOAT16 ? 2 : 4);
    }

    /** ONNX element type of the tensors. */
    OnnxJavaType type() {
        return elementBytes == 2 ? OnnxJavaType.FLOAT16 : OnnxJavaType.FLOAT;
    }

    /**
     * Bytes of one token's KV in every layer: layers × 2 (key and value) × kvHeads ×
     * headDim × elementBytes.
     */
    public long bytesPerToken() {
        return 2L * layers * kvHeads * headDim * elementBytes;
    }

    /** Bytes of one token in one head: headDim elements. */
    long slotBytes() {
        return (long) headDim * elementBytes;
    }

    /**
     * Bytes of {@code tokens} tokens in one layer's key (or value), every head: [kvHeads,
     * tokens, headDim].
     */
    long bytes(int tokens) {
        return kvHeads * (long) tokens * slotBytes();
    }
}
