package dev.specula.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.platform.Fp16Conversions;

/**
 * Checks at load that masked slots in the past change nothing, as rollback by holes
 * needs: two new tokens over a compact 4-token past, and over the same past with two
 * garbage slots in the middle masked out (attention_mask 0), must give the same logits. A
 * graph that takes only lengths from the mask (ONNX Runtime's GroupQueryAttention and its
 * {@code seqlens_k}, for one) attends the garbage and fails. Packed graphs take the whole
 * mask as an additive bias and are exact by construction.
 */
final class HoleProbe {

    private static final int PREFIX = 4;

    private static final int HOLES = 2;

    private static final int NEW = 2;

    private HoleProbe() {
    }

    /**
     * The largest logit difference the holes make (0 for a packed graph).
     * @param vocabSize rows of the embedding; the probe's token ids stay below it
     */
    static double maxLogitChange(OrtEnvironment environment, OrtSession session, GraphSignature signature,
            int vocabSize) throws OrtException {
        if (!signature.hasAttentionMask()) {
            return 0;
        }
        long[] prefix = new long[PREFIX];
        long[] next = new long[NEW];
        for (int i = 0; i < PREFIX; i++) {
            prefix[i] = (7L * i + 3) % vocabSize;
        }
        for (int i = 0; i < NEW; i++) {
            next[i] = (11L * i + 5) % vocabSize;
        }
        List<OnnxTensor> created = new ArrayList<>();
        try {
            return maxLogitChange(environment, session, signature, prefix, next, created);
        }
        finally {
            created.forEach(OnnxTensor::close);
        }
    }

    private static double maxLogitChange(OrtEnvironment environment, OrtSession session, GraphSignature signature,
            long[] prefix, long[] next, List<OnnxTensor> created) throws OrtException {
        // past: [1, kvHeads, PREFIX, headDim] per layer and kind, from a prefill
        ByteBuffer[] past;
        try (OrtSession.Result result = session.run(feeds(environment, signature, prefix, 0, ones(PREFIX),
                emptyPast(environment, signature, created), created))) {
            past = new ByteBuffer[2 * signature.layers()];
            for (int layer = 0; layer < signature.layers(); layer++) {
                past[2 * layer] = copy((OnnxTensor) result.get(GraphSignature.presentKey(layer)).orElseThrow());
                past[2 * layer + 1] = copy((OnnxTensor) result.get(GraphSignature.presentValue(layer)).orElseThrow());
            }
        }
        float[] compact = logits(session.run(feeds(environment, signature, next, PREFIX, ones(PREFIX + NEW),
                pastTensors(environment, signature, past, 0, created), created)));
        long[] mask = ones(PREFIX + HOLES + NEW);
        for (int slot = PREFIX / 2; slot < PREFIX / 2 + HOLES; slot++) {
            mask[slot] = 0;
        }
        float[] holed = logits(session.run(feeds(environment, signature, next, PREFIX, mask,
                pastTensors(environment, signature, past, HOLES, created), created)));
        double change = 0;
        for (int i = 0; i < compact.length; i++) {
            change = Math.max(change, Math.abs(compact[i] - holed[i]));
        }
        return change;
    }

    /** How far logits may move from rounding alone: float32 and float16 caches. */
    static double tolerance(GraphSignature signature) {
        return signature.kvType() == OnnxJavaType.FLOAT16 ? 5e-2 : 1e-3;
    }

    private static Map<String, OnnxTensorLike> feeds(OrtEnvironment environment, GraphSignature signature,
            long[] tokens, int firstPosition, long[] mask, OnnxTensor[] past, List<OnnxTensor> created)
            throws OrtException {
        Map<String, OnnxTensorLike> feeds = new HashMap<>();
        long[] positions = new long[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            positions[i] = firstPosition + i;
        }
        long[] shape = { 1, tokens.length };
        feeds.put(GraphSignature.INPUT_IDS,
                add(created, OnnxTensor.createTensor(environment, LongBuffer.wrap(tokens), shape)));
        feeds.put(GraphSignature.ATTENTION_MASK, add(created,
                OnnxTensor.createTensor(environment, LongBuffer.wrap(mask), new long[] { 1, mask.length })));
        if (signature.hasPositionIds()) {
            feeds.put(GraphSignature.POSITION_IDS,
                    add(created, OnnxTensor.createTensor(environment, LongBuffer.wrap(positions), shape)));
        }
        if (signature.hasLogitsToKeep()) {
            // the last position's row is all the probe compares
            long[] keepShape = signature.logitsToKeepRank() == 0 ? new long[0] : new long[] { 1 };
            feeds.put(GraphSignature.LOGITS_TO_KEEP,
                    add(created, OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[] { 1 }), keepShape)));
        }
        if (signature.hasUseCacheBranch()) {
            feeds.put(GraphSignature.USE_CACHE_BRANCH,
                    add(created, OnnxTensor.createTensor(environment, new boolean[] { true })));
        }
        for (int layer = 0; layer < signature.layers(); layer++) {
            feeds.put(GraphSignature.pastKey(layer), past[2 * layer]);
            feeds.put(GraphSignature.pastValue(layer), past[2 * layer + 1]);
        }
        return feeds;
    }

    private static OnnxTensor[] emptyPast(OrtEnvironment environment, GraphSignature signature,
            List<OnnxTensor> created) throws OrtException {
        OnnxTensor[] past = new OnnxTensor[2 * signature.layers()];
        for (int i = 0; i < past.length; i++) {
            past[i] = add(created, tensor(environment, signature, ByteBuffer.allocateDirect(0), 0));
        }
        return past;
    }

    /**
     * The probe's past with {@code holes} garbage slots inserted after the first half of
     * the prefix: [1, kvHeads, PREFIX + holes, headDim].
     */
    private static OnnxTensor[] pastTensors(OrtEnvironment environment, GraphSignature signature, ByteBuffer[] past,
            int holes, List<OnnxTensor> created) throws OrtException {
        int element = signature.kvType() == OnnxJavaType.FLOAT16 ? 2 : 4;
        int slotBytes = signature.headDim() * element;
        OnnxTensor[] tensors = new OnnxTensor[past.length];
        for (int i = 0; i < past.length; i++) {
            ByteBuffer source = past[i];
            ByteBuffer target = ByteBuffer.allocateDirect((PREFIX + holes) * signature.kvHeads() * slotBytes)
                .order(ByteOrder.nativeOrder());
            for (int head = 0; head < signature.kvHeads(); head++) {
                for (int slot = 0; slot < PREFIX + holes; slot++) {
                    boolean hole = slot >= PREFIX / 2 && slot < PREFIX / 2 + holes;
                    int from = slot < PREFIX / 2 ? slot : slot - holes;
                    for (int b = 0; b < slotBytes; b += element) {
                        if (hole) {
                            // garbage of a plausible magnitude: 3.0
                            if (element == 2) {
                                target.putShort(Fp16Conversions.floatToFp16((float) 3.0));
                            }
                            else {
                                target.putFloat(3.0f);
                            }
                        }
                        else {
                            int at = (head * PREFIX + from) * slotBytes + b;
                            if (element == 2) {
                                target.putShort(source.getShort(at));
                            }
                            else {
                                target.putFloat(source.getFloat(at));
                            }
                        }
                    }
                }
            }
            target.flip();
            tensors[i] = add(created, tensor(environment, signature, target, PREFIX + holes));
        }
        return tensors;
    }

    private static OnnxTensor tensor(OrtEnvironment environment, GraphSignature signature, ByteBuffer data, int slots)
            throws OrtException {
        long[] shape = { 1, signature.kvHeads(), slots, signature.headDim() };
        ByteBuffer ordered = data.order(ByteOrder.nativeOrder());
        if (signature.kvType() == OnnxJavaType.FLOAT16) {
            ShortBuffer halves = ordered.asShortBuffer();
            return OnnxTensor.createTensor(environment, halves, shape, OnnxJavaType.FLOAT16);
        }
        FloatBuffer floats = ordered.asFloatBuffer();
        return OnnxTensor.createTensor(environment, floats, shape);
    }

    private static ByteBuffer copy(OnnxTensor tensor) {
        ByteBuffer bytes = tensor.getByteBuffer().order(ByteOrder.nativeOrder());
        ByteBuffer copy = ByteBuffer.allocateDirect(bytes.remaining()).order(ByteOrder.nativeOrder());
        copy.put(bytes).flip();
        return copy;
    }

    /** The last position's logits: [vocab]; closes the result. */
    private static float[] logits(OrtSession.Result result) {
        try (result) {
            OnnxTensor tensor = (OnnxTensor) result.get(GraphSignature.LOGITS).orElseThrow();
            long[] shape = tensor.getInfo().getShape();
            int positions = (int) shape[1];
            return DecoderModel.rows(tensor, null, 0, positions, positions, 1, (int) shape[2], null);
        }
    }

    private static OnnxTensor add(List<OnnxTensor> created, OnnxTensor tensor) {
        created.add(tensor);
        return tensor;
    }

    private static long[] ones(int length) {
        long[] ones = new long[length];
        Arrays.fill(ones, 1);
        return ones;
    }

}
