package dev.specula.model;

import java.nio.file.Path;

import org.jspecify.annotations.Nullable;

/**
 * How an ONNX Runtime session is created for a model, and how much one call feeds it.
 *
 * @param provider execution provider, {@link ExecutionProvider#CPU} by default
 * @param deviceId GPU index for CUDA, ignored on CPU
 * @param intraOpThreads threads inside one operator; 1 was fastest and steadiest on
 * 2-core machines (shared/FACTS.md), 0 lets ONNX Runtime choose
 * @param spinning whether idle ONNX Runtime threads spin (only matters with more than one
 * intra-op thread)
 * @param prefillChunkTokens the most tokens of one sequence that one ONNX Runtime call
 * feeds before the last call of a step (like llama.cpp's {@code n_batch}): a long prompt
 * is fed in chunks, each chunk's present KV being the next one's past, which bounds the
 * activations of a call and, for graphs without a {@code logits_to_keep} input, the
 * logits they compute; {@value #DEFAULT_PREFILL_CHUNK_TOKENS} by default
 * @param profilePrefix where ONNX Runtime's profiler writes its trace
 * ({@code PREFIX_<date>.json}, one per session; see {@link DecoderModel#endProfiling()});
 * null = no profiling, the default (it costs time on every call)
 * @param kvInPlace whether a KV store of one row is written in place on the CPU when the
 * graph can (a probe at load): ONNX Runtime writes each call's new slots into one
 * preallocated buffer per layer instead of returning a new copy of the whole cache; true
 * by default, false only to compare
 * @param kernels whose kernels run float32 and 4-bit (int8-activation) weight MatMuls on
 * the CPU ({@link MatMulKernels}); {@link #DEFAULT_KERNELS} by default
 */
public record RuntimeOptions(ExecutionProvider provider, int deviceId, int intraOpThreads, boolean spinning,
        int prefillChunkTokens, @Nullable Path profilePrefix, boolean kvInPlace, MatMulKernels kernels) {

    /** Whose weight MatMul kernels unless set. */
    public static final MatMulKernels DEFAULT_KERNELS = MatMulKernels.AUTO;

    /** Tokens per prefill chunk unless set. */
    public static final int DEFAULT_PREFILL_CHUNK_TOKENS = 256;

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
        if (kernels == null) {
            throw new IllegalArgumentException("kernels must not be null");
        }
        if (prefillChunkTokens < 1) {
            throw new IllegalArgumentException("prefillChunkTokens must be >= 1 (default "
                    + DEFAULT_PREFILL_CHUNK_TOKENS + ") but was " + prefillChunkTokens);
        }
    }

    /** These options with the default kernels. */
    public RuntimeOptions(ExecutionProvider provider, int deviceId, int intraOpThreads, boolean spinning,
            int prefillChunkTokens, @Nullable Path profilePrefix, boolean kvInPlace) {
        this(provider, deviceId, intraOpThreads, spinning, prefillChunkTokens, profilePrefix, kvInPlace,
                DEFAULT_KERNELS);
    }

    /** These options, the KV written in place where the graph can. */
    public RuntimeOptions(ExecutionProvider provider, int deviceId, int intraOpThreads, boolean spinning,
            int prefillChunkTokens, @Nullable Path profilePrefix) {
        this(provider, deviceId, intraOpThreads, spinning, prefillChunkTokens, profilePrefix, true);
    }

    /** These options without profiling. */
    public RuntimeOptions(ExecutionProvider provider, int deviceId, int intraOpThreads, boolean spinning,
            int prefillChunkTokens) {
        this(provider, deviceId, intraOpThreads, spinning, prefillChunkTokens, null);
    }

    /** These options with the default prefill chunk. */
    public RuntimeOptions(ExecutionProvider provider, int deviceId, int intraOpThreads, boolean spinning) {
        this(provider, deviceId, intraOpThreads, spinning, DEFAULT_PREFILL_CHUNK_TOKENS);
    }

    /** CPU, one intra-op thread, no spinning, prefill chunks of 256 tokens. */
    public static RuntimeOptions defaults() {
        return new RuntimeOptions(ExecutionProvider.CPU, 0, 1, false);
    }

    /** These options on another provider and device. */
    public RuntimeOptions withProvider(ExecutionProvider newProvider, int newDeviceId) {
        return new RuntimeOptions(newProvider, newDeviceId, intraOpThreads, spinning, prefillChunkTokens, profilePrefix,
                kvInPlace, kernels);
    }

    /** These options with another intra-op thread count (0 = ONNX Runtime decides). */
    public RuntimeOptions withIntraOpThreads(int threads) {
        return new RuntimeOptions(provider, deviceId, threads, spinning, prefillChunkTokens, profilePrefix, kvInPlace,
                kernels);
    }

    /**
     * These options with idle ONNX Runtime threads spinning or not (only matters with
     * more than one intra-op thread).
     */
    public RuntimeOptions withSpinning(boolean spin) {
        return new RuntimeOptions(provider, deviceId, intraOpThreads, spin, prefillChunkTokens, profilePrefix,
                kvInPlace, kernels);
    }

    /** These options with another prefill chunk (tokens per ONNX Runtime call, >= 1). */
    public RuntimeOptions withPrefillChunkTokens(int tokens) {
        return new RuntimeOptions(provider, deviceId, intraOpThreads, spinning, tokens, profilePrefix, kvInPlace,
                kernels);
    }

    /**
     * These options with ONNX Runtime's profiler on, writing its trace under
     * {@code prefix}.
     */
    public RuntimeOptions withProfiling(Path prefix) {
        return new RuntimeOptions(provider, deviceId, intraOpThreads, spinning, prefillChunkTokens, prefix, kvInPlace,
                kernels);
    }

    /**
     * These options with a one-row KV store written in place where the graph can, or not.
     */
    public RuntimeOptions withKvInPlace(boolean inPlace) {
        return new RuntimeOptions(provider, deviceId, intraOpThreads, spinning, prefillChunkTokens, profilePrefix,
                inPlace, kernels);
    }

    /** These options with float32 weight MatMuls run by {@code matMulKernels}. */
    public RuntimeOptions withKernels(MatMulKernels matMulKernels) {
        return new RuntimeOptions(provider, deviceId, intraOpThreads, spinning, prefillChunkTokens, profilePrefix,
                kvInPlace, matMulKernels);
    }

}
