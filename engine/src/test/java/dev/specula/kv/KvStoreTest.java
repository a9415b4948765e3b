package dev.specula.kv;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The store on small synthetic tensors (2 layers, 2 kv heads, head dim 4, float32): every
 * logical token of every sequence keeps its bytes through steps, rollbacks (holes),
 * seeding, compaction and sequences leaving, in both layouts. A "step" here builds the
 * {@code present.*} tensors ONNX Runtime would return: the past plus new slots.
 */
class KvStoreTest {

    private static final KvLayout SHAPE = new KvLayout(2, 2, 4, 4);

    private static final KvStore.Compaction NEVER = new KvStore.Compaction(1_000_000, 0.99);

    private static final OrtEnvironment ENVIRONMENT = OrtEnvironment.getEnvironment();

    /**
     * What each sequence should hold: the id of the write that produced each logical
     * token.
     */
    private final Map<KvSequence, List<Integer>> expected = new HashMap<>();

    private int nextWrite = 1;

    /**
     * Element e of head h of layer l's key (kind 0) or value (kind 1) of the token
     * written by write {@code id}.
     */
    private static float value(int id, int layer, int kind, int head, int element) {
        return id * 100 + layer * 20 + kind * 10 + head * 4 + element;
    }

    /**
     * One step: {@code counts[i]} new tokens for {@code sequences[i]}; PACKED
     * concatenates them, PADDED gives every row the longest count (the shorter rows'
     * extra slots are pads).
     */
    private void step(KvStore store, KvSequence[] sequences, int[] counts) throws Exception {
        boolean packed = store.layout() == KvStore.Layout.PACKED;
        int rows = store.rows();
        int newSlots = 0;
        for (int count : counts) {
            newSlots = packed ? newSlots + count : Math.max(newSlots, count);
        }
        KvSequence[][] owners = new KvSequence[rows][newSlots];
        int[][] ids = new int[rows][newSlots];
        int cursor = 0;
        for (int i = 0; i < sequences.length; i++) {
            int row = sequences[i].row();
            for (int j = 0; j < counts[i]; j++) {
                int slot = packed ? cursor + j : j;
                owners[row][slot] = sequences[i];
                ids[row][slot] = nextWrite;
                expected.computeIfAbsent(sequences[i], (key) -> new ArrayList<>()).add(nextWrite++);
            }
            cursor += counts[i];
        }
        int physical = store.physicalLength();
        int total = physical + newSlots;
        OnnxTensor[] keys = new OnnxTensor[SHAPE.layers()];
        OnnxTensor[] values = new OnnxTensor[SHAPE.layers()];
        List<AutoCloseable> created = new ArrayList<>();
        for (int layer = 0; layer < SHAPE.layers(); layer++) {
            for (int kind = 0; kind < 2; kind++) {
                FloatBuffer past = store.isEmpty() ? null
                        : (kind == 0 ? store.key(layer) : store.value(layer)).getFloatBuffer();
                ByteBuffer bytes = ByteBuffer.allocateDirect(rows * SHAPE.kvHeads() * total * SHAPE.headDim() * 4)
                    .order(ByteOrder.nativeOrder());
                FloatBuffer present = bytes.asFloatBuffer();
                int dim = SHAPE.headDim();
                // present [rows, kvHeads, total, headDim]: the past slots, then the new
                // tokens (-1: a pad)
                for (int i = 0; i < rows * SHAPE.kvHeads() * total * dim; i++) {
                    int e = i % dim;
                    int slot = (i / dim) % total;
                    int rowHead = i / (dim * total);
                    int head = rowHead % SHAPE.kvHeads();
                    int id = (slot < physical) ? 0 : ids[rowHead / SHAPE.kvHeads()][slot - physical];
                    float v;
                    if (slot < physical) {
                        v = past.get((rowHead * physical + slot) * dim + e);
                    }
                    else {
                        v = (id == 0) ? -1 : value(id, layer, kind, head, e);
                    }
                    present.put(i, v);
                }
                OnnxTensor tensor = OnnxTensor.createTensor(ENVIRONMENT, bytes,
                        new long[] { rows, SHAPE.kvHeads(), total, SHAPE.headDim() }, SHAPE.type());
                created.add(tensor);
                (kind == 0 ? keys : values)[layer] = tensor;
            }
        }
        store.advance(() -> NativeTensors.closeAll(created), keys, values, newSlots, owners);
    }

    private void rollback(KvSequence sequence, int length) {
        sequence.rollbackTo(length);
        List<Integer> ids = expected.get(sequence);
        ids.subList(length, ids.size()).clear();
    }

    /** Seeds an empty sequence with {@code length} new tokens of known bytes. */
    private void seed(KvSequence sequence, int length) {
        ByteBuffer[] keys = new ByteBuffer[SHAPE.layers()];
        ByteBuffer[] values = new ByteBuffer[SHAPE.layers()];
        List<Integer> ids = new ArrayList<>();
        for (int t = 0; t < length; t++) {
            ids.add(nextWrite++);
        }
        for (int layer = 0; layer < SHAPE.layers(); layer++) {
            for (int kind = 0; kind < 2; kind++) {
                ByteBuffer bytes = ByteBuffer.allocateDirect((int) SHAPE.bytes(length)).order(ByteOrder.nativeOrder());
                FloatBuffer floats = bytes.asFloatBuffer();
                // [kvHeads, length, headDim]
                for (int i = 0; i < SHAPE.kvHeads() * length * SHAPE.headDim(); i++) {
                    int e = i % SHAPE.headDim();
                    int t = (i / SHAPE.headDim()) % length;
                    int head = i / (SHAPE.headDim() * length);
                    floats.put(i, value(ids.get(t), layer, kind, head, e));
                }
                (kind == 0 ? keys : values)[layer] = bytes;
            }
        }
        sequence.store().seed(sequence, keys, values, length);
        expected.computeIfAbsent(sequence, (key) -> new ArrayList<>()).addAll(ids);
    }

    /**
     * Every logical token of the sequence holds the bytes of the write that produced it.
     */
    private void assertHolds(KvSequence sequence) {
        List<Integer> ids = expected.getOrDefault(sequence, List.of());
        assertThat(sequence.logicalLength()).isEqualTo(ids.size());
        ByteBuffer[][] copies = sequence.copyTokens(0, ids.size());
        for (int kind = 0; kind < 2; kind++) {
            for (int layer = 0; layer < SHAPE.layers(); layer++) {
                FloatBuffer floats = copies[kind][layer].order(ByteOrder.nativeOrder()).asFloatBuffer();
                assertThat(floats.remaining()).isEqualTo(SHAPE.kvHeads() * ids.size() * SHAPE.headDim());
                // [kvHeads, tokens, headDim]
                for (int index = 0; index < SHAPE.kvHeads() * ids.size() * SHAPE.headDim(); index++) {
                    int e = index % SHAPE.headDim();
                    int t = (index / SHAPE.headDim()) % ids.size();
                    int head = index / (SHAPE.headDim() * ids.size());
                    assertThat(floats.get(index))
                        .as("layer %d kind %d head %d token %d element %d", layer, kind, head, t, e)
                        .isEqualTo(value(ids.get(t), layer, kind, head, e));
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(KvStore.Layout.class)
    void tokensKeepTheirBytesThroughRollbackSeedingAndCompaction(KvStore.Layout layout) throws Exception {
        try (KvStore store = KvStore.batch(ENVIRONMENT, SHAPE, layout, NEVER)) {
            KvSequence a = store.join();
            KvSequence b = store.join();
            step(store, new KvSequence[] { a, b }, new int[] { 3, 5 });
            step(store, new KvSequence[] { a, b }, new int[] { 2, 1 });
            rollback(a, 3);
            rollback(b, 4);
            assertHolds(a);
            assertHolds(b);
            step(store, new KvSequence[] { a, b }, new int[] { 2, 3 });
            assertHolds(a);
            assertHolds(b);
            int holes = store.rows() * store.physicalLength() - a.logicalLength() - b.logicalLength();
            assertThat(holes).as("holes before compaction").isPositive();

            KvSequence c = store.join();
            seed(c, 4);
            assertHolds(a);
            assertHolds(b);
            assertHolds(c);

            store.compact();
            int expectedPhysical = layout == KvStore.Layout.PACKED
                    ? a.logicalLength() + b.logicalLength() + c.logicalLength()
                    : Math.max(a.logicalLength(), Math.max(b.logicalLength(), c.logicalLength()));
            assertThat(store.physicalLength()).isEqualTo(expectedPhysical);
            assertHolds(a);
            assertHolds(b);
            assertHolds(c);

            b.close();
            expected.remove(b);
            step(store, new KvSequence[] { a, c }, new int[] { 1, 2 });
            store.compact();
            assertThat(store.rows()).isEqualTo(layout == KvStore.Layout.PACKED ? 1 : 2);
            assertHolds(a);
            assertHolds(c);
            a.close();
            c.close();
            assertThat(store.isEmpty()).isTrue();
        }
    }

    @ParameterizedTest
    @EnumSource(KvStore.Layout.class)
    void rollbacksPastTheInjectedThresholdsCompactTheStore(KvStore.Layout layout) throws Exception {
        try (KvStore store = KvStore.batch(ENVIRONMENT, SHAPE, layout, new KvStore.Compaction(2, 0.25))) {
            KvSequence a = store.join();
            KvSequence b = store.join();
            step(store, new KvSequence[] { a, b }, new int[] { 6, 6 });
            int before = store.physicalLength();
            rollback(a, 5); // one hole per row at most: under 2 × rows
            assertThat(store.physicalLength()).isEqualTo(before);
            rollback(a, 1);
            rollback(b, 2); // holes past 2 × rows and a quarter of the slots: compacted
            assertThat(store.physicalLength()).isEqualTo(layout == KvStore.Layout.PACKED ? 3 : 2);
            assertHolds(a);
            assertHolds(b);
            step(store, new KvSequence[] { a, b }, new int[] { 2, 1 });
            assertHolds(a);
            assertHolds(b);
        }
    }

    /**
     * Keeps the listed logical tokens from {@code from} on, as a tree's accepted path.
     */
    private void retain(KvSequence sequence, int from, int[] kept) {
        sequence.retain(from, kept);
        List<Integer> ids = expected.get(sequence);
        List<Integer> path = new ArrayList<>();
        for (int logical : kept) {
            path.add(ids.get(logical));
        }
        ids.subList(from, ids.size()).clear();
        ids.addAll(path);
    }

    @ParameterizedTest
    @EnumSource(KvStore.Layout.class)
    void aTreesAcceptedPathKeepsItsBytesAndTheOtherBranchesBecomeHoles(KvStore.Layout layout) throws Exception {
        try (KvStore store = KvStore.batch(ENVIRONMENT, SHAPE, layout, NEVER)) {
            KvSequence a = store.join();
            KvSequence b = store.join();
            step(store, new KvSequence[] { a, b }, new int[] { 3, 2 });
            // a tree of 6 nodes after a's 3 tokens; its path: nodes 0, 2, 5
            step(store, new KvSequence[] { a, b }, new int[] { 6, 1 });
            int physical = store.physicalLength();
            retain(a, 3, new int[] { 3, 5, 8 });
            assertThat(a.logicalLength()).isEqualTo(6);
            assertThat(store.physicalLength()).as("no copy: the other branches are holes").isEqualTo(physical);
            assertHolds(a);
            assertHolds(b);
            step(store, new KvSequence[] { a, b }, new int[] { 2, 2 });
            assertHolds(a);
            assertHolds(b);
            retain(a, 6, new int[] {});
            store.compact();
            assertHolds(a);
            assertHolds(b);
            assertThatThrownBy(() -> a.retain(2, new int[] { 4, 3 })).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("ascending");
            assertThatThrownBy(() -> a.retain(2, new int[] { 1 })).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> a.retain(2, new int[] { 6 })).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void aSequenceAloneIsSeededWithoutACopyAndTruncatedWhenThresholdsAreZero() throws Exception {
        try (KvSequence alone = KvStore.single(ENVIRONMENT, SHAPE, KvStore.Layout.PADDED,
                new KvStore.Compaction(0, 0))) {
            seed(alone, 5);
            assertThat(alone.store().key(0).getBufferRef()).as("the seeded tensor wraps the prefix buffer").isPresent();
            step(alone.store(), new KvSequence[] { alone }, new int[] { 4 });
            assertHolds(alone);
            rollback(alone, 7);
            assertThat(alone.store().physicalLength()).as("compacted on every rollback").isEqualTo(7);
            assertHolds(alone);
            step(alone.store(), new KvSequence[] { alone }, new int[] { 2 });
            assertHolds(alone);
        }
    }

    @Test
    void badThresholdsAndLayoutsAreRejectedNamingTheField() {
        assertThatThrownBy(() -> new KvStore.Compaction(-1, 0)).hasMessageContaining("minHolesPerRow");
        assertThatThrownBy(() -> new KvStore.Compaction(0, 1)).hasMessageContaining("minHoleShare");
        assertThatThrownBy(() -> new KvLayout(2, 2, 4, 8)).hasMessageContaining("8 bytes");
        assertThat(new KvLayout(32, 8, 128, 2).bytes(1 << 20)).isEqualTo(8L * 128 * 2 * (1 << 20));
    }

}
