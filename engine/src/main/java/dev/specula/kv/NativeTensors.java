package dev.specula.kv;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtSession;

import java.util.List;

/** Helpers shared by the KV holders for the native tensors they own. */
final class NativeTensors {

    private NativeTensors() {
    }

    /** A named output of a run, which must be there. */
    static OnnxTensor output(OrtSession.Result result, String name) {
        OnnxValue value = result.get(name).orElseThrow(() -> new IllegalStateException("Run returned no '" + name + "'"));
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
