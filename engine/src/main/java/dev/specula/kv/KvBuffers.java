package dev.specula.kv;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Direct buffers that KV stores written in place gave back (closed, or grown into larger
 * ones), taken again by the next stores of a size they fit. A new direct buffer is zeroed
 * by the JVM and, in a process that has not yet reused its memory, lands on pages the
 * kernel maps one fault at a time: measured at 160 µs to 8 ms for a store of the embedded
 * target (12 buffers of 64 KB), twice a 128-token request, 6 % of its time. A buffer
 * taken again keeps what its last store left in it: a store reads only the slots it wrote
 * itself (every slot before its physical end was written by it, the ones after are never
 * attended), so no zeroing is needed.
 *
 * <pre>
 * take(bytes)  the smallest buffer given back that holds bytes and no more than
 *              MAX_SLACK × bytes, else a new one of exactly bytes
 * give(buffer) kept while the pool holds at most maxBytes, else left to the garbage collector
 * </pre>
 *
 * Shared by every model of the process ({@link #shared()}); thread-safe.
 */
public final class KvBuffers {

    /**
     * What the shared pool keeps at most: 256 MiB (one 0.5B-class store of 8,192 tokens
     * fits), and no more than a sixteenth of the heap's maximum (the JVM's default bound
     * on direct memory), so that pooled buffers never starve the stores in use.
     */
    static final long SHARED_MAX_BYTES = Math.min(256L << 20, Runtime.getRuntime().maxMemory() / 16);

    /** A buffer given back serves a store of at least 1 / MAX_SLACK of its size. */
    static final double MAX_SLACK = 1.5;

    private static final KvBuffers SHARED = new KvBuffers(SHARED_MAX_BYTES);

    private final long maxBytes;

    private final List<ByteBuffer> free = new ArrayList<>();

    private long pooledBytes;

    private long reused;

    KvBuffers(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    /** The pool of this process. */
    public static KvBuffers shared() {
        return SHARED;
    }

    /**
     * A direct buffer in native byte order of at least {@code bytes} (exactly, when new),
     * positioned at 0; its contents are undefined.
     */
    synchronized ByteBuffer take(long bytes) {
        int best = -1;
        for (int i = 0; i < free.size(); i++) {
            int capacity = free.get(i).capacity();
            if (capacity >= bytes && capacity <= MAX_SLACK * bytes
                    && (best < 0 || capacity < free.get(best).capacity())) {
                best = i;
            }
        }
        if (best < 0) {
            return ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.nativeOrder());
        }
        ByteBuffer buffer = free.remove(best);
        pooledBytes -= buffer.capacity();
        reused++;
        return buffer.clear().order(ByteOrder.nativeOrder());
    }

    /**
     * Takes back a buffer from {@link #take} that nothing reads or writes any more (the
     * tensors over it closed).
     */
    synchronized void give(ByteBuffer buffer) {
        if (pooledBytes + buffer.capacity() <= maxBytes) {
            free.add(buffer);
            pooledBytes += buffer.capacity();
        }
    }

    /** Bytes held for the next stores. */
    synchronized long pooledBytes() {
        return pooledBytes;
    }

    /** How many buffers were taken again rather than allocated. */
    public synchronized long reused() {
        return reused;
    }

}
