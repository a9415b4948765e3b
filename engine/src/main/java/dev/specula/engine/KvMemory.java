package dev.specula.engine;

/**
 * The KV memory of an engine now ({@code specula.kv.*}).
 *
 * @param maxBytes the cap, {@code specula.kv.max-bytes}
 * @param reservedBytes worst-case KV reserved by the running requests (prompt + max new
 * tokens each, target and draft)
 * @param prefixCacheBytes KV the prefix cache keeps; evicted first when a request needs
 * the room
 * @param waiting requests first in line for KV memory (0 or 1 in the batch, plus callers
 * of {@link Engine#generate} waiting)
 */
public record KvMemory(long maxBytes, long reservedBytes, long prefixCacheBytes, int waiting) {

    /** Bytes neither reserved nor held by the prefix cache. */
    public long freeBytes() {
        return Math.max(0, maxBytes - reservedBytes - prefixCacheBytes);
    }

}
