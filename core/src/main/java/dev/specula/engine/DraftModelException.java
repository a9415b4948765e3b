package dev.specula.engine;

/** The draft model failed during a round; the target's state is untouched, so plain decoding can take over. */
public class DraftModelException extends RuntimeException {

    public DraftModelException(String message, Throwable cause) {
        super(message, cause);
    }
}
