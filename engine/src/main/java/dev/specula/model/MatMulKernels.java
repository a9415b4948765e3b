package dev.specula.model;

import java.util.Locale;

/**
 * Whose kernels run a model's weight MatMuls on the CPU: float32 ones, and 4- and 8-bit
 * ones computed with int8 activations.
 *
 * <p>
 * Specula's own ({@code PanelMatMul}, {@code PanelMatMulQ4} and {@code PanelMatMulQ8}, a
 * native library in the engine's jar, {@code engine/src/main/native}) stream a weight
 * once for a call of one to a few rows, as decoding and verification make, where ONNX
 * Runtime's MatMul runs a general matrix product; every output is the same sum whatever
 * the rows of the call, so verification stays lossless. 4- and 8-bit {@code MatMulNBits}
 * with float activations, and float16 weights, keep ONNX Runtime's kernels.
 */
public enum MatMulKernels {

    /** ONNX Runtime's MatMul, the graph as it was exported. */
    ONNX_RUNTIME,

    /**
     * Specula's where the library loads on this CPU (Linux x86-64 with AVX2 and FMA) and
     * the provider is the CPU; ONNX Runtime's elsewhere, said once in the log.
     */
    AUTO,

    /** Specula's, or the model does not load: the error names why. */
    SPECULA;

    /** The value as properties and the CLI spell it. */
    public String spelling() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /**
     * Reads {@code onnx-runtime}, {@code auto} or {@code specula} (any case,
     * {@code onnxruntime} too).
     * @throws IllegalArgumentException naming {@code field} and the values it takes
     */
    public static MatMulKernels parse(String value, String field) {
        String normalized = value.trim().toLowerCase(Locale.ROOT).replace('_', '-');
        for (MatMulKernels kernels : values()) {
            if (kernels.spelling().equals(normalized)
                    || kernels.spelling().replace("-", "").equals(normalized.replace("-", ""))) {
                return kernels;
            }
        }
        throw new IllegalArgumentException(field + " must be onnx-runtime, auto or specula but was '" + value + "'");
    }

}
