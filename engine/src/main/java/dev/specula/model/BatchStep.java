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

    /**
     * Feeds every input's tokens and returns each input's logits rows. An input longer
     * than its last call ({@link DecoderModel#lastCallTokens}) first has its earlier
     * tokens fed in calls without logits: PACKED, {@code prefillChunkTokens} per call;
     * PADDED, per row with a {@code logits_to_keep} input (such a call computes one row
     * of logits per row), else {@code prefillChunkTokens / rows} per row (it computes
     * [rows, chunk, vocab] logits). The last call feeds every input's rest, so its logits
     * are at most rows × max(γ + 1, 2) rows, whatever the prompts. A failing call rolls
     * every input's sequence back to where the step began.
     */
    List<StepOutput> run() throws OrtException {
        int count = batch.size();
        int[] start = new int[count];
        int[] prefix = new int[count];
        for (int i = 0; i < count; i++) {
            StepInput input = batch.get(i);
            KvSequence sequence = (KvSequence) input.cache();
            model.checkTree(input);
            model.checkFeatures(input);
            if (sequence.store() != pool) {
                throw new IllegalArgumentException("Every input of a batched step must belong to the same KV store");
            }
            start[i] = sequence.logicalLength();
            int tokens = input.tokens().length;
            prefix[i] = tokens - lastCallTokens(tokens, input.logitsRows());
        }
        boolean packed = pool.layout() == KvStore.Layout.PACKED;
        int chunk = model.prefillChunkTokens;
        if (!packed && !model.signature.hasLogitsToKeep()) {
            // every row's chunk computes logits [rows, chunk, vocab]: share the chunk
            chunk = Math.max(1, chunk / pool.rows());
        }
        // a chunk can always start a sequence's feed (BatchStep never leaves one token
        // alone when the model needs more a call)
        chunk = Math.max(chunk, model.callTokens().smallest());
        HiddenRows[] hidden = new HiddenRows[count];
        for (int i = 0; i < count; i++) {
            hidden[i] = HiddenRows.of(batch.get(i), model.signature);
        }
        long nanos = 0;
        try {
            if (packed) {
                // written in place: room for every input before the first call
                int total = 0;
                for (StepInput input : batch) {
                    total = Math.addExact(total, input.tokens().length);
                }
                pool.reserve(total);
            }
            int[] fed = new int[count];
            while (true) {
                // the next chunk of every prefix still to feed (PACKED: one chunk in all)
                int[] from = fed.clone();
                int budget = chunk;
                boolean any = false;
                for (int i = 0; i < count; i++) {
                    int take = model.chunkTake(prefix[i] - fed[i], packed ? budget : chunk);
                    fed[i] += take;
                    budget -= packed ? take : 0;
                    any |= take > 0;
                }
                if (!any) {
                    break;
                }
                nanos += call(from, fed, false, hidden, null);
            }
            int[] ends = new int[count];
            for (int i = 0; i < count; i++) {
                ends[i] = batch.get(i).tokens().length;
            }
            List<StepOutput> outputs = new ArrayList<>(count);
            call(prefix, ends, true, hidden, outputs);
            if (nanos > 0) {
                for (int i = 0; i < count; i++) {
                    outputs.set(i, outputs.get(i).plusNanos(nanos));
                }
            }
            return outputs;
        }
        catch (OrtException | RuntimeException ex) {
            for (int i = 0; i < count; i++) {
                DecoderModel.rollBack((KvSequence) batch.get(i).cache(), start[i], ex);
            }
            throw ex;
        }
    }

    /**
     * The last call's tokens of an input: the model's rule, except that a graph's
     * logits_to_keep cannot pick each sequence's rows out of a batch, so the batch path
     * never relies on it.
     */
    private int lastCallTokens(int tokens, int rows) {
        return tokens <= Math.max(rows, 2) ? tokens : rows;
    }

    /** Whether every input carries a number of tokens the graph's rule allows. */
    private boolean allowedInputs() {
        for (StepInput input : batch) {
            if (!model.callTokens().allows(input.tokens().length)) {
                return false;
            }
        }
        return true;
    }

    /**
     * One ONNX Runtime call feeding {@code tokens[from[i], to[i])} of each input (none
     * when equal).
     * @param hidden each input's hidden state rows, collected from the calls that compute
     * them
     * @param outputs where each input's logits rows go, in input order, when
     * {@code withLogits}
     * @return the call's wall time
     */
    private long call(int[] from, int[] to, boolean withLogits, HiddenRows[] hidden, @Nullable List<StepOutput> outputs)
            throws OrtException {
        boolean packed = pool.layout() == KvStore.Layout.PACKED;
        int rows = packed ? 1 : pool.rows();
        int physical = pool.physicalLength();
        // where each input's tokens go: row and first new slot
        int[] inputRow = new int[batch.size()];
        int[] inputOffset = new int[batch.size()];
        int newSlots = 0;
        for (int i = 0; i < batch.size(); i++) {
            KvSequence sequence = (KvSequence) batch.get(i).cache();
            int length = to[i] - from[i];
            if (packed) {
                inputRow[i] = 0;
                inputOffset[i] = newSlots;
                newSlots = Math.addExact(newSlots, length);
            }
            else {
                inputRow[i] = sequence.row();
                inputOffset[i] = 0;
                newSlots = Math.max(newSlots, length);
            }
        }
        // allowed inputs never make a call the graph's rule forbids (tests assert it)
        assert !allowedInputs() || model.callTokens().allows(newSlots)
                : "a call of " + newSlots + " tokens breaks " + model.callTokens();
        int cells = Sizes.elements("Input ids", 1, rows, newSlots, Long.BYTES);
        @Nullable KvSequence[][] newOwners = new KvSequence[rows][newSlots];
        // the calling thread's direct buffers: ONNX Runtime reads them in place
        DecoderModel.Scratch buffers = model.scratch.get();
        LongBuffer ids = buffers.ids(cells);
        LongBuffer positions = buffers.positions(cells);
        for (int cell = 0; cell < cells; cell++) {
            ids.put(cell, PAD_TOKEN);
            positions.put(cell, 0L);
        }
        for (int i = 0; i < batch.size(); i++) {
            KvSequence sequence = (KvSequence) batch.get(i).cache();
            int[] tokens = batch.get(i).tokens();
            int length = to[i] - from[i];
            for (int j = 0; j < length; j++) {
                int index = inputRow[i] * newSlots + inputOffset[i] + j;
                ids.put(index, tokens[from[i] + j]);
                TreeAttention tree = batch.get(i).tree();
                int logical = sequence.logicalLength() + j;
                positions.put(index, tree == null ? logical : tree.position(logical));
                newOwners[inputRow[i]][inputOffset[i] + j] = sequence;
            }
            if (!packed) {
                for (int j = length; j < newSlots; j++) {
                    positions.put(inputRow[i] * newSlots + j, sequence.logicalLength() + j);
                }
            }
        }
        Map<String, OnnxTensorLike> feeds = new HashMap<>(model.feedsCapacity);
        List<OnnxTensor> created = new ArrayList<>();
        try {
            long[] shape = { rows, newSlots };
            created.add(put(feeds, GraphSignature.INPUT_IDS, OnnxTensor.createTensor(model.environment, ids, shape)));
            if (model.signature.hasUseCacheBranch()) {
                // a merged decoder: its with-past branch also serves an empty past
                feeds.put(GraphSignature.USE_CACHE_BRANCH, model.constants.useCacheBranch());
            }
            if (model.signature.hasPositionIds()) {
                created.add(put(feeds, GraphSignature.POSITION_IDS,
                        OnnxTensor.createTensor(model.environment, positions, shape)));
            }
            if (model.signature.takesFeatures()) {
                created.add(
                        put(feeds, GraphSignature.FEATURES, features(from, to, inputRow, inputOffset, rows, newSlots)));
            }
            if (packed) {
                created.add(put(feeds, GraphSignature.ATTENTION_BIAS,
                        bias(buffers, newOwners[0], inputOffset, physical, newSlots)));
            }
            else {
                created.add(put(feeds, GraphSignature.ATTENTION_MASK, mask(buffers, rows, physical, newSlots)));
            }
            if (model.signature.hasLogitsToKeep()) {
                // every position of the last call (0 keeps all); one row in a chunk
                feeds.put(GraphSignature.LOGITS_TO_KEEP,
                        model.constants.logitsToKeep(withLogits ? newSlots : 1, created));
            }
            OnnxTensor emptyPast = model.emptyPast;
            if (pool.isEmpty() && rows != 1) {
                emptyPast = emptyPast(rows);
                created.add(emptyPast);
            }
            Map<String, OnnxTensor> pinned = new HashMap<>(model.feedsCapacity);
            // past (and, written in place, present) KV: the store's tensors
            pool.bind(newSlots, feeds, pinned, model.pastKeys, model.pastValues, model.presentKeys, model.presentValues,
                    emptyPast);
            boolean withHidden = false;
            for (int i = 0; i < batch.size(); i++) {
                withHidden |= hidden[i].overlaps(from[i], to[i]);
            }
            boolean logitsAllocated = withLogits && !model.pinLogits;
            if (withLogits && model.pinLogits) {
                OnnxTensor logitsTensor = model.scratch.get()
                    .pinLogits(model.environment, model.signature.logitsType(), rows, newSlots,
                            model.signature.logitsWidth());
                created.add(logitsTensor);
                pinned.put(GraphSignature.LOGITS, logitsTensor);
            }
            Set<String> requested = model.requested(logitsAllocated, withHidden, pool.writesInPlace());
            OrtSession.RunOptions runOptions = batch.get(0).runOptions();
            long start = System.nanoTime();
            OrtSession.Result result = runOptions == null ? model.session.run(feeds, requested, pinned)
                    : model.session.run(feeds, requested, pinned, runOptions);
            long nanos = System.nanoTime() - start;
            try {
                if (withHidden) {
                    // [rows, newSlots, hidden]: copied once, each input's rows picked
                    // from it
                    OnnxTensor hiddenTensor = (OnnxTensor) result.get(model.signature.hiddenOutput()).orElseThrow();
                    int hiddenSize = (int) hiddenTensor.getInfo().getShape()[2];
                    FloatBuffer allHidden = hiddenTensor.getFloatBuffer();
                    for (int i = 0; i < batch.size(); i++) {
                        if (hidden[i].overlaps(from[i], to[i])) {
                            hidden[i].collect(allHidden, hiddenSize, inputRow[i] * newSlots + inputOffset[i], from[i],
                                    to[i]);
                        }
                    }
                }
                if (withLogits) {
                    OnnxTensor logitsTensor = logitsAllocated
                            ? (OnnxTensor) result.get(GraphSignature.LOGITS).orElseThrow()
                            : pinned.get(GraphSignature.LOGITS);
                    int width = (int) logitsTensor.getInfo().getShape()[2];
                    // ONNX Runtime's own output (width unknown at load) is copied once
                    float[] allLogits = logitsAllocated ? floats(logitsTensor) : null;
                    for (int i = 0; i < batch.size(); i++) {
                        StepInput input = batch.get(i);
                        int outputRows = input.logitsRows();
                        // the last outputRows of this input's positions
                        int end = inputOffset[i] + to[i] - from[i];
                        float[] logits;
                        if (allLogits == null) {
                            logits = DecoderModel.rows(logitsTensor, buffers.pinnedLogits(), inputRow[i], newSlots, end,
                                    outputRows, width, input.logitsInto());
                        }
                        else {
                            logits = copyRows(allLogits, inputRow[i], newSlots, end, outputRows, width,
                                    input.logitsInto());
                        }
                        outputs
                            .add(new StepOutput(logits, outputRows, width, hidden[i].rows(), hidden[i].count(), nanos));
                    }
                }
                pool.advance(result, newSlots, newOwners, model.presentKeys, model.presentValues);
                return nanos;
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
     * Positions {@code end − rows .. end − 1} of batch row {@code row} of a [b, slots,
     * width] array: into the first rows × width floats of {@code into} when it holds
     * them, else a new array of exactly those.
     */
    private static float[] copyRows(float[] all, int row, int slots, int end, int rows, int width,
            float @Nullable [] into) {
        int length = Sizes.elements("Rows", 1, rows, width, Float.BYTES);
        float[] out = into != null && into.length >= length ? into : new float[length];
        long first = ((long) row * slots + end - rows) * width;
        System.arraycopy(all, Math.toIntExact(first), out, 0, length);
        return out;
    }

    /**
     * hidden_states [rows, newSlots, hidden] of a feature head: each input's feature rows
     * of its tokens {@code [from, to)}, where its tokens go; zeros under pads.
     */
    private OnnxTensor features(int[] from, int[] to, int[] inputRow, int[] inputOffset, int rows, int newSlots)
            throws OrtException {
        int width = 0;
        for (StepInput input : batch) {
            width = Math.max(width, input.features().length / input.tokens().length);
        }
        float[] all = new float[Sizes.elements("Hidden states", rows, newSlots, width, Float.BYTES)];
        for (int i = 0; i < batch.size(); i++) {
            float[] features = batch.get(i).features();
            System.arraycopy(features, from[i] * width, all, (inputRow[i] * newSlots + inputOffset[i]) * width,
                    (to[i] - from[i]) * width);
        }
        return OnnxTensor.createTensor(model.environment, FloatBuffer.wrap(all), new long[] { rows, newSlots, width });
    }

    /**
     * attention_bias [1, 1, S, P + S]: each new token sees its own sequence's live past
     * and its earlier new tokens; a tree node, of its tree, only its ancestors.
     * @param inputOffset where each input's new tokens start among the S
     */
    private OnnxTensor bias(DecoderModel.Scratch buffers, @Nullable KvSequence[] newOwners, int[] inputOffset,
            int physical, int newSlots) throws OrtException {
        int columns = physical + newSlots;
        // one past row per sequence (a run of queries of one sequence shares it), then
        // each query's row: that past row and its sequence's new tokens up to itself
        float[] pastRow = buffers.pastRow(physical);
        float[] queryRow = buffers.queryRow(columns);
        FloatBuffer bias = buffers.bias(Sizes.elements("Attention bias", 1, newSlots, columns, Float.BYTES));
        KvSequence previous = null;
        TreeAttention tree = null;
        int firstColumn = 0;
        for (int q = 0; q < newSlots; q++) {
            KvSequence sequence = newOwners[q];
            if (sequence != previous || q == 0) {
                for (int slot = 0; slot < physical; slot++) {
                    pastRow[slot] = pool.owns(sequence, 0, slot) ? 0f : Float.NEGATIVE_INFINITY;
                }
                previous = sequence;
                int input = inputOf(sequence);
                tree = batch.get(input).tree();
                firstColumn = inputOffset[input];
            }
            System.arraycopy(pastRow, 0, queryRow, 0, physical);
            for (int k = 0; k < newSlots; k++) {
                queryRow[physical + k] = k <= q && newOwners[k] == sequence ? 0f : Float.NEGATIVE_INFINITY;
            }
            if (tree != null) {
                TreeBias.restrict(queryRow, 0, sequence, physical + firstColumn, sequence.logicalLength(),
                        sequence.logicalLength() + q - firstColumn, tree);
            }
            bias.put(q * columns, queryRow, 0, columns);
        }
        return OnnxTensor.createTensor(model.environment, bias, new long[] { 1, 1, newSlots, columns });
    }

    /** The index of {@code sequence}'s input in the batch. */
    private int inputOf(@Nullable KvSequence sequence) {
        for (int i = 0; i < batch.size(); i++) {
            if (batch.get(i).cache() == sequence) {
                return i;
            }
        }
        throw new IllegalStateException("A new slot's sequence has no input in the batch");
    }

    /** attention_mask [R, P + S]. */
    private OnnxTensor mask(DecoderModel.Scratch buffers, int rows, int physical, int newSlots) throws OrtException {
        int columns = physical + newSlots;
        LongBuffer mask = buffers.mask(Sizes.elements("Attention mask", 1, rows, columns, Long.BYTES));
        long[] row = new long[columns];
        for (int r = 0; r < rows; r++) {
            KvSequence sequence = pool.sequenceInRow(r);
            for (int slot = 0; slot < physical; slot++) {
                row[slot] = sequence != null && pool.owns(sequence, r, slot) ? 1L : 0L;
            }
            Arrays.fill(row, physical, columns, 1L);
            mask.put(r * columns, row);
        }
        return OnnxTensor.createTensor(model.environment, mask, new long[] { rows, columns });
    }

    private OnnxTensor emptyPast(int rows) throws OrtException {
        long[] shape = { rows, model.signature.kvHeads(), 0, model.signature.headDim() };
        return model.signature.kvType() == OnnxJavaType.FLOAT16
                ? OnnxTensor.createTensor(model.environment, ShortBuffer.allocate(0), shape, OnnxJavaType.FLOAT16)
                : OnnxTensor.createTensor(model.environment, FloatBuffer.allocate(0), shape);
    }

    /** A float32 (or float16) tensor's values as float32. */
    private static float[] floats(OnnxTensor tensor) {
        if (tensor.getInfo().type == OnnxJavaType.FLOAT16) {
            ShortBuffer halves = tensor.getShortBuffer();
            float[] out = new float[halves.remaining()];
            for (int i = 0; i < out.length; i++) {
                out[i] = ai.onnxruntime.platform.Fp16Conversions.fp16ToFloat(halves.get(i));
            }
            return out;
        }
        FloatBuffer buffer = tensor.getFloatBuffer();
        float[] out = new float[buffer.remaining()];
        buffer.get(out);
        return out;
    }

    private static OnnxTensor put(Map<String, OnnxTensorLike> feeds, String name, OnnxTensor tensor) {
        feeds.put(name, tensor);
        return tensor;
    }

}
