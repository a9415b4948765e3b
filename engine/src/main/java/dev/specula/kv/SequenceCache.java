package dev.specula.kv;

/**
 * One sequence's KV state in one model, as the decode loop sees it: how many of its
 * tokens the model has seen, and rollback of rejected drafts. {@link KvSequence}
 * implements it: a sequence's slots in a {@link KvStore} (a store of its own, or one that
 * batched steps share).
 */
public interface SequenceCache extends AutoCloseable {

    /** Tokens of the sequence held in the cache. */
    int logicalLength();

    /** Forgets every token from logical position {@code newLength} on. */
    void rollbackTo(int newLength);

    /** Releases the sequence's KV memory (or its share of a pool). */
    @Override
    void close();

}
