package dev.specula.model;

import java.nio.LongBuffer;
import java.util.List;
import java.util.concurrent.atomic.AtomicReferenceArray;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import org.jspecify.annotations.Nullable;

/**
 * The scalar inputs a model's calls repeat: {@code use_cache_branch} = true and the
 * {@code logits_to_keep} counts of verification-sized calls, made once for the model's
 * life and shared by every call (ONNX Runtime only reads its inputs, so concurrent calls
 * may share them).
 *
 * <p>
 * A tensor made from a Java array is copied into new direct memory, a cleaner registered
 * for it: about a tenth of the Java time of a plain step on the embedded pair in a young
 * JVM, when it was made per call.
 */
final class ConstantInputs implements AutoCloseable {

    /** logits_to_keep counts kept: a verification's γ + 1 rows, a small batch's. */
    static final int CACHED_KEEP_COUNTS = 64;

    private final OrtEnvironment environment;

    /** logits_to_keep's shape: a scalar ([]) or [1], as the graph declares it. */
    private final long[] keepShape;

    /** Index k: logits_to_keep = k, made on first use. */
    private final AtomicReferenceArray<@Nullable OnnxTensor> keepCounts = new AtomicReferenceArray<>(
            CACHED_KEEP_COUNTS + 1);

    private volatile @Nullable OnnxTensor useCacheBranch;

    private volatile boolean closed;

    ConstantInputs(OrtEnvironment environment, GraphSignature signature) {
        this.environment = environment;
        this.keepShape = signature.logitsToKeepRank() == 0 ? new long[0] : new long[] { 1 };
    }

    /**
     * logits_to_keep = {@code keep}: a shared tensor up to {@value #CACHED_KEEP_COUNTS},
     * a new one beyond (added to {@code created}, which the caller closes).
     */
    OnnxTensor logitsToKeep(long keep, List<OnnxTensor> created) throws OrtException {
        checkOpen();
        if (keep < 0 || keep > CACHED_KEEP_COUNTS) {
            OnnxTensor tensor = newKeep(keep);
            created.add(tensor);
            return tensor;
        }
        int index = (int) keep;
        OnnxTensor tensor = keepCounts.get(index);
        if (tensor == null) {
            OnnxTensor made = newKeep(keep);
            if (!keepCounts.compareAndSet(index, null, made)) {
                // another thread made it first
                made.close();
            }
            tensor = keepCounts.get(index);
        }
        return tensor;
    }

    /** use_cache_branch = true: a merged decoder's with-past branch. */
    OnnxTensor useCacheBranch() throws OrtException {
        checkOpen();
        OnnxTensor tensor = useCacheBranch;
        if (tensor == null) {
            synchronized (this) {
                tensor = useCacheBranch;
                if (tensor == null) {
                    tensor = OnnxTensor.createTensor(environment, new boolean[] { true });
                    useCacheBranch = tensor;
                }
            }
        }
        return tensor;
    }

    private OnnxTensor newKeep(long keep) throws OrtException {
        return OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[] { keep }), keepShape);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("The model is closed: its inputs are released");
        }
    }

    @Override
    public synchronized void close() {
        closed = true;
        for (int k = 0; k < keepCounts.length(); k++) {
            OnnxTensor tensor = keepCounts.getAndSet(k, null);
            if (tensor != null) {
                tensor.close();
            }
        }
        if (useCacheBranch != null) {
            useCacheBranch.close();
            useCacheBranch = null;
        }
    }

}
