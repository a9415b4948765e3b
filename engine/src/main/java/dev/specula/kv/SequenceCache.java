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

    /**
     * {@link #rollbackTo}, or, where forgetting those tokens would copy the whole cache,
     * back to what the cache held before the last call that fed it, provided that keeps
     * at least {@code newLength - maxRefeed} tokens: nothing is copied, and the tokens
     * between are ones the cache has not seen, for the caller to feed again (a target
     * that keeps no holes and is not written in place rejects a filler every step of
     * plain decoding). The tokens the cache holds afterwards.
     */
    default int rollbackOrRewind(int newLength, int maxRefeed) {
        rollbackTo(newLength);
        return newLength;
    }

    /**
     * Keeps, of the tokens from logical position {@code from} on, only those at
     * {@code kept} (ascending, each at least {@code from}), as positions {@code from},
     * {@code from + 1}, ...; forgets the others. A draft tree's accepted path: the
     * rejected branches' slots become holes, nothing is copied.
     * @throws IllegalArgumentException when {@code kept} is not ascending or lies outside
     * {@code [from, logicalLength())}
     */
    void retain(int from, int[] kept);

    /** Releases the sequence's KV memory (or its share of a pool). */
    @Override
    void close();

}
