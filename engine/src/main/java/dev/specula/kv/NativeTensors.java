package dev.specula.kv;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtSession;

/** Helpers shared by the KV holders for the native tensors they own. */
final class NativeTensors {

    /**
     * Copies of a whole layer tensor out of ONNX Runtime made to store prompt blocks (a
     * test seam).
     */
    static final AtomicLong STORE_LAYER_COPIES = new AtomicLong();

    /** Tokens copied out of stores for the prefix cache (a test seam, as above). */
    static final AtomicLong STORE_TOKENS_COPIED = new AtomicLong();

    /**
     * Compactions that copied a store's live slots into new tensors (a test seam, as
     * above).
     */
    static final AtomicLong STORE_COMPACTIONS = new AtomicLong();

    private NativeTensors() {
    }

    /**
     * A copy of a sequence's whole layer tensor, made to store prompt blocks; counted.
     */
    static ByteBuffer copyLayerForStore(OnnxTensor layer) {
        STORE_LAYER_COPIES.incrementAndGet();
        return layer.getByteBuffer().order(ByteOrder.nativeOrder());
    }

    /** A named output of a run, which must be there. */
    static OnnxTensor output(OrtSession.Result result, String name) {
        OnnxValue value = result.get(name)
            .orElseThrow(() -> new IllegalStateException("Run returned no '" + name + "'"));
        return (OnnxTensor) value;
    }

    static void closeQuietly(AutoCloseable closeable) {
        try {
            closeable.close();
        }
        catch (Exception ignored) {
            // native memory release; nothing to recover
        }
    }

    static void closeAll(List<AutoCloseable> closeables) {
        closeables.forEach(NativeTensors::closeQuietly);
        closeables.clear();
    }

}
