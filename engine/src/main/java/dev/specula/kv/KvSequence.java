package dev.specula.kv;

import java.util.Arrays;

/**
 * A sequence's share of a {@link KvStore}: the physical slots that hold its tokens, in
 * logical order. In a padded store they all lie in the sequence's own row; in a packed
 * store anywhere in the one row.
 *
 * <p>
 * Users see it as a {@link SequenceCache}; {@link #store()} and {@link #row()} are
 * internal to the engine.
 */
public final class KvSequence implements SequenceCache {

    final KvStore store;

    final int id;

    /** Row of the store (always 0 when packed). */
    int row;

    /** slots[i] = physical slot of logical token i. */
    int[] slots = new int[64];

    int length;

    /** The most tokens the sequence will hold: the room its store makes for it. */
    final int maxTokens;

    /** Whether the store is this sequence's own (closing the sequence closes it). */
    boolean ownsStore;

    private boolean closed;

    KvSequence(KvStore store, int id, int row, int maxTokens) {
        this.store = store;
        this.id = id;
        this.row = row;
        this.maxTokens = maxTokens;
    }

    /** The store holding the sequence's slots. Internal to the engine. */
    public KvStore store() {
        return store;
    }

    /**
     * Row of the store holding the sequence's slots (always 0 when packed). Internal to
     * the engine.
     */
    public int row() {
        return row;
    }

    @Override
    public int logicalLength() {
        return length;
    }

    @Override
    public void rollbackTo(int newLength) {
        checkRollback(newLength);
        store.release(this, newLength);
    }

    @Override
    public int rollbackOrRewind(int newLength, int maxRefeed) {
        checkRollback(newLength);
        if (maxRefeed < 0) {
            throw new IllegalArgumentException("maxRefeed must be >= 0 but was " + maxRefeed);
        }
        return store.releaseOrRewind(this, newLength, maxRefeed);
    }

    private void checkRollback(int newLength) {
        if (closed) {
            throw new IllegalStateException("KV sequence is closed");
        }
        if (newLength < 0 || newLength > length) {
            throw new IllegalArgumentException("Cannot roll back to " + newLength + " of " + length + " tokens");
        }
    }

    @Override
    public void retain(int from, int[] kept) {
        if (closed) {
            throw new IllegalStateException("KV sequence is closed");
        }
        if (from < 0 || from > length) {
            throw new IllegalArgumentException("Cannot retain from " + from + " of " + length + " tokens");
        }
        for (int i = 0; i < kept.length; i++) {
            if (kept[i] < from || kept[i] >= length || (i > 0 && kept[i] <= kept[i - 1])) {
                throw new IllegalArgumentException("Retained tokens must be ascending logical positions in [" + from
                        + ", " + length + ") but were " + Arrays.toString(kept));
            }
        }
        store.retain(this, from, kept);
    }

    /** Physical slot of logical token {@code logical}. Internal to the engine. */
    public int slot(int logical) {
        if (logical < 0 || logical >= length) {
            throw new IndexOutOfBoundsException("Logical token " + logical + " of " + length);
        }
        return slots[logical];
    }

    /**
     * Copies the KV of logical tokens {@code from .. from + count − 1}: {keys, values},
     * each per layer a direct buffer [kvHeads, count, headDim].
     */
    java.nio.ByteBuffer[][] copyTokens(int from, int count) {
        return store.copyTokens(this, from, count);
    }

    void append(int slot) {
        if (length == slots.length) {
            slots = Arrays.copyOf(slots, length * 2);
        }
        slots[length++] = slot;
    }

    /** Releases the sequence's slots (and its own store's native memory). */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (ownsStore) {
                store.close();
            }
            else {
                store.leave(this);
            }
        }
    }

}
