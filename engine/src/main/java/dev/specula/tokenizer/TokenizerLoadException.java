package dev.specula.tokenizer;

import java.nio.file.Path;

import org.jspecify.annotations.Nullable;

/**
 * A tokenizer or chat template file that cannot be read: the message names the path.
 * Model loading reports it as a {@code ModelLoadException} of the model directory it
 * belongs to.
 */
public final class TokenizerLoadException extends RuntimeException {

    private final Path path;

    TokenizerLoadException(Path path, String message, @Nullable Throwable cause) {
        super(message, cause);
        this.path = path;
    }

    /** The file at fault. */
    public Path getPath() {
        return path;
    }

}
