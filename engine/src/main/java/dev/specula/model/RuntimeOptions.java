package dev.specula.model;

/**
 * How an ONNX Runtime session is created for a model.
 *
 * @param provider execution provider, {@link ExecutionProvider#CPU} by default
 * @param deviceId GPU index for CUDA, ignored on CPU
 * @param intraOpThreads threads inside one operator; 1 was fastest and steadiest on
 * 2-core machines (shared/FACTS.md), 0 lets ONNX Runtime choose
 * @param spinning whether idle ONNX Runtime threads spin (only matters with more than one
 * intra-op thread)
 */
public record RuntimeOptions(ExecutionProvider provider, int deviceId, int intraOpThreads, boolean spinning) {

    public RuntimeOptions {
        if (provider == null) {
            throw new IllegalArgumentException("provider must not be null");
        }
        if (deviceId < 0) {
            throw new IllegalArgumentException("deviceId must be >= 0 but was " + deviceId);
        }
        if (intraOpThreads < 0) {
            throw new IllegalArgumentException(
                    "intraOpThreads must be >= 0 (0 = ONNX Runtime decides) but was " + intraOpThreads);
        }
    }

    /** CPU, one intra-op thread, no spinning. */
    public static RuntimeOptions defaults() {
        return new RuntimeOptions(ExecutionProvider.CPU, 0, 1, false);
    }

    /** These options on another provider and device. */
    public RuntimeOptions withProvider(ExecutionProvider newProvider, int newDeviceId) {
        return new RuntimeOptions(newProvider, newDeviceId, intraOpThreads, spinning);
    }

    /** These options with another intra-op thread count (0 = ONNX Runtime decides). */
    public RuntimeOptions withIntraOpThreads(int threads) {
        return new RuntimeOptions(provider, deviceId, threads, spinning);
    }
}
