package dev.specula.request;

import org.jspecify.annotations.Nullable;

/**
 * A caller's mistake: a request field whose value cannot be served (a bad sampling value,
 * max tokens, stop string, policy, a prompt too long). Servers answer it 400 naming
 * {@link #getField()}, the CLI exits 2 with its message. {@link IllegalArgumentException}
 * stays for programming errors: a server answers those 500.
 */
public class InvalidRequestException extends RuntimeException {

    private final @Nullable String field;

    private final @Nullable String code;

    /**
     * {@code field}: the offending field, or null when the request as a whole is wrong.
     */
    public InvalidRequestException(@Nullable String field, String message) {
        this(field, null, message, null);
    }

    /**
     * {@code code}: a machine-readable reason (e.g. {@code context_length_exceeded}), or
     * null.
     */
    public InvalidRequestException(@Nullable String field, @Nullable String code, String message) {
        this(field, code, message, null);
    }

    public InvalidRequestException(@Nullable String field, @Nullable String code, String message,
            @Nullable Throwable cause) {
        super(message, cause);
        this.field = field;
        this.code = code;
    }

    /**
     * The offending field (e.g. {@code temperature}, {@code messages[1].role}), or null.
     */
    public @Nullable String getField() {
        return field;
    }

    /** A machine-readable reason, or null. */
    public @Nullable String getCode() {
        return code;
    }

}
