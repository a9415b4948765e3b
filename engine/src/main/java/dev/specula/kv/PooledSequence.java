package dev.specula.kv;

import java.util.Arrays;

/**
 * A sequence's share of a {@link KvPool}: the physical slots that hold its tokens, in logical order. In a
 * padded pool they all lie in the sequence's own row; in a packed pool anywhere in the one row.
 */
public final class PooledSequence implements SequenceCache {

    final KvPool pool;
    final int id;
    /** Row of the pool (always 0 when packed). */
    int row;
    /** slots[i] = physical slot of logical token i. */
    int[] slots = new int[64];
    int length;
    boolean closed;

    PooledSequence(KvPool pool, int id, int row) {
        this.pool = pool;
        this.id = id;
        this.row = row;
    }

    public KvPool pool() {
        return pool;
    }

    /** Row of the pool holding the sequence's slots (always 0 when packed). */
    public int row() {
        return row;
    }

    @Override
    public int logicalLength() {
        return length;
    }

    @Override
    public void rollbackTo(int newLength) {
        if (newLength < 0 || newLength > length) {
            throw new IllegalArgumentException("Cannot roll back to " + newLength + " of " + length + " tokens");
        }
        pool.release(this, newLength);
    }

    void append(int slot) {
        if (length == slots.length) {
            slots = Arrays.copyOf(slots, length * 2);
        }
        slots[length++] = slot;
    }

    @Override
    public void close() {
        if (!closed) {
            pool.leave(this);
            closed = true;
        }
    }
}
