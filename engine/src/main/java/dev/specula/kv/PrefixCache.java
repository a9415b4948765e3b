package dev.specula.kv;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.List;

/**
 * KV of prompt prefixes shared by requests (a system prompt, a few-shot header), in blocks of
 * {@value #BLOCK} tokens as vLLM's prefix caching: a block is keyed by the model, the hash of every token
 * before it and its own tokens, so a prompt reuses the longest run of cached blocks from its start. Entries
 * are ONNX Runtime tensors (native memory) weighed by bytes, least recently used evicted first; an evicted block
 * closes its tensors. Hits and misses go to a {@link PrefixCacheListener}.
 *
 * <pre>
 * lookup(prompt):  blocks b_0, b_1, ... of prompt[0 .. len − 1)   (the last token is always fed: it gives logits)
 *                  walk while (model, hash(b_0..b_{i−1}), b_i) is cached → seed the cache with their KV
 * store(prompt):   after the request, the prompt's blocks not cached yet are copied out of its cache
 * </pre>
 */
public final class PrefixCache {

    public static final int BLOCK = 16;

    private record Key(String model, long parentHash, int[] tokens) {

        @Override
        public boolean equals(Object other) {
            return other instanceof Key that && parentHash == that.parentHash && model.equals(that.model)
                    && Arrays.equals(tokens, that.tokens);
        }

        @Override
        public int hashCode() {
            return (model.hashCode() * 31 + Long.hashCode(parentHash)) * 31 + Arrays.hashCode(tokens);
        }

        long chainHash() {
            return parentHash * 1_000_003L + Arrays.hashCode(tokens);
        }
    }

    /** One block's KV: per layer key and value [1, kvHeads, BLOCK, headDim], native. */
    private static final class Block {
        final OnnxTensor[] keys;
        final OnnxTensor[] values;
        final long bytes;

        Block(OnnxTensor[] keys, OnnxTensor[] values, long bytes) {
            this.keys = keys;
            this.values = values;
            this.bytes = bytes;
        }

        void close() {
            for (int i = 0; i < keys.length; i++) {
                keys[i].close();
                values[i].close();
            }
        }
    }

    private final OrtEnvironment environment;
    private final long maximumBytes;
    private final PrefixCacheListener listener;
    /** Blocks in access order (least recently used first). */
    private final LinkedHashMap<Key, Block> blocks = new LinkedHashMap<>(64, 0.75f, true);
    private long bytes;

    public PrefixCache(OrtEnvironment environment, long maximumBytes, PrefixCacheListener listener) {
        this.environment = environment;
        this.maximumBytes = maximumBytes;
        this.listener = listener;
    }

    /** Cached bytes. */
    public synchronized long bytes() {
        return bytes;
    }

    /** Cached blocks. */
    public synchronized int blockCount() {
        return blocks.size();
    }

    /**
     * Seeds an empty cache (its own, or a pooled sequence) with the longest cached prefix of {@code prompt}.
     *
     * @return tokens seeded (a multiple of {@value #BLOCK}, 0 on a miss)
     */
    public int seed(String model, int[] prompt, SequenceCache cache) {
        List<Block> found = lookup(model, prompt);
        listener.onLookup(found.size() * BLOCK, prompt.length - found.size() * BLOCK);
        if (found.isEmpty() || cache.logicalLength() != 0) {
            return 0;
        }
        int layers = found.get(0).keys.length;
        OnnxTensor[] keys = new OnnxTensor[layers];
        OnnxTensor[] values = new OnnxTensor[layers];
        List<AutoCloseable> created = new ArrayList<>();
        try {
            for (int layer = 0; layer < layers; layer++) {
                keys[layer] = concatenate(found, layer, true, created);
                values[layer] = concatenate(found, layer, false, created);
            }
            int length = found.size() * BLOCK;
            if (cache instanceof KvCache own) {
                own.seed(keys, values, length, created);
            }
            else {
                PooledSequence pooled = (PooledSequence) cache;
                pooled.pool().seed(pooled, keys, values, length);
                created.forEach(NativeTensors::closeQuietly);
            }
            return length;
        }
        catch (OrtException | RuntimeException ex) {
            created.forEach(NativeTensors::closeQuietly);
            return 0;
        }
    }

    /** Copies the prompt's uncached blocks out of {@code cache}, which holds at least the prompt. */
    public void store(String model, int[] prompt, SequenceCache cache) {
        int fullBlocks = (prompt.length - 1) / BLOCK;
        long parent = 0;
        for (int b = 0; b < fullBlocks; b++) {
            Key key = new Key(model, parent, Arrays.copyOfRange(prompt, b * BLOCK, (b + 1) * BLOCK));
            parent = key.chainHash();
            if (get(key) != null) {
                continue;
            }
            if (cache.logicalLength() < (b + 1) * BLOCK) {
                return;
            }
            try {
                OnnxTensor[][] copied = cache instanceof KvCache own ? own.copyTokens(b * BLOCK, BLOCK)
                        : ((PooledSequence) cache).pool().copyTokens((PooledSequence) cache, b * BLOCK, BLOCK);
                long bytes = 0;
                for (OnnxTensor[] tensors : copied) {
                    for (OnnxTensor tensor : tensors) {
                        bytes += tensor.getInfo().getNumElements() * (tensor.getInfo().type == OnnxJavaType.FLOAT16 ? 2 : 4);
                    }
                }
                put(key, new Block(copied[0], copied[1], bytes));
            }
            catch (OrtException | RuntimeException ex) {
                return; // caching is an optimisation: a failed copy only costs a future prefill
            }
        }
    }

    private List<Block> lookup(String model, int[] prompt) {
        List<Block> found = new ArrayList<>();
        long parent = 0;
        for (int b = 0; (b + 1) * BLOCK <= prompt.length - 1; b++) {
            Key key = new Key(model, parent, Arrays.copyOfRange(prompt, b * BLOCK, (b + 1) * BLOCK));
            Block block = get(key);
            if (block == null) {
                break;
            }
            found.add(block);
            parent = key.chainHash();
        }
        return found;
    }

    private OnnxTensor concatenate(List<Block> found, int layer, boolean key, List<AutoCloseable> created) throws OrtException {
        OnnxTensor first = key ? found.get(0).keys[layer] : found.get(0).values[layer];
        long[] shape = first.getInfo().getShape(); // [1, kvHeads, BLOCK, headDim]
        int heads = (int) shape[1];
        int headDim = (int) shape[3];
        OnnxJavaType type = first.getInfo().type;
        int slotBytes = headDim * (type == OnnxJavaType.FLOAT16 ? 2 : 4);
        int length = found.size() * BLOCK;
        ByteBuffer out = ByteBuffer.allocateDirect(heads * length * slotBytes).order(ByteOrder.nativeOrder());
        for (int b = 0; b < found.size(); b++) {
            OnnxTensor part = key ? found.get(b).keys[layer] : found.get(b).values[layer];
            ByteBuffer bytes = part.getByteBuffer().order(ByteOrder.nativeOrder());
            for (int head = 0; head < heads; head++) {
                out.put((head * length + b * BLOCK) * slotBytes, bytes, head * BLOCK * slotBytes, BLOCK * slotBytes);
            }
        }
        out.rewind();
        OnnxTensor tensor = OnnxTensor.createTensor(environment, out, new long[] {1, heads, length, headDim}, type);
        created.add(tensor);
        return tensor;
    }

    private synchronized Block get(Key key) {
        return blocks.get(key);
    }

    private synchronized void put(Key key, Block block) {
        Block previous = blocks.put(key, block);
        bytes += block.bytes;
        if (previous != null) {
            bytes -= previous.bytes;
            previous.close();
        }
        for (Iterator<Map.Entry<Key, Block>> it = blocks.entrySet().iterator(); bytes > maximumBytes && it.hasNext();) {
            Block evicted = it.next().getValue();
            it.remove();
            bytes -= evicted.bytes;
            evicted.close();
            listener.onEviction(evicted.bytes);
        }
    }

    /** Drops every block (closing its tensors). */
    public synchronized void clear() {
        blocks.values().forEach(Block::close);
        blocks.clear();
        bytes = 0;
    }
}
