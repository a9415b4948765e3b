package dev.specula.autoconfigure;

import java.nio.file.Path;

import dev.specula.model.ModelLoadException;

/**
 * A {@link ModelLoadException} that also knows which property pointed at the model
 * ({@code specula.target.location}, {@code specula.draft.location} or
 * {@code specula.griffin.location}), so the failure analysis can name it.
 */
public class ConfiguredModelLoadException extends ModelLoadException {

    private final String property;

    public ConfiguredModelLoadException(String property, Path path, String message) {
        super(path, message);
        this.property = property;
    }

    /** Wraps a failure of the core loader, keeping its path and message. */
    public ConfiguredModelLoadException(String property, ModelLoadException cause) {
        super(cause.getPath(), cause.getMessage(), cause);
        this.property = property;
    }

    public ConfiguredModelLoadException(String property, Path path, String message, Throwable cause) {
        super(path, message, cause);
        this.property = property;
    }

    /** The property whose location failed to load. */
    public String getProperty() {
        return property;
    }

}
