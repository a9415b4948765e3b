package dev.specula.engine;

/** ONNX Runtime failed while generating (not a cancellation). */
public class GenerationException extends RuntimeException {

    public GenerationException(String message, Throwable cause) {
        super(message, cause);
    }

}
