package dev.specula.model;

import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import org.jspecify.annotations.Nullable;

import dev.specula.kv.KvSequence;
import dev.specula.kv.KvStore;

/**
 * One ONNX Runtime call that steps every sequence of a {@link KvStore} given new tokens.
 *
 * <pre>
 * PACKED (EMS-SD, attention_bias):   n sequences, s_i new tokens each, S = Σ s_i, P = pool slots
 *   input_ids      [1, S]            every sequence's tokens back to back, no padding
 *   position_ids   [1, S]            each token's logical position in its own sequence
 *   attention_bias [1, 1, S, P + S]  0 where the key slot holds the query's own sequence (past, or an earlier
 *                                    new token of it), −inf elsewhere
 * PADDED (attention_mask):           R rows (one per sequence), S = max s_i
 *   input_ids      [R, S]            right-padded; a row without input is all pads
 *   position_ids   [R, S]
 *   attention_mask [R, P + S]        past: 1 where the slot holds the row's sequence; new slots: all 1 (a pad
 *                                    query sees itself, so no row is fully masked; real tokens never see the
 *                                    pads after them, which are causal-masked, and pads become holes)
 * past_key_values.*  [R, kvHeads, P, headDim]  the pool's tensors; present.* becomes the next past
 * </pre>
 */
final class BatchStep {

    private static final long PAD_TOKEN = 0;

    private final DecoderModel model;

    private final KvStore pool;

    private final List<StepInput> batch;

    BatchStep(DecoderModel model, KvStore pool, List<StepInput> batch) {
        this.model = model;
        this.pool = pool;
        this.batch = batch;
    }

    List<StepOutput> run() throws OrtException {
        boolean packed = pool.layout() == KvStore.Layout.PACKED;
        int rows = packed ? 1 : pool.rows();
        int physical = pool.physicalLength();
        int width = 0;
        // where each input's tokens go: row and first new slot
        int[] inputRow = new int[batch.size()];
        int[] inputOffset = new int[batch.size()];
        int newSlots = 0;
        for (int i = 0; i < batch.size(); i++) {
            StepInput input = batch.get(i);
            KvSequence sequence = (KvSequence) input.cache();
            if (sequence.store() != pool) {
                throw new IllegalArgumentException("Every input of a batched step must belong to the same KV store");
            }
            if (packed) {
                inputRow[i] = 0;
                inputOffset[i] = newSlots;
                newSlots += input.tokens().length;
            }
            else {
                inputRow[i] = sequence.row();
                inputOffset[i] = 0;
                newSlots = Math.max(newSlots, input.tokens().length);
            }
        }
        @Nullable KvSequence[][] newOwners = new KvSequence[rows][newSlots];
        long[] ids = new long[rows * newSlots];
        long[] positions = new long[rows * newSlots];
        Arrays.fill(ids, PAD_TOKEN);
        for (int i = 0; i < batch.size(); i++) {
            StepInput input = batch.get(i);
            KvSequence sequence = (KvSequence) input.cache();
            int[] tokens = input.tokens();
            for (int j = 0; j < tokens.length; j++) {
                int index = inputRow[i] * newSlots + inputOffset[i] + j;
                ids[index] = tokens[j];
                positions[index] = sequence.logicalLength() + j;
                newOwners[inputRow[i]][inputOffset[i] + j] = sequence;
            }
            if (!packed) {
                for (int j = tokens.length; j < newSlots; j++) {
                    positions[inputRow[i] * newSlots + j] = sequence.logicalLength() + j;
                }
            }
        }
        Map<String, OnnxTensorLike> feeds = new HashMap<>();
        List<OnnxTensor> created = new ArrayList<>();
        try {
            long[] shape = { rows, newSlots };
            created.add(put(feeds, GraphSignature.INPUT_IDS,
                    OnnxTensor.createTensor(model.environment, LongBuffer.wrap(ids), shape)));
            if (model.signature.hasUseCacheBranch()) {
                // a merged decoder: its with-past branch also serves an empty past
                created.add(put(feeds, GraphSignature.USE_CACHE_BRANCH,
                        OnnxTensor.createTensor(model.environment, new boolean[] { true })));
            }
            if (model.signature.hasPositionIds()) {
                created.add(put(feeds, GraphSignature.POSITION_IDS,
                        OnnxTensor.createTensor(model.environment, LongBuffer.wrap(positions), shape)));
            }
            if (packed) {
                created.add(put(feeds, GraphSignature.ATTENTION_BIAS, bias(newOwners[0], physical, newSlots)));
            }
            else {
                created.add(put(feeds, GraphSignature.ATTENTION_MASK, mask(rows, physical, newSlots)));
            }
            OnnxTensor emptyPast = null;
            if (pool.isEmpty()) {
                emptyPast = rows == 1 ? model.emptyPast : emptyPast(rows);
                if (rows != 1) {
                    created.add(emptyPast);
                }
            }
            for (int layer = 0; layer < model.signature.layers(); layer++) {
                feeds.put(model.pastKeys[layer], emptyPast != null ? emptyPast : pool.key(layer));
                feeds.put(model.pastValues[layer], emptyPast != null ? emptyPast : pool.value(layer));
            }
            boolean withHidden = model.signature.hasHiddenState()
                    && batch.stream().anyMatch(StepInput::withHiddenState);
            Set<String> requested = withHidden ? model.outputsWithHidden : model.outputs;
            Map<String, OnnxTensor> pinned = Map.of();
            FloatBuffer pinnedLogits = null;
            if (model.pinLogits) {
                width = model.signature.logitsWidth();
                pinnedLogits = model.scratch.get().logits(rows * newSlots * width);
                OnnxTensor logitsTensor = OnnxTensor.createTensor(model.environment, pinnedLogits,
                        new long[] { rows, newSlots, width });
                created.add(logitsTensor);
                pinned = Map.of(GraphSignature.LOGITS, logitsTensor);
                requested = withHidden ? model.presentsWithHidden : model.presents;
            }
            OrtSession.RunOptions runOptions = batch.get(0).runOptions();
            long start = System.nanoTime();
            OrtSession.Result result = runOptions == null ? model.session.run(feeds, requested, pinned)
                    : model.session.run(feeds, requested, pinned, runOptions);
            long nanos = System.nanoTime() - start;
            try {
                FloatBuffer allLogits = pinnedLogits;
                if (allLogits == null) {
                    OnnxTensor logitsTensor = (OnnxTensor) result.get(GraphSignature.LOGITS).orElseThrow();
                    width = (int) logitsTensor.getInfo().getShape()[2];
                    allLogits = floats(logitsTensor);
                }
                FloatBuffer allHidden = null;
                int hiddenSize = 0;
                if (withHidden) {
                    OnnxTensor hiddenTensor = (OnnxTensor) result.get(GraphSignature.HIDDEN_STATE).orElseThrow();
                    hiddenSize = (int) hiddenTensor.getInfo().getShape()[2];
                    allHidden = floats(hiddenTensor);
                }
                List<StepOutput> outputs = new ArrayList<>(batch.size());
                for (int i = 0; i < batch.size(); i++) {
                    StepInput input = batch.get(i);
                    int outputRows = input.logitsRows();
                    // the last outputRows of this input's positions
                    int first = inputRow[i] * newSlots + inputOffset[i] + input.tokens().length - outputRows;
                    float[] logits = new float[outputRows * width];
                    allLogits.get(first * width, logits);
                    float[] hidden = null;
                    if (withHidden && input.withHiddenState()) {
                        hidden = new float[outputRows * hiddenSize];
                        allHidden.get(first * hiddenSize, hidden);
                    }
                    outputs.add(new StepOutput(logits, outputRows, width, hidden, nanos));
                }
                pool.advance(result, newSlots, newOwners, model.presentKeys, model.presentValues);
                return outputs;
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
     * attention_bias [1, 1, S, P + S]: each new token sees its own sequence's live past
     * and its earlier new tokens.
     */
    private OnnxTensor bias(@Nullable KvSequence[] newOwners, int physical, int newSlots) throws OrtException {
        int columns = physical + newSlots;
        float[] bias = new float[newSlots * columns];
        Arrays.fill(bias, Float.NEGATIVE_INFINITY);
        KvSequence previous = null;
        int rowStart = 0;
        for (int q = 0; q < newSlots; q++) {
            KvSequence sequence = newOwners[q];
            int base = q * columns;
            if (sequence == previous && q > 0) {
                // same sequence as the previous query: its past row is identical, copy it
                System.arraycopy(bias, rowStart, bias, base, physical);
            }
            else {
                for (int slot = 0; slot < physical; slot++) {
                    if (pool.owns(sequence, 0, slot)) {
                        bias[base + slot] = 0f;
                    }
                }
                rowStart = base;
                previous = sequence;
            }
            for (int k = 0; k <= q; k++) {
                if (newOwners[k] == sequence) {
                    bias[base + physical + k] = 0f;
                }
            }
        }
        return OnnxTensor.createTensor(model.environment, FloatBuffer.wrap(bias),
                new long[] { 1, 1, newSlots, columns });
    }

    /** attention_mask [R, P + S]. */
    private OnnxTensor mask(int rows, int physical, int newSlots) throws OrtException {
        int columns = physical + newSlots;
        long[] mask = new long[rows * columns];
        for (int row = 0; row < rows; row++) {
            KvSequence sequence = pool.sequenceInRow(row);
            int base = row * columns;
            if (sequence != null) {
                for (int slot = 0; slot < physical; slot++) {
                    if (pool.owns(sequence, row, slot)) {
                        mask[base + slot] = 1;
                    }
                }
            }
            Arrays.fill(mask, base + physical, base + columns, 1L);
        }
        return OnnxTensor.createTensor(model.environment, LongBuffer.wrap(mask), new long[] { rows, columns });
    }

    private OnnxTensor emptyPast(int rows) throws OrtException {
        long[] shape = { rows, model.signature.kvHeads(), 0, model.signature.headDim() };
        return model.signature.kvType() == OnnxJavaType.FLOAT16
                ? OnnxTensor.createTensor(model.environment, ShortBuffer.allocate(0), shape, OnnxJavaType.FLOAT16)
                : OnnxTensor.createTensor(model.environment, FloatBuffer.allocate(0), shape);
    }

    /** A float32 (or float16) tensor's values as float32. */
    private static FloatBuffer floats(OnnxTensor tensor) {
        if (tensor.getInfo().type == OnnxJavaType.FLOAT16) {
            ShortBuffer halves = tensor.getShortBuffer();
            float[] out = new float[halves.remaining()];
            for (int i = 0; i < out.length; i++) {
                out[i] = ai.onnxruntime.platform.Fp16Conversions.fp16ToFloat(halves.get(i));
            }
            return FloatBuffer.wrap(out);
        }
        return tensor.getFloatBuffer();
    }

    private static OnnxTensor put(Map<String, OnnxTensorLike> feeds, String name, OnnxTensor tensor) {
        feeds.put(name, tensor);
        return tensor;
    }

}
