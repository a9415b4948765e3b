package dev.specula.serving;

/** The models are still loading (or failed to load): the request cannot be served yet. */
public class ModelsNotReadyException extends RuntimeException {

    private final boolean failed;

    public ModelsNotReadyException(String message, Throwable cause, boolean failed) {
        super(message, cause);
        this.failed = failed;
    }

    /**
     * Whether loading failed for good (the cause says why), rather than still running.
     */
    public boolean failed() {
        return failed;
    }

}
