package dev.specula.kv;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import org.jspecify.annotations.Nullable;

/**
 * The KV of one or more sequences in one model: per layer a key and a value
 * {@code [rows, kvHeads, slots, headDim]}, so one ONNX Runtime call steps all of them. A
 * sequence alone is a store of one row ({@link #single}); batched steps share one store
 * ({@link #batch}). Each sequence holds a {@link KvSequence}: the slots of its tokens.
 *
 * <p>
 * A run's {@code present.*} outputs become the next past without a copy. Rolling back
 * does not copy either: rejected (and finished, and padding) slots stay in the tensors as
 * <em>holes</em> that the attention mask or bias hides, and new tokens get explicit
 * logical {@code position_ids}, so the model computes exactly what it would over a
 * compact cache. When holes pile up past the {@link Compaction} thresholds one copy
 * squeezes them out (attention over many dead slots costs more than that copy).
 *
 * <p>
 * <em>Written in place</em> (a one-row store of a graph that {@code DecoderModel} found
 * able to): each layer's key and value are one buffer [1, kvHeads, capacity, headDim]
 * with room beyond the slots in use, bound as both the past and the present of a run, so
 * ONNX Runtime writes the new slots after the ones in use and copies nothing else. The
 * buffer grows by a copy when a call would not fit; rolling back the last slots only
 * moves the end back.
 *
 * <ul>
 * <li>{@link Layout#PACKED} (EMS-SD, for graphs exported {@code --packed}): one row;
 * every sequence's new tokens are concatenated with no padding, each sequence's slots are
 * its own segments of the row, and the additive attention bias lets a token see only its
 * own sequence's slots and earlier new tokens.</li>
 * <li>{@link Layout#PADDED} (any Optimum export, with {@code attention_mask}): one row
 * per sequence; a step appends as many slots to every row as the longest input needs, the
 * shorter rows' extra slots being pads (holes). A sequence joining or leaving reshapes
 * the rows (a copy): the baseline.</li>
 * </ul>
 *
 * Not thread-safe: one thread (a request's, or the scheduler's) owns a store.
 *
 * <p>
 * Internal to the engine: public only because {@code dev.specula.model} steps it and
 * {@code dev.specula.engine} lets sequences join it. Users get stores and sequences from
 * a {@code Decoder} and never call its mutators.
 */
public final class KvStore implements AutoCloseable {

    /** How sequences share the tensors. */
    public enum Layout {

        PACKED, PADDED

    }

    /**
     * When a rollback triggers a compaction copy: more than {@code minHolesPerRow} × rows
     * hole slots, and either more than {@code minHoleShare} of all slots are holes or a
     * row is dead (a padded sequence left).
     *
     * @param minHolesPerRow holes per row tolerated whatever their share (0 with share 0:
     * truncate on every rollback)
     * @param minHoleShare share of the store's slots, in [0, 1), that must be holes too
     * (internal to the engine: public because {@code DecoderModel} chooses one)
     */
    public record Compaction(int minHolesPerRow, double minHoleShare) {

        /**
         * One sequence: copy once more than 64 holes pile up. Measured on the embedded
         * pair (docs/benchmarks.md, 24 prompts × 128 tokens, fixed γ = 4): 1.92x plain
         * decoding, against 1.78x when truncating on every rollback.
         */
        public static final Compaction SEQUENCE = new Compaction(64, 0);

        /**
         * Batched steps: more than 64 holes per row and a third of the store holes (or a
         * dead row).
         */
        public static final Compaction BATCH = new Compaction(64, 1 / 3.0);

        public Compaction {
            if (minHolesPerRow < 0) {
                throw new IllegalArgumentException("Compaction minHolesPerRow must be ≥ 0 but was " + minHolesPerRow);
            }
            if (!(minHoleShare >= 0 && minHoleShare < 1)) {
                throw new IllegalArgumentException("Compaction minHoleShare must be in [0, 1) but was " + minHoleShare);
            }
        }
    }

    /**
     * Slots a buffer written in place has beyond those in use, at least (and the unit its
     * capacity is rounded to).
     */
    public static final int HEADROOM_SLOTS = 64;

    private final OrtEnvironment environment;

    private final KvLayout shape;

    private final Layout layout;

    private final Compaction compaction;

    /**
     * Whether ONNX Runtime writes each call's new slots into this store's own buffers
     * (one row).
     */
    private final boolean inPlace;

    /**
     * Written in place: the direct buffers under {@link #keys} and {@link #values}, per
     * layer [1, kvHeads, capacity, headDim]; null while the store is empty.
     */
    private final @Nullable ByteBuffer[] keyBuffers;

    private final @Nullable ByteBuffer[] valueBuffers;

    /**
     * Written in place: the buffers from {@link KvBuffers} that {@link #keyBuffers} and
     * {@link #valueBuffers} are the first bytes of, given back when the store grows out
     * of them or closes.
     */
    private final @Nullable ByteBuffer[] keyBlocks;

    private final @Nullable ByteBuffer[] valueBlocks;

    /**
     * Slots per row the tensors hold: physical, or more when written in place.
     */
    private int capacity;

    /**
     * Written in place: the most slots room is made for ahead of need, what the members
     * may hold together ({@link #join(int)}), so that the KV budget, which counts what
     * requests may hold, bounds the buffers. A call that needs more (holes awaiting
     * compaction) still gets it, with the usual room.
     */
    private long membersRoom;

    /**
     * Past tensors, per layer: [rows, kvHeads, capacity, headDim]; null while the store
     * is empty.
     */
    private final @Nullable OnnxTensor[] keys;

    private final @Nullable OnnxTensor[] values;

    /**
     * What owns the current tensors (a run's Result, or tensors made by a copy); closed
     * on replacement.
     */
    private final List<AutoCloseable> owners = new ArrayList<>();

    /**
     * Sequences by row (PADDED; null = a dead row awaiting compaction), or all members
     * (PACKED).
     */
    private final List<@Nullable KvSequence> members = new ArrayList<>();

    /**
     * owner[row][slot] = id of the sequence whose token the slot holds, or -1 (hole /
     * pad).
     */
    private int[][] owner = new int[0][];

    private int rows;

    private int physical;

    /**
     * Slots that hold a member's token (the rest are holes), kept as tokens come and go.
     */
    private long liveSlots;

    private int nextId;

    /**
     * A one-row store that copies itself on every rollback ({@link #rewinds()}): its past
     * before the last call, kept from that call until the next rollback, which may go
     * back to it instead of copying; null otherwise.
     */
    private @Nullable Before before;

    private boolean closed;

    KvStore(OrtEnvironment environment, KvLayout shape, Layout layout, Compaction compaction, boolean inPlace) {
        this.environment = Objects.requireNonNull(environment, "environment");
        this.shape = Objects.requireNonNull(shape, "shape");
        this.layout = Objects.requireNonNull(layout, "layout");
        this.compaction = Objects.requireNonNull(compaction, "compaction");
        this.inPlace = inPlace;
        this.keys = new OnnxTensor[shape.layers()];
        this.values = new OnnxTensor[shape.layers()];
        this.keyBuffers = new ByteBuffer[shape.layers()];
        this.valueBuffers = new ByteBuffer[shape.layers()];
        this.keyBlocks = new ByteBuffer[shape.layers()];
        this.valueBlocks = new ByteBuffer[shape.layers()];
        if (layout == Layout.PACKED) {
            rows = 1;
            owner = new int[][] { new int[64] };
        }
    }

    /**
     * A sequence in a store of its own: closing the sequence closes the store. Internal
     * to the engine.
     */
    public static KvSequence single(OrtEnvironment environment, KvLayout shape, Layout layout, Compaction compaction) {
        return single(environment, shape, layout, compaction, false, Integer.MAX_VALUE);
    }

    /**
     * A sequence in a store of its own, written in place when {@code inPlace} (the graph
     * writes its new KV into the past it is given), its buffers never grown ahead of need
     * beyond {@code roomSlots} slots: what it may hold (its request's prompt and new
     * tokens, or its model's context and {@value #HEADROOM_SLOTS} slots for holes).
     * Internal to the engine.
     */
    public static KvSequence single(OrtEnvironment environment, KvLayout shape, Layout layout, Compaction compaction,
            boolean inPlace, int roomSlots) {
        KvStore store = new KvStore(environment, shape, layout, compaction, inPlace);
        KvSequence sequence = store.join(roomSlots);
        sequence.ownsStore = true;
        return sequence;
    }

    /**
     * A store that batched steps share: sequences {@link #join()} it. Internal to the
     * engine.
     */
    public static KvStore batch(OrtEnvironment environment, KvLayout shape, Layout layout, Compaction compaction) {
        return batch(environment, shape, layout, compaction, false);
    }

    /**
     * A store that batched steps share, written in place when {@code inPlace} and the
     * layout is packed (one row; a padded store's rows come and go by copy). Internal to
     * the engine.
     */
    public static KvStore batch(OrtEnvironment environment, KvLayout shape, Layout layout, Compaction compaction,
            boolean inPlace) {
        return new KvStore(environment, shape, layout, compaction, inPlace && layout == Layout.PACKED);
    }

    /**
     * Slots per row the tensors hold: more than {@link #physicalLength()} when written in
     * place, else the same. Internal to the engine.
     */
    public int capacity() {
        return inPlace ? capacity : physical;
    }

    /** Whether ONNX Runtime writes each call's new slots into this store's buffers. */
    public boolean writesInPlace() {
        return inPlace;
    }

    /** How sequences share the tensors. */
    public Layout layout() {
        return layout;
    }

    /** The shape of the tensors. */
    public KvLayout kvLayout() {
        return shape;
    }

    /**
     * A new, empty sequence in the store (PADDED: a new row of holes — the tensors are
     * copied). Internal to the engine (the batch scheduler).
     */
    public KvSequence join() {
        return join(Integer.MAX_VALUE);
    }

    /**
     * A new, empty sequence in the store that will hold at most {@code maxTokens} tokens
     * (its prompt and all it may generate): a store written in place makes room for no
     * more than its members may hold together. Internal to the engine (the batch
     * scheduler).
     */
    public KvSequence join(int maxTokens) {
        checkOpen();
        if (maxTokens < 1) {
            throw new IllegalArgumentException("maxTokens must be >= 1 but was " + maxTokens);
        }
        membersRoom += maxTokens;
        if (layout == Layout.PACKED) {
            KvSequence sequence = new KvSequence(this, nextId++, 0, maxTokens);
            members.add(sequence);
            return sequence;
        }
        int row = members.indexOf(null);
        if (row < 0) {
            row = rows;
            addRow();
            members.add(null);
        }
        KvSequence sequence = new KvSequence(this, nextId++, row, maxTokens);
        members.set(row, sequence);
        return sequence;
    }

    /** Rows of the tensors (1 when packed). Internal to the engine. */
    public int rows() {
        return rows;
    }

    /** Sequences in the store. Internal to the engine. */
    public int memberCount() {
        int count = 0;
        for (KvSequence member : members) {
            count += member == null ? 0 : 1;
        }
        return count;
    }

    /** Slots per row, holes included. Internal to the engine. */
    public int physicalLength() {
        return physical;
    }

    /**
     * Whether the store holds no slot (its tensors are absent). Internal to the engine.
     */
    public boolean isEmpty() {
        return physical == 0;
    }

    /**
     * The sequence in a row of a padded store, or null for a dead row (or a packed
     * store). Internal to the engine.
     */
    public @Nullable KvSequence sequenceInRow(int row) {
        return layout == Layout.PADDED ? members.get(row) : null;
    }

    /**
     * Whether {@code slot} of {@code row} holds a token of {@code sequence}. Internal to
     * the engine.
     */
    public boolean owns(KvSequence sequence, int row, int slot) {
        return owner[row][slot] == sequence.id;
    }

    /** Past key of a layer, or null while the store is empty. Internal to the engine. */
    public @Nullable OnnxTensor key(int layer) {
        return keys[layer];
    }

    /**
     * Past value of a layer, or null while the store is empty. Internal to the engine.
     */
    public @Nullable OnnxTensor value(int layer) {
        return values[layer];
    }

    /**
     * Binds every layer's past for a run that appends {@code newSlots} slots to every
     * row. Written in place: the store's buffers (grown first when the new slots would
     * not fit) as both the past, in {@code feeds}, and the present, in {@code pinned};
     * else the current tensors (or {@code emptyPast} while the store is empty) as the
     * past, the presents being the run's own outputs. Internal to the engine.
     */
    public void bind(int newSlots, Map<String, OnnxTensorLike> feeds, Map<String, OnnxTensor> pinned, String[] pastKeys,
            String[] pastValues, String[] presentKeys, String[] presentValues, OnnxTensor emptyPast) {
        checkOpen();
        if (inPlace) {
            reserve(newSlots);
        }
        for (int layer = 0; layer < shape.layers(); layer++) {
            OnnxTensor key = keys[layer];
            OnnxTensor value = values[layer];
            feeds.put(pastKeys[layer], key == null ? emptyPast : key);
            feeds.put(pastValues[layer], value == null ? emptyPast : value);
            if (inPlace) {
                pinned.put(presentKeys[layer], key);
                pinned.put(presentValues[layer], value);
            }
        }
    }

    /**
     * Written in place: makes room for {@code newSlots} more slots after the ones in use,
     * growing the buffers by a copy when they would not fit (a quarter more than needed,
     * at least {@value #HEADROOM_SLOTS} slots, so a decode grows them now and then, not
     * every step). Nothing otherwise. Internal to the engine: a step reserves a whole
     * prompt at once.
     */
    public void reserve(int newSlots) {
        checkOpen();
        int needed = Math.addExact(physical, newSlots);
        if (!inPlace || (keys[0] != null && needed <= capacity)) {
            return;
        }
        int newCapacity = roundedCapacity(needed);
        ByteBuffer[] newKeys = new ByteBuffer[shape.layers()];
        ByteBuffer[] newValues = new ByteBuffer[shape.layers()];
        for (int layer = 0; layer < shape.layers(); layer++) {
            newKeys[layer] = KvBuffers.shared().take(shape.bytes(newCapacity));
            newValues[layer] = KvBuffers.shared().take(shape.bytes(newCapacity));
            if (keyBuffers[layer] != null) {
                copyHeads(keyBuffers[layer], capacity, newKeys[layer], newCapacity, physical);
                copyHeads(valueBuffers[layer], capacity, newValues[layer], newCapacity, physical);
            }
        }
        install(newKeys, newValues, newCapacity, "growing");
    }

    /**
     * Slots a buffer written in place gets for {@code needed} slots in use: a quarter
     * more, at least {@value #HEADROOM_SLOTS}, rounded up to a multiple of it, but no
     * room beyond what the store's sequences may hold ({@link #membersRoom}), unless
     * holes already need more.
     */
    private int roundedCapacity(int needed) {
        long slots = needed + Math.max((long) HEADROOM_SLOTS, needed / 4L);
        long rounded = Math.min(Integer.MAX_VALUE, (slots + HEADROOM_SLOTS - 1) / HEADROOM_SLOTS * HEADROOM_SLOTS);
        return Math.toIntExact(needed > membersRoom ? rounded : Math.max(needed, Math.min(rounded, membersRoom)));
    }

    /**
     * Copies the first {@code slots} slots of every head from a one-row layer buffer of
     * {@code fromCapacity} slots a head to one of {@code toCapacity}.
     */
    private void copyHeads(ByteBuffer from, int fromCapacity, ByteBuffer to, int toCapacity, int slots) {
        long slotBytes = shape.slotBytes();
        for (int head = 0; head < shape.kvHeads(); head++) {
            to.put(Math.toIntExact(head * toCapacity * slotBytes), from,
                    Math.toIntExact(head * fromCapacity * slotBytes), Math.toIntExact(slots * slotBytes));
        }
    }

    /**
     * Written in place: makes {@code newKeys}/{@code newValues} (one-row layer buffers
     * from {@link KvBuffers} of at least {@code newCapacity} slots a head) the store's
     * tensors, and gives the ones they replace back; on failure the store is unchanged
     * and the new buffers are given back.
     */
    private void install(ByteBuffer[] newKeys, ByteBuffer[] newValues, int newCapacity, String what) {
        long[] newShape = { 1, shape.kvHeads(), newCapacity, shape.headDim() };
        int bytes = Math.toIntExact(shape.bytes(newCapacity));
        List<AutoCloseable> created = new ArrayList<>();
        try {
            OnnxTensor[] keyTensors = new OnnxTensor[shape.layers()];
            OnnxTensor[] valueTensors = new OnnxTensor[shape.layers()];
            ByteBuffer[] keySlices = new ByteBuffer[shape.layers()];
            ByteBuffer[] valueSlices = new ByteBuffer[shape.layers()];
            for (int layer = 0; layer < shape.layers(); layer++) {
                keySlices[layer] = newKeys[layer].slice(0, bytes).order(ByteOrder.nativeOrder());
                valueSlices[layer] = newValues[layer].slice(0, bytes).order(ByteOrder.nativeOrder());
                keyTensors[layer] = tensor(keySlices[layer], newShape);
                created.add(keyTensors[layer]);
                valueTensors[layer] = tensor(valueSlices[layer], newShape);
                created.add(valueTensors[layer]);
            }
            releaseOwners();
            giveBlocksBack();
            owners.addAll(created);
            System.arraycopy(keyTensors, 0, keys, 0, shape.layers());
            System.arraycopy(valueTensors, 0, values, 0, shape.layers());
            System.arraycopy(keySlices, 0, keyBuffers, 0, shape.layers());
            System.arraycopy(valueSlices, 0, valueBuffers, 0, shape.layers());
            System.arraycopy(newKeys, 0, keyBlocks, 0, shape.layers());
            System.arraycopy(newValues, 0, valueBlocks, 0, shape.layers());
            capacity = newCapacity;
        }
        catch (OrtException | RuntimeException ex) {
            NativeTensors.closeAll(created);
            for (int layer = 0; layer < shape.layers(); layer++) {
                KvBuffers.shared().give(newKeys[layer]);
                KvBuffers.shared().give(newValues[layer]);
            }
            throw new IllegalStateException("KV store " + what + " failed", ex);
        }
    }

    /**
     * Written in place: gives the store's buffers back to {@link KvBuffers}, once the
     * tensors over them are closed.
     */
    private void giveBlocksBack() {
        for (int layer = 0; layer < shape.layers(); layer++) {
            if (keyBlocks[layer] != null) {
                KvBuffers.shared().give(keyBlocks[layer]);
                KvBuffers.shared().give(valueBlocks[layer]);
            }
        }
        Arrays.fill(keyBlocks, null);
        Arrays.fill(valueBlocks, null);
    }

    /**
     * Writes the attention mask of {@code sequence}'s row for a run that appends
     * {@code newTokens} to it alone: 1 for its slots, 0 for holes, then 1 for each new
     * token, at indices 0 .. physical + newTokens − 1 of {@code mask}. Internal to the
     * engine.
     */
    public void writeAttentionMask(LongBuffer mask, KvSequence sequence, int newTokens) {
        int[] slots = owner[sequence.row];
        for (int slot = 0; slot < physical; slot++) {
            mask.put(slot, slots[slot] == sequence.id ? 1L : 0L);
        }
        for (int i = 0; i < newTokens; i++) {
            mask.put(physical + i, 1L);
        }
    }

    /**
     * Takes the {@code present.*} outputs of a run that appended {@code newSlots} slots
     * to every row as the new past (no copy; the store owns {@code result} from now on
     * and closes the previous owner; written in place, the run wrote the store's own
     * buffers and {@code result} is closed). {@code newOwners[row][j]} is the sequence
     * that owns new slot j of the row, or null for a pad. Internal to the engine.
     */
    public void advance(OrtSession.Result result, int newSlots, @Nullable KvSequence[][] newOwners,
            String[] presentKeys, String[] presentValues) {
        checkWritten(newSlots);
        dropBefore();
        takePresents(result, presentKeys, presentValues);
        appendSlots(newSlots, newOwners);
    }

    /** Written in place: the slots a run just wrote must lie in the buffers. */
    private void checkWritten(int newSlots) {
        if (inPlace && physical + newSlots > capacity) {
            throw new IllegalStateException("A run wrote " + newSlots + " slots after " + physical
                    + " into KV buffers of " + capacity + " slots: bind() reserves them first");
        }
    }

    /**
     * Takes {@code presentKeys}/{@code presentValues} ([rows, kvHeads, physical +
     * newSlots, headDim] per layer, owned by {@code owner}) as the new past; the rest as
     * {@link #advance(OrtSession.Result, int, KvSequence[][], String[], String[])}. For
     * tests over synthetic tensors.
     */
    void advance(AutoCloseable owner, OnnxTensor[] presentKeys, OnnxTensor[] presentValues, int newSlots,
            @Nullable KvSequence[][] newOwners) {
        checkOpen();
        releaseOwners();
        System.arraycopy(presentKeys, 0, keys, 0, shape.layers());
        System.arraycopy(presentValues, 0, values, 0, shape.layers());
        owners.add(owner);
        appendSlots(newSlots, newOwners);
    }

    private void appendSlots(int newSlots, @Nullable KvSequence[][] newOwners) {
        ensureCapacity(physical + newSlots);
        for (int row = 0; row < rows; row++) {
            for (int j = 0; j < newSlots; j++) {
                KvSequence sequence = newOwners[row][j];
                owner[row][physical + j] = sequence == null ? -1 : sequence.id;
                if (sequence != null) {
                    sequence.append(physical + j);
                    liveSlots++;
                }
            }
        }
        physical += newSlots;
    }

    /**
     * {@link #advance(OrtSession.Result, int, KvSequence[][], String[], String[])} of a
     * one-row store's only sequence. Internal to the engine.
     */
    public void advance(OrtSession.Result result, KvSequence sequence, int newTokens, String[] presentKeys,
            String[] presentValues) {
        if (rows != 1 || sequence.row != 0) {
            throw new IllegalStateException("Only a one-row store advances one sequence alone");
        }
        checkWritten(newTokens);
        keepBefore();
        takePresents(result, presentKeys, presentValues);
        ensureCapacity(physical + newTokens);
        for (int j = 0; j < newTokens; j++) {
            owner[0][physical + j] = sequence.id;
            sequence.append(physical + j);
        }
        liveSlots += newTokens;
        physical += newTokens;
    }

    private void takePresents(OrtSession.Result result, String[] presentKeys, String[] presentValues) {
        checkOpen();
        if (inPlace) {
            // the presents were the store's own buffers: nothing to take
            result.close();
            return;
        }
        OnnxTensor[] newKeys = new OnnxTensor[shape.layers()];
        OnnxTensor[] newValues = new OnnxTensor[shape.layers()];
        for (int layer = 0; layer < shape.layers(); layer++) {
            newKeys[layer] = NativeTensors.output(result, presentKeys[layer]);
            newValues[layer] = NativeTensors.output(result, presentValues[layer]);
        }
        releaseOwners();
        System.arraycopy(newKeys, 0, keys, 0, shape.layers());
        System.arraycopy(newValues, 0, values, 0, shape.layers());
        owners.add(result);
    }

    /**
     * Rolls {@code sequence} back to {@code newLength} tokens: its later slots become
     * holes.
     */
    void release(KvSequence sequence, int newLength) {
        checkOpen();
        dropBefore();
        for (int i = newLength; i < sequence.length; i++) {
            owner[sequence.row][sequence.slots[i]] = -1;
        }
        liveSlots -= sequence.length - newLength;
        sequence.length = newLength;
        trimTrailingHoles();
        compactIfWorthIt();
    }

    /**
     * {@link #release} of {@code sequence} to {@code newLength} tokens, or, in a store
     * that would copy itself to do it ({@link #rewinds()}), back to its past before the
     * last call when that keeps the sequence's first {@code newLength - maxRefeed} tokens
     * or more: no copy; the sequence then holds fewer than {@code newLength} tokens, and
     * its caller feeds the others again. The tokens the sequence holds afterwards.
     */
    int releaseOrRewind(KvSequence sequence, int newLength, int maxRefeed) {
        checkOpen();
        Before last = before;
        before = null;
        // a past is kept only in a one-row store, and a new row drops it; the sequence
        // must hold every slot, all live
        if (last != null && newLength < sequence.length && newLength >= last.physical()
                && newLength - last.physical() <= maxRefeed && liveSlots == physical && sequence.length == physical) {
            releaseOwners();
            System.arraycopy(last.keys(), 0, keys, 0, shape.layers());
            System.arraycopy(last.values(), 0, values, 0, shape.layers());
            owners.addAll(last.owners());
            Arrays.fill(owner[0], last.physical(), physical, -1);
            physical = last.physical();
            liveSlots = physical;
            sequence.length = physical;
            return physical;
        }
        if (last != null) {
            NativeTensors.closeAll(last.owners());
        }
        release(sequence, newLength);
        return sequence.length;
    }

    /**
     * Whether a rollback copies this store whole: it is not written in place (no end to
     * move back), and it keeps no holes (a graph whose sums a masked slot changes,
     * {@link Compaction#minHolesPerRow()} 0). A one-row store of that kind keeps its past
     * before each call until the next rollback ({@link #releaseOrRewind}).
     */
    private boolean rewinds() {
        return !inPlace && compaction.minHolesPerRow() == 0 && rows == 1;
    }

    /**
     * Before a one-row store takes a call's presents: keeps the current past (compact,
     * one sequence) when the store {@link #rewinds()}, instead of closing it.
     */
    private void keepBefore() {
        dropBefore();
        if (rewinds() && physical > 0 && liveSlots == physical) {
            before = new Before(keys.clone(), values.clone(), new ArrayList<>(owners), physical);
            owners.clear();
        }
    }

    private void dropBefore() {
        if (before != null) {
            NativeTensors.closeAll(before.owners());
            before = null;
        }
    }

    /**
     * A one-row store's past before its last call: per layer [1, kvHeads, physical,
     * headDim], owned by {@code owners}.
     */
    private record Before(OnnxTensor[] keys, OnnxTensor[] values, List<AutoCloseable> owners, int physical) {
    }

    /**
     * Written in place: holes at the end of the row are no longer in use, and the next
     * run writes over them (a rollback of the last tokens copies nothing).
     */
    private void trimTrailingHoles() {
        if (inPlace) {
            while (physical > 0 && owner[0][physical - 1] < 0) {
                physical--;
            }
        }
    }

    /**
     * Keeps {@code sequence}'s tokens {@code kept} (ascending, from {@code from} on) as
     * its logical tokens {@code from, from + 1, ...}; its other slots from {@code from}
     * on become holes.
     */
    void retain(KvSequence sequence, int from, int[] kept) {
        checkOpen();
        dropBefore();
        int[] keptSlots = new int[kept.length];
        for (int i = 0; i < kept.length; i++) {
            keptSlots[i] = sequence.slots[kept[i]];
        }
        for (int i = from; i < sequence.length; i++) {
            owner[sequence.row][sequence.slots[i]] = -1;
        }
        for (int i = 0; i < kept.length; i++) {
            sequence.slots[from + i] = keptSlots[i];
            owner[sequence.row][keptSlots[i]] = sequence.id;
        }
        liveSlots -= sequence.length - from - kept.length;
        sequence.length = from + kept.length;
        trimTrailingHoles();
        compactIfWorthIt();
    }

    void leave(KvSequence sequence) {
        if (closed) {
            return;
        }
        release(sequence, 0);
        membersRoom -= sequence.maxTokens;
        if (layout == Layout.PACKED) {
            members.remove(sequence);
        }
        else {
            members.set(sequence.row, null);
        }
        if (members.stream().allMatch(Objects::isNull)) {
            reset();
        }
    }

    private void compactIfWorthIt() {
        long holes = (long) rows * physical - liveSlots;
        boolean deadRows = layout == Layout.PADDED && members.contains(null);
        if (holes > (long) compaction.minHolesPerRow() * rows
                && (holes > compaction.minHoleShare() * rows * physical || deadRows)) {
            compact();
        }
    }

    /**
     * Copies the live slots into fresh tensors: holes go, dead rows go, and rows are
     * left-padded with holes to the longest row.
     */
    void compact() {
        checkOpen();
        dropBefore();
        if (physical == 0 || liveSlots == (long) rows * physical) {
            return;
        }
        NativeTensors.STORE_COMPACTIONS.incrementAndGet();
        List<KvSequence> kept = new ArrayList<>();
        for (KvSequence member : members) {
            if (member != null) {
                kept.add(member);
            }
        }
        int newRows = layout == Layout.PACKED ? 1 : kept.size();
        if (newRows == 0) {
            reset();
            return;
        }
        // the new slot of every live token: packed = in order of the row; padded = each
        // row left-padded
        int newPhysical = layout == Layout.PACKED ? kept.stream().mapToInt((member) -> member.length).sum()
                : kept.stream().mapToInt((member) -> member.length).max().orElse(0);
        int[][] newOwner = new int[newRows][Math.max(64, newPhysical)];
        for (int[] row : newOwner) {
            Arrays.fill(row, -1);
        }
        int[] targetRow = new int[kept.size()];
        int[][] targetOf = new int[kept.size()][];
        int cursor = 0;
        for (int m = 0; m < kept.size(); m++) {
            KvSequence member = kept.get(m);
            targetRow[m] = layout == Layout.PACKED ? 0 : m;
            int start = layout == Layout.PACKED ? cursor : newPhysical - member.length;
            targetOf[m] = new int[member.length];
            for (int i = 0; i < member.length; i++) {
                targetOf[m][i] = start + i;
                newOwner[targetRow[m]][start + i] = member.id;
            }
            cursor += member.length;
        }
        if (inPlace) {
            // one row: the live slots into new buffers with room to grow
            int newCapacity = roundedCapacity(newPhysical);
            ByteBuffer[][] copies = new ByteBuffer[2][shape.layers()];
            for (int layer = 0; layer < shape.layers(); layer++) {
                for (int kind = 0; kind < 2; kind++) {
                    ByteBuffer from = kind == 0 ? keyBuffers[layer] : valueBuffers[layer];
                    ByteBuffer to = KvBuffers.shared().take(shape.bytes(newCapacity));
                    for (int m = 0; m < kept.size(); m++) {
                        KvSequence member = kept.get(m);
                        if (member.length > 0) {
                            gather(from, capacity, 0, member.slots, 0, member.length, to, 0, newCapacity,
                                    targetOf[m][0]);
                        }
                    }
                    copies[kind][layer] = to;
                }
            }
            install(copies[0], copies[1], newCapacity, "compaction");
        }
        else {
            long[] newShape = { newRows, shape.kvHeads(), newPhysical, shape.headDim() };
            replaceTensors("compaction", (source, prefix) -> {
                // a copy: [rows, kvHeads, physical, headDim]
                ByteBuffer from = source.getByteBuffer().order(ByteOrder.nativeOrder());
                ByteBuffer to = allocate(newRows * shape.bytes(newPhysical));
                for (int m = 0; m < kept.size(); m++) {
                    KvSequence member = kept.get(m);
                    if (member.length > 0) {
                        gather(from, physical, member.row, member.slots, 0, member.length, to, targetRow[m],
                                newPhysical, targetOf[m][0]);
                    }
                }
                return tensor(to, newShape);
            }, null, null);
        }
        for (int m = 0; m < kept.size(); m++) {
            KvSequence member = kept.get(m);
            member.row = targetRow[m];
            System.arraycopy(targetOf[m], 0, member.slots, 0, member.length);
        }
        members.clear();
        members.addAll(kept);
        owner = newOwner;
        rows = newRows;
        physical = newPhysical;
        liveSlots = cursor;
    }

    /**
     * Copies tokens {@code first .. first + count − 1} of a sequence (physical slots
     * {@code slots[...]} of {@code row} in {@code from}, a [rows, kvHeads, fromSlots,
     * headDim] layer) into consecutive slots of {@code toRow} from {@code toSlot} on in
     * {@code to}, a [*, kvHeads, toPhysical, headDim] layer.
     */
    private void gather(ByteBuffer from, int fromSlots, int row, int[] slots, int first, int count, ByteBuffer to,
            int toRow, int toPhysical, int toSlot) {
        long slotBytes = shape.slotBytes();
        int run = (int) slotBytes;
        for (int head = 0; head < shape.kvHeads(); head++) {
            long fromBase = ((long) row * shape.kvHeads() + head) * fromSlots * slotBytes;
            long toBase = (((long) toRow * shape.kvHeads() + head) * toPhysical + toSlot) * slotBytes;
            int i = 0;
            while (i < count) {
                // copy runs of consecutive slots in one put
                int length = 1;
                while (i + length < count && slots[first + i + length] == slots[first + i] + length) {
                    length++;
                }
                to.put(Math.toIntExact(toBase + i * slotBytes), from,
                        Math.toIntExact(fromBase + slots[first + i] * slotBytes), run * length);
                i += length;
            }
        }
    }

    /**
     * Gives a sequence that holds nothing yet the KV of {@code length} prefix tokens
     * (direct buffers [kvHeads, length, headDim] per layer, from the
     * {@link PrefixCache}). An empty one-row store wraps the buffers as its tensors (no
     * copy); otherwise {@code length} slots are appended to every row, the sequence's row
     * holding the prefix and the others holes (a copy of the store).
     */
    void seed(KvSequence sequence, ByteBuffer[] prefixKeys, ByteBuffer[] prefixValues, int length) {
        checkOpen();
        dropBefore();
        if (sequence.length != 0) {
            throw new IllegalStateException("Only a sequence that holds nothing can be seeded");
        }
        int newPhysical = physical + length;
        long[] newShape = { rows, shape.kvHeads(), newPhysical, shape.headDim() };
        if (inPlace) {
            // one row: the prefix goes after the slots in use
            reserve(length);
            long slotBytes = shape.slotBytes();
            for (int layer = 0; layer < shape.layers(); layer++) {
                for (int head = 0; head < shape.kvHeads(); head++) {
                    int to = Math.toIntExact(((long) head * capacity + physical) * slotBytes);
                    int from = Math.toIntExact(head * length * slotBytes);
                    int bytes = Math.toIntExact(length * slotBytes);
                    keyBuffers[layer].put(to, prefixKeys[layer], from, bytes);
                    valueBuffers[layer].put(to, prefixValues[layer], from, bytes);
                }
            }
        }
        else if (physical == 0 && rows == 1) {
            replaceTensors("seeding", (source, prefix) -> tensor(prefix, newShape), prefixKeys, prefixValues);
        }
        else {
            long slotBytes = shape.slotBytes();
            replaceTensors("seeding", (source, prefix) -> {
                ByteBuffer to = allocate(rows * shape.bytes(newPhysical));
                ByteBuffer from = physical == 0 ? null : source.getByteBuffer().order(ByteOrder.nativeOrder());
                for (int row = 0; row < rows; row++) {
                    for (int head = 0; head < shape.kvHeads(); head++) {
                        long toBase = ((long) row * shape.kvHeads() + head) * newPhysical * slotBytes;
                        if (from != null) {
                            to.put(Math.toIntExact(toBase), from,
                                    Math.toIntExact(((long) row * shape.kvHeads() + head) * physical * slotBytes),
                                    Math.toIntExact(physical * slotBytes));
                        }
                        if (row == sequence.row) {
                            to.put(Math.toIntExact(toBase + physical * slotBytes), prefix,
                                    Math.toIntExact(head * length * slotBytes), Math.toIntExact(length * slotBytes));
                        }
                    }
                }
                return tensor(to, newShape);
            }, prefixKeys, prefixValues);
        }
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

    /**
     * Copies the KV of a member's logical tokens {@code from .. from + count − 1}, one
     * copy of each layer's key and value out of ONNX Runtime: {keys, values}, each per
     * layer a direct buffer [kvHeads, count, headDim].
     */
    ByteBuffer[][] copyTokens(KvSequence sequence, int from, int count) {
        checkOpen();
        if (from < 0 || count < 0 || from + count > sequence.length) {
            throw new IllegalArgumentException(
                    "The sequence holds " + sequence.length + " tokens, fewer than " + (from + count));
        }
        NativeTensors.STORE_TOKENS_COPIED.addAndGet(count);
        ByteBuffer[][] copies = new ByteBuffer[2][shape.layers()];
        for (int layer = 0; layer < shape.layers(); layer++) {
            for (int kind = 0; kind < 2; kind++) {
                // written in place, the store's own buffer; else a copy out of ONNX
                // Runtime
                ByteBuffer all = inPlace ? (kind == 0 ? keyBuffers[layer] : valueBuffers[layer])
                        : NativeTensors.copyLayerForStore(kind == 0 ? keys[layer] : values[layer]);
                ByteBuffer to = allocate(shape.bytes(count));
                gather(all, inPlace ? capacity : physical, sequence.row, sequence.slots, from, count, to, 0, count, 0);
                copies[kind][layer] = to;
            }
        }
        return copies;
    }

    /**
     * Builds one new tensor from a current one (and, when seeding, the prefix's buffer of
     * the same layer).
     */
    @FunctionalInterface
    private interface TensorCopy {

        OnnxTensor copy(@Nullable OnnxTensor source, @Nullable ByteBuffer prefix) throws OrtException;

    }

    /**
     * Replaces every layer's key and value by a copy; on failure the store is unchanged.
     */
    private void replaceTensors(String what, TensorCopy copy, ByteBuffer @Nullable [] prefixKeys,
            ByteBuffer @Nullable [] prefixValues) {
        List<AutoCloseable> created = new ArrayList<>();
        try {
            OnnxTensor[] newKeys = new OnnxTensor[shape.layers()];
            OnnxTensor[] newValues = new OnnxTensor[shape.layers()];
            for (int layer = 0; layer < shape.layers(); layer++) {
                newKeys[layer] = copy.copy(keys[layer], prefixKeys == null ? null : prefixKeys[layer]);
                created.add(newKeys[layer]);
                newValues[layer] = copy.copy(values[layer], prefixValues == null ? null : prefixValues[layer]);
                created.add(newValues[layer]);
            }
            releaseOwners();
            owners.addAll(created);
            System.arraycopy(newKeys, 0, keys, 0, shape.layers());
            System.arraycopy(newValues, 0, values, 0, shape.layers());
        }
        catch (OrtException | RuntimeException ex) {
            NativeTensors.closeAll(created);
            throw new IllegalStateException("KV store " + what + " failed", ex);
        }
    }

    /** PADDED: appends a row of holes (copies the tensors). */
    private void addRow() {
        dropBefore();
        if (inPlace && rows > 0) {
            throw new IllegalStateException("A KV store written in place has one row");
        }
        int newRows = rows + 1;
        int[][] newOwner = Arrays.copyOf(owner, newRows);
        newOwner[rows] = new int[Math.max(64, physical)];
        Arrays.fill(newOwner[rows], -1);
        if (physical > 0) {
            long[] newShape = { newRows, shape.kvHeads(), physical, shape.headDim() };
            replaceTensors("adding a row", (source, prefix) -> {
                ByteBuffer to = allocate(newRows * shape.bytes(physical));
                to.put(source.getByteBuffer().order(ByteOrder.nativeOrder()));
                return tensor(to.rewind(), newShape);
            }, null, null);
        }
        owner = newOwner;
        rows = newRows;
    }

    private static ByteBuffer allocate(long bytes) {
        return ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.nativeOrder());
    }

    /** A tensor over a direct buffer (no copy). */
    private OnnxTensor tensor(ByteBuffer buffer, long[] tensorShape) throws OrtException {
        return OnnxTensor.createTensor(environment, buffer.rewind(), tensorShape, shape.type());
    }

    /** No member left: drop the tensors. */
    private void reset() {
        dropBefore();
        releaseOwners();
        giveBlocksBack();
        Arrays.fill(keys, null);
        Arrays.fill(values, null);
        Arrays.fill(keyBuffers, null);
        Arrays.fill(valueBuffers, null);
        capacity = 0;
        members.clear();
        physical = 0;
        liveSlots = 0;
        if (layout == Layout.PACKED) {
            owner = new int[][] { new int[64] };
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
            throw new IllegalStateException("KV store is closed");
        }
    }

    /** Releases the native memory of the store. */
    @Override
    public void close() {
        if (!closed) {
            dropBefore();
            releaseOwners();
            giveBlocksBack();
            Arrays.fill(keys, null);
            Arrays.fill(values, null);
            Arrays.fill(keyBuffers, null);
            Arrays.fill(valueBuffers, null);
            closed = true;
        }
    }

}
