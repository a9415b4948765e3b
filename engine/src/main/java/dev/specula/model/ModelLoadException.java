package dev.specula.model;

import java.nio.file.Path;

/**
 * A model directory that cannot be loaded: the message names the path and what to do
 * about it.
 */
public class ModelLoadException extends RuntimeException {

    private final Path path;

    public ModelLoadException(Path path, String message) {
        super(message);
        this.path = path;
    }

    public ModelLoadException(Path path, String message, Throwable cause) {
        super(message, cause);
        this.path = path;
    }

    /** The file or directory at fault. */
    public Path getPath() {
        return path;
    }

}
