package dev.specula.grammar;

import dev.specula.request.InvalidRequestException;

/**
 * A JSON Schema that cannot be turned into a grammar: a keyword this engine does not
 * enforce (named with its JSON pointer, e.g. {@code "minimum" at /properties/age}), a
 * malformed schema (not JSON, {@code required} naming an absent property, an unresolvable
 * {@code $ref}) or one too large. A schema is never silently left unconstrained: anything
 * not enforced is refused with this exception.
 */
public class UnsupportedSchemaException extends InvalidRequestException {

    private final String pointer;

    /**
     * {@code pointer}: the JSON pointer of the offending schema ("" for the root).
     */
    public UnsupportedSchemaException(String pointer, String message) {
        super(null, "unsupported_schema", message);
        this.pointer = pointer;
    }

    /** The JSON pointer of the offending schema, "" for the root. */
    public String getPointer() {
        return pointer;
    }

}
