package dev.specula.kv;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.jspecify.annotations.Nullable;

/**
 * KV of prompt prefixes shared by requests (a system prompt, a few-shot header), in
 * blocks of 16 tokens as vLLM's prefix caching: a block is keyed by the SHA-256 digest of
 * the model's identity, every token before it and its own tokens, so a prompt reuses the
 * longest run of cached blocks from its start and never KV computed after another prefix
 * (vLLM moved to SHA-256 block keys after GHSA-rm76-4mrf-v9r8: a 32-bit polynomial chain
 * collides on purpose-built prompts). Blocks are weighed by bytes, least recently used
 * evicted first. Hits, misses and evictions go to a {@link PrefixCacheListener}.
 *
 * <pre>
 * digest(b_i) = SHA-256(digest(b_{i−1}) ‖ tokens of b_i),  digest(b_{−1}) = SHA-256(model identity)
 * lookup(prompt):  blocks b_0, b_1, ... of prompt[0 .. len − 1)   (the last token is always fed: it gives logits)
 *                  walk while digest(b_i) is cached → seed the cache with their KV
 * store(prompt):   after the request, the prompt's blocks not cached yet are copied out of its cache
 *                  (one copy of each layer's key and value, sliced into blocks)
 * </pre>
 *
 * A block is reference-counted: the cache holds one reference, every seed reading it
 * another (taken in the lookup, under the lock); eviction drops the cache's, and the
 * block's memory is released only at zero, so a seed never reads a dropped block.
 *
 * <p>
 * Under an engine's {@link KvBudget} ({@link #shareBudget}) the blocks also count against
 * {@code specula.kv.max-bytes}: a block is kept only in memory that running requests
 * leave free (and while none waits), and blocks are evicted, least recently used first,
 * when a request's reservation needs their room.
 */
public final class PrefixCache {

    /** Tokens per block. */
    static final int BLOCK = 16;

    /**
     * A block's key: SHA-256 over the model identity and every token up to the block's
     * end.
     */
    private record Digest(byte[] bytes) {

        @Override
        public boolean equals(@Nullable Object other) {
            return other instanceof Digest that && Arrays.equals(bytes, that.bytes);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(bytes);
        }
    }

    /**
     * One block's KV: per layer key and value [kvHeads, BLOCK, headDim] in direct
     * buffers.
     */
    private static final class Block {

        /** Null once the last reference is dropped. */
        ByteBuffer @Nullable [] keys;

        ByteBuffer @Nullable [] values;

        final long bytes;

        /**
         * The cache's own reference (while mapped) plus one per seed reading the block.
         */
        int references = 1;

        Block(ByteBuffer[] keys, ByteBuffer[] values, long bytes) {
            this.keys = keys;
            this.values = values;
            this.bytes = bytes;
        }

    }

    private final long maximumBytes;

    private final PrefixCacheListener listener;

    /** Blocks in access order (least recently used first). */
    private final LinkedHashMap<Digest, Block> blocks = new LinkedHashMap<>(64, 0.75f, true);

    private long bytes;

    /** The engine's KV budget the blocks count against; null until shared. */
    private @Nullable KvBudget budget;

    public PrefixCache(long maximumBytes, PrefixCacheListener listener) {
        this.maximumBytes = maximumBytes;
        this.listener = listener;
    }

    /**
     * Counts the blocks against {@code budget} from now on, evicting them when a
     * reservation needs their room. Internal to the engine (it shares its budget).
     * @throws IllegalStateException when the cache already counts against another budget
     */
    public synchronized void shareBudget(KvBudget budget) {
        if (this.budget == budget) {
            return;
        }
        if (this.budget != null) {
            throw new IllegalStateException("A prefix cache serves one engine: it already counts against a KV budget");
        }
        budget.attach(this, bytes);
        this.budget = budget;
    }

    /** Cached bytes. */
    public synchronized long bytes() {
        return bytes;
    }

    /** Cached blocks. */
    synchronized int blockCount() {
        return blocks.size();
    }

    /**
     * Seeds an empty sequence ({@link KvSequence}) with the longest cached prefix of
     * {@code prompt}. Internal to the engine (the decode loop calls it).
     * @param modelIdentity what identifies the model's KV
     * ({@link dev.specula.model.Decoder#kvIdentity()})
     * @return tokens seeded (a multiple of the block size, 16; 0 on a miss)
     */
    public int seed(String modelIdentity, int[] prompt, SequenceCache cache) {
        if (!(cache instanceof KvSequence sequence)) {
            return 0;
        }
        List<Block> found = acquire(digests(modelIdentity, prompt, (prompt.length - 1) / BLOCK));
        try {
            listener.onLookup(found.size() * BLOCK, prompt.length - found.size() * BLOCK);
            if (found.isEmpty() || sequence.logicalLength() != 0) {
                return 0;
            }
            int length = found.size() * BLOCK;
            KvLayout shape = sequence.store().kvLayout();
            ByteBuffer[] keys = new ByteBuffer[shape.layers()];
            ByteBuffer[] values = new ByteBuffer[shape.layers()];
            for (int layer = 0; layer < shape.layers(); layer++) {
                keys[layer] = concatenate(found, shape, layer, true);
                values[layer] = concatenate(found, shape, layer, false);
            }
            sequence.store().seed(sequence, keys, values, length);
            return length;
        }
        catch (RuntimeException ex) {
            return 0; // caching is an optimisation: a failed seed only costs a prefill
        }
        finally {
            release(found);
        }
    }

    /**
     * Copies the prompt's uncached blocks out of {@code cache}, which holds at least the
     * prompt. Internal to the engine (the decode loop calls it).
     */
    public void store(String modelIdentity, int[] prompt, SequenceCache cache) {
        if (!(cache instanceof KvSequence sequence)) {
            return;
        }
        int fullBlocks = Math.min((prompt.length - 1) / BLOCK, cache.logicalLength() / BLOCK);
        List<Digest> digests = digests(modelIdentity, prompt, fullBlocks);
        int first = -1;
        int last = -1;
        synchronized (this) {
            for (int b = 0; b < digests.size(); b++) {
                // a hit refreshes the block's place in the LRU order
                if (blocks.get(digests.get(b)) == null) {
                    first = first < 0 ? b : first;
                    last = b;
                }
            }
        }
        if (first < 0) {
            return;
        }
        KvLayout shape = sequence.store().kvLayout();
        int layers = shape.layers();
        long blockBytes = 2L * layers * shape.bytes(BLOCK);
        // copy no more than the cache can hold, from the first missing block: a lookup
        // matches from the prompt's start, so later blocks without these would never hit
        long room = maximumBytes / blockBytes;
        if (room == 0) {
            return;
        }
        last = (int) Math.min(last, first + room - 1);
        try {
            // one copy of each layer's key and value over the missing blocks: [kvHeads,
            // count, headDim] each
            int count = (last + 1 - first) * BLOCK;
            ByteBuffer[][] copied = sequence.copyTokens(first * BLOCK, count);
            for (int b = first; b <= last; b++) {
                ByteBuffer[] keys = new ByteBuffer[layers];
                ByteBuffer[] values = new ByteBuffer[layers];
                for (int layer = 0; layer < layers; layer++) {
                    keys[layer] = slice(copied[0][layer], shape, count, (b - first) * BLOCK);
                    values[layer] = slice(copied[1][layer], shape, count, (b - first) * BLOCK);
                }
                put(digests.get(b), new Block(keys, values, blockBytes));
            }
        }
        catch (RuntimeException ex) {
            // caching is an optimisation: a failed copy only costs a future prefill
        }
    }

    /** Digests of the first {@code count} blocks of {@code prompt}. */
    private static List<Digest> digests(String modelIdentity, int[] prompt, int count) {
        MessageDigest sha256;
        try {
            sha256 = MessageDigest.getInstance("SHA-256");
        }
        catch (NoSuchAlgorithmException ex) {
            throw new IllegalStateException("Every Java runtime has SHA-256", ex);
        }
        byte[] parent = sha256.digest(modelIdentity.getBytes(StandardCharsets.UTF_8));
        ByteBuffer tokens = ByteBuffer.allocate(BLOCK * Integer.BYTES);
        List<Digest> digests = new ArrayList<>(count);
        for (int b = 0; b < count; b++) {
            tokens.clear();
            tokens.asIntBuffer().put(prompt, b * BLOCK, BLOCK);
            sha256.update(parent);
            sha256.update(tokens.array());
            parent = sha256.digest();
            digests.add(new Digest(parent));
        }
        return digests;
    }

    /**
     * The cached run of blocks from the start, each with one more reference (the caller
     * releases them).
     */
    private synchronized List<Block> acquire(List<Digest> digests) {
        List<Block> found = new ArrayList<>();
        for (Digest digest : digests) {
            Block block = blocks.get(digest);
            if (block == null) {
                break;
            }
            block.references++;
            found.add(block);
        }
        return found;
    }

    private synchronized void release(List<Block> found) {
        found.forEach(PrefixCache::dropReference);
    }

    /** Under the lock: one reference fewer; at zero the block's memory is let go. */
    private static void dropReference(Block block) {
        if (--block.references == 0) {
            block.keys = null;
            block.values = null;
        }
    }

    /**
     * Tokens {@code from .. from + BLOCK − 1} of a [kvHeads, count, headDim] buffer, in a
     * new direct buffer.
     */
    private static ByteBuffer slice(ByteBuffer layer, KvLayout shape, int count, int from) {
        long slotBytes = shape.slotBytes();
        ByteBuffer out = ByteBuffer.allocateDirect((int) shape.bytes(BLOCK)).order(ByteOrder.nativeOrder());
        for (int head = 0; head < shape.kvHeads(); head++) {
            out.put((int) (head * BLOCK * slotBytes), layer, (int) ((head * (long) count + from) * slotBytes),
                    (int) (BLOCK * slotBytes));
        }
        return out;
    }

    /**
     * Every found block's tokens of one layer: [kvHeads, found * BLOCK, headDim] in a
     * direct buffer.
     */
    private static ByteBuffer concatenate(List<Block> found, KvLayout shape, int layer, boolean key) {
        long slotBytes = shape.slotBytes();
        int length = found.size() * BLOCK;
        ByteBuffer out = ByteBuffer.allocateDirect((int) shape.bytes(length)).order(ByteOrder.nativeOrder());
        for (int b = 0; b < found.size(); b++) {
            ByteBuffer part = key ? found.get(b).keys[layer] : found.get(b).values[layer];
            for (int head = 0; head < shape.kvHeads(); head++) {
                out.put((int) ((head * (long) length + b * BLOCK) * slotBytes), part, (int) (head * BLOCK * slotBytes),
                        (int) (BLOCK * slotBytes));
            }
        }
        return out;
    }

    private synchronized void put(Digest digest, Block block) {
        Block previous = blocks.remove(digest);
        if (previous != null) {
            drop(previous);
        }
        // within this cache's own size, and within what the engine's reservations leave
        // free
        while (bytes + block.bytes > maximumBytes && !blocks.isEmpty()) {
            evictEldest();
        }
        boolean counted = budget == null;
        while (!counted && bytes + block.bytes <= maximumBytes) {
            counted = budget.tryRetain(block.bytes);
            if (!counted && !evictEldest()) {
                break;
            }
        }
        if (!counted || bytes + block.bytes > maximumBytes) {
            dropReference(block);
            return;
        }
        blocks.put(digest, block);
        bytes += block.bytes;
    }

    /**
     * Evicts least recently used blocks until {@code needed} bytes are freed or none is
     * left (a reservation of the {@link KvBudget} needs the room).
     */
    synchronized void evict(long needed) {
        long freed = 0;
        for (Iterator<Map.Entry<Digest, Block>> it = blocks.entrySet().iterator(); freed < needed && it.hasNext();) {
            Block evicted = it.next().getValue();
            it.remove();
            freed += evicted.bytes;
            drop(evicted);
            listener.onEviction(evicted.bytes);
        }
    }

    /** Under the lock: evicts the least recently used block; false when none is left. */
    private boolean evictEldest() {
        Iterator<Map.Entry<Digest, Block>> it = blocks.entrySet().iterator();
        if (!it.hasNext()) {
            return false;
        }
        Block evicted = it.next().getValue();
        it.remove();
        drop(evicted);
        listener.onEviction(evicted.bytes);
        return true;
    }

    /** Under the lock: a block left the map; its bytes leave the counts. */
    private void drop(Block block) {
        bytes -= block.bytes;
        if (budget != null) {
            budget.unretain(block.bytes);
        }
        dropReference(block);
    }

    /** Drops every block (a seed in progress keeps reading the blocks it holds). */
    public synchronized void clear() {
        blocks.values().forEach(PrefixCache::dropReference);
        blocks.clear();
        if (budget != null) {
            budget.unretain(bytes);
        }
        bytes = 0;
    }

}
