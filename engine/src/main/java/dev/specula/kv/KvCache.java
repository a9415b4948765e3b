package dev.specula.kv;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One sequence's key/value cache in one model, with rollback of rejected draft tokens.
 *
 * <p>The tensors are the {@code present.*} outputs of the last run, fed back unchanged as the next
 * {@code past_key_values.*} inputs: no copy per token. Each tensor is {@code [1, kvHeads, physical, headDim]}.
 * Rolling back does not copy either: the rejected slots stay in the tensors as <em>holes</em> that the
 * {@code attention_mask} hides (0), and new tokens get explicit logical {@code position_ids}, so the model
 * computes exactly what it would over a compact cache. When holes pile up past {@link #COMPACTION_THRESHOLD}
 * slots, one copy squeezes them out (attention over many dead slots costs more than that copy).
 *
 * <p>Measured on the embedded pair (docs/benchmarks.md, `bench`, 24 prompts × 128 tokens, fixed γ = 4):
 * holes gave 1.92x plain decoding with 4.2% of the time outside ONNX Runtime; truncating by copy on every
 * rollback ({@code -Dspecula.kv.compaction-threshold=0}) gave 1.78x with 6.1% outside.
 */
public final class KvCache implements SequenceCache {

    /**
     * Holes tolerated before a compaction copy: 64, or the system property
     * {@code specula.kv.compaction-threshold} (0 = copy on every rollback, i.e. truncate; for benchmarks).
     */
    public static final int COMPACTION_THRESHOLD = Integer.getInteger("specula.kv.compaction-threshold", 64);

    private final OrtEnvironment environment;
    private final int layers;
    private final int kvHeads;
    private final int headDim;
    private final OnnxJavaType kvType;

    /** Past tensors, per layer: [1, kvHeads, physicalLength, headDim]; null until the first run. */
    private final OnnxTensor[] keys;
    private final OnnxTensor[] values;
    /** What owns the current tensors (a run's Result, or tensors made by compaction); closed on replacement. */
    private final List<AutoCloseable> owners = new ArrayList<>();

    /** live[slot]: the slot holds a token of the sequence (false = rolled-back hole). */
    private boolean[] live = new boolean[64];
    private int physicalLength;
    private int logicalLength;
    private boolean closed;

    public KvCache(OrtEnvironment environment, int layers, int kvHeads, int headDim, OnnxJavaType kvType) {
        this.environment = environment;
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.kvType = kvType;
        this.keys = new OnnxTensor[layers];
        this.values = new OnnxTensor[layers];
    }

    /** Tokens of the sequence held in the cache. */
    @Override
    public int logicalLength() {
        return logicalLength;
    }

    /** Slots in the tensors, holes included. */
    public int physicalLength() {
        return physicalLength;
    }

    public boolean isEmpty() {
        return physicalLength == 0;
    }

    /** Past key of a layer, or null while the cache is empty. */
    public OnnxTensor key(int layer) {
        return keys[layer];
    }

    /** Past value of a layer, or null while the cache is empty. */
    public OnnxTensor value(int layer) {
        return values[layer];
    }

    /**
     * Writes the attention mask for a run that appends {@code newTokens}: 1 for live slots, 0 for holes,
     * then 1 for each new token, at absolute indices 0 .. physicalLength + newTokens − 1 of {@code mask}.
     */
    public void writeAttentionMask(LongBuffer mask, int newTokens) {
        for (int slot = 0; slot < physicalLength; slot++) {
            mask.put(slot, live[slot] ? 1L : 0L);
        }
        for (int i = 0; i < newTokens; i++) {
            mask.put(physicalLength + i, 1L);
        }
    }

    /** Whether the slot holds a live token (for building attention biases). */
    public boolean isLive(int slot) {
        return live[slot];
    }

    /**
     * Takes the {@code present.*} outputs of a run that appended {@code newTokens} as the new past. The
     * cache owns {@code result} from now on and closes the previous owner (the inputs of that run).
     */
    public void advance(OrtSession.Result result, int newTokens, String[] presentKeys, String[] presentValues) {
        checkOpen();
        OnnxTensor[] newKeys = new OnnxTensor[layers];
        OnnxTensor[] newValues = new OnnxTensor[layers];
        for (int layer = 0; layer < layers; layer++) {
            newKeys[layer] = NativeTensors.output(result, presentKeys[layer]);
            newValues[layer] = NativeTensors.output(result, presentValues[layer]);
        }
        releaseOwners();
        System.arraycopy(newKeys, 0, keys, 0, layers);
        System.arraycopy(newValues, 0, values, 0, layers);
        owners.add(result);
        ensureCapacity(physicalLength + newTokens);
        Arrays.fill(live, physicalLength, physicalLength + newTokens, true);
        physicalLength += newTokens;
        logicalLength += newTokens;
    }

    /** Forgets every token from logical position {@code newLength} on (they become holes). */
    @Override
    public void rollbackTo(int newLength) {
        checkOpen();
        if (newLength < 0 || newLength > logicalLength) {
            throw new IllegalArgumentException("Cannot roll back to " + newLength + " of " + logicalLength + " tokens");
        }
        int slot = physicalLength - 1;
        while (logicalLength > newLength) {
            if (live[slot]) {
                live[slot] = false;
                logicalLength--;
            }
            slot--;
        }
        if (physicalLength - logicalLength > COMPACTION_THRESHOLD) {
            compact();
        }
    }

    /** The shape of the cache's tensors. */
    public KvLayout kvLayout() {
        return KvLayout.of(layers, kvHeads, headDim, kvType);
    }

    /**
     * Makes an empty cache hold {@code length} tokens whose KV are {@code seedKeys}/{@code seedValues}
     * (direct buffers [kvHeads, length, headDim] per layer, wrapped without a copy).
     */
    void seed(ByteBuffer[] seedKeys, ByteBuffer[] seedValues, int length) throws OrtException {
        checkOpen();
        if (physicalLength != 0) {
            throw new IllegalStateException("Only an empty cache can be seeded");
        }
        long[] shape = {1, kvHeads, length, headDim};
        List<AutoCloseable> created = new ArrayList<>();
        try {
            for (int layer = 0; layer < layers; layer++) {
                OnnxTensor key = OnnxTensor.createTensor(environment, seedKeys[layer], shape, kvType);
                created.add(key);
                OnnxTensor value = OnnxTensor.createTensor(environment, seedValues[layer], shape, kvType);
                created.add(value);
                keys[layer] = key;
                values[layer] = value;
            }
        }
        catch (OrtException | RuntimeException ex) {
            NativeTensors.closeAll(created);
            Arrays.fill(keys, null);
            Arrays.fill(values, null);
            throw ex;
        }
        owners.addAll(created);
        ensureCapacity(length);
        Arrays.fill(live, 0, length, true);
        physicalLength = length;
        logicalLength = length;
    }

    /**
     * Copies the KV of logical tokens {@code from .. from + count − 1}, one copy of each layer's key and value:
     * {keys, values}, each per layer a direct buffer [kvHeads, count, headDim].
     */
    public ByteBuffer[][] copyTokens(int from, int count) {
        checkOpen();
        int[] slots = new int[count];
        int logical = 0;
        int found = 0;
        for (int slot = 0; slot < physicalLength && found < count; slot++) {
            if (live[slot]) {
                if (logical >= from) {
                    slots[found++] = slot;
                }
                logical++;
            }
        }
        if (found < count) {
            throw new IllegalArgumentException("The cache holds " + logicalLength + " tokens, fewer than " + (from + count));
        }
        int slotBytes = (int) kvLayout().slotBytes();
        ByteBuffer[][] copies = new ByteBuffer[2][layers];
        for (int layer = 0; layer < layers; layer++) {
            copies[0][layer] = gatherSlots(keys[layer], slots, slotBytes);
            copies[1][layer] = gatherSlots(values[layer], slots, slotBytes);
        }
        return copies;
    }

    /** The given slots of a [1, kvHeads, physical, headDim] tensor, in a direct buffer [kvHeads, slots, headDim]. */
    private ByteBuffer gatherSlots(OnnxTensor source, int[] slots, int slotBytes) {
        ByteBuffer from = NativeTensors.copyLayerForStore(source);
        ByteBuffer to = ByteBuffer.allocateDirect(kvHeads * slots.length * slotBytes).order(ByteOrder.nativeOrder());
        for (int head = 0; head < kvHeads; head++) {
            int headBase = head * physicalLength * slotBytes;
            for (int slot : slots) {
                to.put(from.slice(headBase + slot * slotBytes, slotBytes));
            }
        }
        return to.rewind();
    }

    /** Copies the live slots into fresh tensors, removing every hole. */
    public void compact() {
        checkOpen();
        if (physicalLength == logicalLength) {
            return;
        }
        int elementBytes = kvType == OnnxJavaType.FLOAT16 ? 2 : 4;
        int slotBytes = headDim * elementBytes;
        long[] shape = {1, kvHeads, logicalLength, headDim};
        List<AutoCloseable> compacted = new ArrayList<>();
        try {
            OnnxTensor[] newKeys = new OnnxTensor[layers];
            OnnxTensor[] newValues = new OnnxTensor[layers];
            for (int layer = 0; layer < layers; layer++) {
                newKeys[layer] = squeeze(keys[layer], shape, slotBytes, compacted);
                newValues[layer] = squeeze(values[layer], shape, slotBytes, compacted);
            }
            releaseOwners();
            owners.addAll(compacted);
            System.arraycopy(newKeys, 0, keys, 0, layers);
            System.arraycopy(newValues, 0, values, 0, layers);
        }
        catch (OrtException | RuntimeException ex) {
            compacted.forEach(NativeTensors::closeQuietly);
            throw new IllegalStateException("KV cache compaction failed", ex);
        }
        Arrays.fill(live, 0, physicalLength, false);
        Arrays.fill(live, 0, logicalLength, true);
        physicalLength = logicalLength;
    }

    private OnnxTensor squeeze(OnnxTensor source, long[] shape, int slotBytes, List<AutoCloseable> created)
            throws OrtException {
        ByteBuffer from = source.getByteBuffer().order(ByteOrder.nativeOrder()); // a copy, [kvHeads, physical, headDim]
        ByteBuffer to = ByteBuffer.allocateDirect(kvHeads * logicalLength * slotBytes).order(ByteOrder.nativeOrder());
        for (int head = 0; head < kvHeads; head++) {
            int headBase = head * physicalLength * slotBytes;
            for (int slot = 0; slot < physicalLength; slot++) {
                if (live[slot]) {
                    to.put(from.slice(headBase + slot * slotBytes, slotBytes));
                }
            }
        }
        to.rewind();
        OnnxTensor tensor = OnnxTensor.createTensor(environment, to, shape, kvType);
        created.add(tensor);
        return tensor;
    }

    private void ensureCapacity(int slots) {
        if (slots > live.length) {
            live = Arrays.copyOf(live, Math.max(slots, live.length * 2));
        }
    }

    private void releaseOwners() {
        NativeTensors.closeAll(owners);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("KV cache is closed");
        }
    }

    /** Releases the native memory of the cache. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            releaseOwners();
            Arrays.fill(keys, null);
            Arrays.fill(values, null);
        }
    }
}
