package dev.specula.engine;

import org.jspecify.annotations.Nullable;

/** ONNX Runtime failed while generating (not a cancellation). */
public class GenerationException extends RuntimeException {

    public GenerationException(String message, @Nullable Throwable cause) {
        super(message, cause);
    }

}
