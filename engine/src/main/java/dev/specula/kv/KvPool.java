package dev.specula.kv;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The KV of many sequences in one set of tensors, {@code [rows, kvHeads, physical, headDim]} per layer, so one
 * ONNX Runtime call steps all of them. As in {@link KvCache}, a run's {@code present.*} outputs become the next
 * past without a copy, and rejected or finished tokens stay as holes until a compaction copies the live slots.
 *
 * <ul>
 * <li>{@link Layout#PACKED} (EMS-SD, for graphs exported {@code --packed}): one row; every sequence's new tokens
 *   are concatenated with no padding, each sequence's slots are its own segments of the row, and the additive
 *   attention bias lets a token see only its own sequence's slots and earlier new tokens.</li>
 * <li>{@link Layout#PADDED} (any Optimum export, with {@code attention_mask}): one row per sequence; a step appends
 *   as many slots to every row as the longest input needs, the shorter rows' extra slots being pads (holes).
 *   A sequence joining or leaving reshapes the rows (a copy): the baseline.</li>
 * </ul>
 *
 * Not thread-safe: one scheduler thread owns a pool.
 */
public final class KvPool implements AutoCloseable {

    /** How sequences share the tensors. */
    public enum Layout { PACKED, PADDED }

    /** Hole slots (per row) tolerated before a compaction copy, unless a third of the pool is holes. */
    private static final int COMPACTION_MIN_HOLES = 64;

    private final OrtEnvironment environment;
    private final int layers;
    private final int kvHeads;
    private final int headDim;
    private final OnnxJavaType kvType;
    private final Layout layout;

    private final OnnxTensor[] keys;
    private final OnnxTensor[] values;
    private final List<AutoCloseable> owners = new ArrayList<>();
    /** Sequences by row (PADDED; null = a dead row awaiting compaction), or all members (PACKED). */
    private final List<PooledSequence> members = new ArrayList<>();
    /** owner[row][slot] = id of the sequence whose token the slot holds, or -1 (hole / pad). */
    private int[][] owner = new int[0][];
    private int rows;
    private int physical;
    /** Slots that hold a member's token (the rest are holes), kept as tokens come and go. */
    private long liveSlots;
    private int nextId;
    private boolean closed;

    public KvPool(OrtEnvironment environment, int layers, int kvHeads, int headDim, OnnxJavaType kvType, Layout layout) {
        this.environment = environment;
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.kvType = kvType;
        this.layout = layout;
        this.keys = new OnnxTensor[layers];
        this.values = new OnnxTensor[layers];
        if (layout == Layout.PACKED) {
            rows = 1;
            owner = new int[][] {new int[64]};
        }
    }

    public Layout layout() {
        return layout;
    }

    /** A new, empty sequence in the pool (PADDED: a new row of holes — the tensors are copied). */
    public PooledSequence join() {
        checkOpen();
        if (layout == Layout.PACKED) {
            PooledSequence sequence = new PooledSequence(this, nextId++, 0);
            members.add(sequence);
            return sequence;
        }
        int row = members.indexOf(null);
        if (row < 0) {
            row = rows;
            addRow();
            members.add(null);
        }
        PooledSequence sequence = new PooledSequence(this, nextId++, row);
        members.set(row, sequence);
        return sequence;
    }

    /** Rows of the tensors (1 when packed). */
    public int rows() {
        return rows;
    }

    /** Slots per row, holes included. */
    public int physicalLength() {
        return physical;
    }

    public boolean isEmpty() {
        return physical == 0;
    }

    /** The sequence in a row of a padded pool, or null for a dead row. */
    public PooledSequence sequenceInRow(int row) {
        return layout == Layout.PADDED ? members.get(row) : null;
    }

    /** Whether {@code slot} of {@code row} holds a token of {@code sequence}. */
    public boolean owns(PooledSequence sequence, int row, int slot) {
        return owner[row][slot] == sequence.id;
    }

    /** Past key of a layer, or null while the pool is empty. */
    public OnnxTensor key(int layer) {
        return keys[layer];
    }

    public OnnxTensor value(int layer) {
        return values[layer];
    }

    /**
     * Takes the {@code present.*} outputs of a run that appended {@code newSlots} slots to every row.
     * {@code newOwners[row][j]} is the sequence that owns new slot j of the row, or null for a pad.
     */
    public void advance(OrtSession.Result result, int newSlots, PooledSequence[][] newOwners, String[] presentKeys,
            String[] presentValues) {
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
        ensureCapacity(physical + newSlots);
        for (int row = 0; row < rows; row++) {
            for (int j = 0; j < newSlots; j++) {
                PooledSequence sequence = newOwners[row][j];
                owner[row][physical + j] = sequence == null ? -1 : sequence.id;
                if (sequence != null) {
                    sequence.append(physical + j);
                    liveSlots++;
                }
            }
        }
        physical += newSlots;
    }

    /** Rolls {@code sequence} back to {@code newLength} tokens: its later slots become holes. */
    void release(PooledSequence sequence, int newLength) {
        checkOpen();
        for (int i = newLength; i < sequence.length; i++) {
            owner[sequence.row][sequence.slots[i]] = -1;
        }
        liveSlots -= sequence.length - newLength;
        sequence.length = newLength;
        compactIfWorthIt();
    }

    void leave(PooledSequence sequence) {
        if (closed) {
            return;
        }
        release(sequence, 0);
        if (layout == Layout.PACKED) {
            members.remove(sequence);
        }
        else {
            members.set(sequence.row, null);
        }
        if (members.stream().allMatch(java.util.Objects::isNull)) {
            reset();
        }
    }

    private void compactIfWorthIt() {
        long holes = (long) rows * physical - liveSlots;
        boolean deadRows = layout == Layout.PADDED && members.contains(null);
        if (holes > (long) COMPACTION_MIN_HOLES * rows && (holes * 3 > (long) rows * physical || deadRows)) {
            compact();
        }
    }

    /**
     * Copies the live slots into fresh tensors: holes go, dead rows go, and rows are left-padded with holes
     * to the longest row.
     */
    public void compact() {
        checkOpen();
        if (physical == 0) {
            return;
        }
        List<PooledSequence> kept = new ArrayList<>();
        for (PooledSequence member : members) {
            if (member != null) {
                kept.add(member);
            }
        }
        int newRows = layout == Layout.PACKED ? 1 : kept.size();
        if (newRows == 0) {
            reset();
            return;
        }
        // the new slot of every live token: packed = in order of the row; padded = each row left-padded
        int newPhysical = layout == Layout.PACKED ? kept.stream().mapToInt(member -> member.length).sum()
                : kept.stream().mapToInt(member -> member.length).max().orElse(0);
        int elementBytes = kvType == OnnxJavaType.FLOAT16 ? 2 : 4;
        int slotBytes = headDim * elementBytes;
        // (source row, source slot) → (target row, target slot), in target order
        int[] sourceRow;
        int[] sourceSlot;
        int[][] newOwner = new int[newRows][Math.max(64, newPhysical)];
        for (int[] row : newOwner) {
            Arrays.fill(row, -1);
        }
        int[][] targetOf = new int[kept.size()][];
        int cursor = 0;
        for (int m = 0; m < kept.size(); m++) {
            PooledSequence member = kept.get(m);
            int targetRow = layout == Layout.PACKED ? 0 : m;
            int start = layout == Layout.PACKED ? cursor : newPhysical - member.length;
            targetOf[m] = new int[member.length];
            for (int i = 0; i < member.length; i++) {
                targetOf[m][i] = start + i;
                newOwner[targetRow][start + i] = member.id;
            }
            cursor += member.length;
        }
        long[] shape = {newRows, kvHeads, newPhysical, headDim};
        replaceTensors("compaction", (source, prefix, created) ->
                gather(source, kept, targetOf, newRows, newPhysical, shape, slotBytes, created), null, null);
        for (int m = 0; m < kept.size(); m++) {
            PooledSequence member = kept.get(m);
            member.row = layout == Layout.PACKED ? 0 : m;
            System.arraycopy(targetOf[m], 0, member.slots, 0, member.length);
        }
        members.clear();
        members.addAll(kept);
        owner = newOwner;
        rows = newRows;
        physical = newPhysical;
    }

    private OnnxTensor gather(OnnxTensor source, List<PooledSequence> kept, int[][] targetOf, int newRows, int newPhysical,
            long[] shape, int slotBytes, List<AutoCloseable> created) throws OrtException {
        ByteBuffer from = source.getByteBuffer().order(ByteOrder.nativeOrder()); // a copy: [rows, kvHeads, physical, headDim]
        ByteBuffer to = ByteBuffer.allocateDirect(newRows * kvHeads * newPhysical * slotBytes).order(ByteOrder.nativeOrder());
        for (int m = 0; m < kept.size(); m++) {
            PooledSequence member = kept.get(m);
            int targetRow = layout == Layout.PACKED ? 0 : m;
            for (int head = 0; head < kvHeads; head++) {
                int fromBase = (member.row * kvHeads + head) * physical * slotBytes;
                int toBase = (targetRow * kvHeads + head) * newPhysical * slotBytes;
                for (int i = 0; i < member.length; i++) {
                    to.put(toBase + targetOf[m][i] * slotBytes, from, fromBase + member.slots[i] * slotBytes, slotBytes);
                }
            }
        }
        to.rewind();
        OnnxTensor tensor = OnnxTensor.createTensor(environment, to, shape, kvType);
        created.add(tensor);
        return tensor;
    }

    /** The shape of the pool's tensors. */
    public KvLayout kvLayout() {
        return KvLayout.of(layers, kvHeads, headDim, kvType);
    }

    /**
     * Gives a sequence that holds nothing yet the KV of {@code length} prefix tokens (direct buffers [kvHeads,
     * length, headDim] per layer, from the {@link PrefixCache}): {@code length} slots are appended to every row, the
     * sequence's row (or the packed row) holding the prefix and the others holes. Copies the pool.
     */
    void seed(PooledSequence sequence, ByteBuffer[] prefixKeys, ByteBuffer[] prefixValues, int length) {
        checkOpen();
        if (sequence.length != 0) {
            throw new IllegalStateException("Only a sequence that holds nothing can be seeded");
        }
        int elementBytes = kvType == OnnxJavaType.FLOAT16 ? 2 : 4;
        int slotBytes = headDim * elementBytes;
        int newPhysical = physical + length;
        long[] shape = {rows, kvHeads, newPhysical, headDim};
        replaceTensors("seeding", (source, prefix, created) ->
                appended(source, prefix, sequence.row, length, slotBytes, shape, created), prefixKeys, prefixValues);
        ensureCapacity(newPhysical);
        for (int row = 0; row < rows; row++) {
            Arrays.fill(owner[row], physical, newPhysical, -1);
        }
        for (int i = 0; i < length; i++) {
            owner[sequence.row][physical + i] = sequence.id;
            sequence.append(physical + i);
        }
        liveSlots += length;
        physical = newPhysical;
    }

    private OnnxTensor appended(OnnxTensor source, ByteBuffer seeded, int prefixRow, int length, int slotBytes, long[] shape,
            List<AutoCloseable> created) throws OrtException {
        int newPhysical = (int) shape[2];
        ByteBuffer to = ByteBuffer.allocateDirect(rows * kvHeads * newPhysical * slotBytes).order(ByteOrder.nativeOrder());
        ByteBuffer from = physical == 0 ? null : source.getByteBuffer().order(ByteOrder.nativeOrder());
        for (int row = 0; row < rows; row++) {
            for (int head = 0; head < kvHeads; head++) {
                int toBase = (row * kvHeads + head) * newPhysical * slotBytes;
                if (from != null) {
                    to.put(toBase, from, (row * kvHeads + head) * physical * slotBytes, physical * slotBytes);
                }
                if (row == prefixRow) {
                    to.put(toBase + physical * slotBytes, seeded, head * length * slotBytes, length * slotBytes);
                }
            }
        }
        to.rewind();
        OnnxTensor tensor = OnnxTensor.createTensor(environment, to, shape, kvType);
        created.add(tensor);
        return tensor;
    }

    /**
     * Copies the KV of a member's logical tokens {@code from .. from + count − 1}, one copy of each layer's key
     * and value: {keys, values}, each per layer a direct buffer [kvHeads, count, headDim].
     */
    public ByteBuffer[][] copyTokens(PooledSequence sequence, int from, int count) {
        checkOpen();
        int elementBytes = kvType == OnnxJavaType.FLOAT16 ? 2 : 4;
        int slotBytes = headDim * elementBytes;
        ByteBuffer[][] copies = new ByteBuffer[2][layers];
        for (int layer = 0; layer < layers; layer++) {
            for (int kind = 0; kind < 2; kind++) {
                OnnxTensor source = kind == 0 ? keys[layer] : values[layer];
                ByteBuffer all = NativeTensors.copyLayerForStore(source);
                ByteBuffer to = ByteBuffer.allocateDirect(kvHeads * count * slotBytes).order(ByteOrder.nativeOrder());
                for (int head = 0; head < kvHeads; head++) {
                    int base = (sequence.row * kvHeads + head) * physical * slotBytes;
                    for (int i = 0; i < count; i++) {
                        to.put(all.slice(base + sequence.slots[from + i] * slotBytes, slotBytes));
                    }
                }
                copies[kind][layer] = to.rewind();
            }
        }
        return copies;
    }

    /** Builds one new tensor from a current one (and, when seeding, the prefix's tensor of the same layer). */
    @FunctionalInterface
    private interface TensorCopy {
        OnnxTensor copy(OnnxTensor source, ByteBuffer prefix, List<AutoCloseable> created) throws OrtException;
    }

    /** Replaces every layer's key and value by a copy; on failure the pool is unchanged. */
    private void replaceTensors(String what, TensorCopy copy, ByteBuffer[] prefixKeys, ByteBuffer[] prefixValues) {
        List<AutoCloseable> created = new ArrayList<>();
        try {
            OnnxTensor[] newKeys = new OnnxTensor[layers];
            OnnxTensor[] newValues = new OnnxTensor[layers];
            for (int layer = 0; layer < layers; layer++) {
                newKeys[layer] = copy.copy(keys[layer], prefixKeys == null ? null : prefixKeys[layer], created);
                newValues[layer] = copy.copy(values[layer], prefixValues == null ? null : prefixValues[layer], created);
            }
            releaseOwners();
            owners.addAll(created);
            System.arraycopy(newKeys, 0, keys, 0, layers);
            System.arraycopy(newValues, 0, values, 0, layers);
        }
        catch (OrtException | RuntimeException ex) {
            NativeTensors.closeAll(created);
            throw new IllegalStateException("KV pool " + what + " failed", ex);
        }
    }

    /** PADDED: appends a row of holes (copies the tensors). */
    private void addRow() {
        int newRows = rows + 1;
        int[][] newOwner = Arrays.copyOf(owner, newRows);
        newOwner[rows] = new int[Math.max(64, physical)];
        Arrays.fill(newOwner[rows], -1);
        if (physical > 0) {
            int elementBytes = kvType == OnnxJavaType.FLOAT16 ? 2 : 4;
            int rowBytes = kvHeads * physical * headDim * elementBytes;
            long[] shape = {newRows, kvHeads, physical, headDim};
            replaceTensors("adding a row", (source, prefix, created) -> withExtraRow(source, rowBytes, newRows, shape, created),
                    null, null);
        }
        owner = newOwner;
        rows = newRows;
    }

    private OnnxTensor withExtraRow(OnnxTensor source, int rowBytes, int newRows, long[] shape, List<AutoCloseable> created)
            throws OrtException {
        ByteBuffer from = source.getByteBuffer().order(ByteOrder.nativeOrder());
        ByteBuffer to = ByteBuffer.allocateDirect(newRows * rowBytes).order(ByteOrder.nativeOrder());
        to.put(from);
        to.rewind();
        OnnxTensor tensor = OnnxTensor.createTensor(environment, to, shape, kvType);
        created.add(tensor);
        return tensor;
    }

    /** No member left: drop the tensors. */
    private void reset() {
        releaseOwners();
        Arrays.fill(keys, null);
        Arrays.fill(values, null);
        members.clear();
        physical = 0;
        liveSlots = 0;
        if (layout == Layout.PACKED) {
            owner = new int[][] {new int[64]};
            rows = 1;
        }
        else {
            owner = new int[0][];
            rows = 0;
        }
    }

    private void ensureCapacity(int slots) {
        for (int row = 0; row < rows; row++) {
            if (slots > owner[row].length) {
                owner[row] = Arrays.copyOf(owner[row], Math.max(slots, owner[row].length * 2));
            }
        }
    }

    private void releaseOwners() {
        NativeTensors.closeAll(owners);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("KV pool is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            releaseOwners();
            Arrays.fill(keys, null);
            Arrays.fill(values, null);
            closed = true;
        }
    }
}
