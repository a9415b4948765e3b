package dev.specula.grammar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * An immutable description of the allowed output text: a JSON Schema, any JSON object, a
 * literal, or a composition of grammars (for tool-call formats such as
 * <code>&lt;tool_call&gt;\n{...}\n&lt;/tool_call&gt;</code>). Compile it against a
 * vocabulary with {@link CompiledGrammar#compile} or a {@link GrammarCache}.
 *
 * <p>
 * JSON output has no whitespace before its first token nor after its last; between two
 * tokens it has at most one run of whitespace: nothing, one space, or a newline followed
 * by up to 20 spaces or tabs (so a model cannot loop on whitespace). Numbers have at most
 * 16 integer digits, 16 fraction digits and 3 exponent digits. What a JSON Schema may say
 * is described on {@link #jsonSchema(JsonNode)}.
 */
public final class Grammar {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Expr expr;

    private final String key;

    private Grammar(Expr expr, String key) {
        this.expr = expr;
        this.key = key;
    }

    /**
     * The JSON documents valid against {@code schemaJson}; not JSON or not supported:
     * {@link UnsupportedSchemaException}.
     */
    public static Grammar jsonSchema(String schemaJson) {
        JsonNode schema;
        try {
            schema = JSON.readTree(schemaJson);
        }
        catch (JsonProcessingException ex) {
            throw new UnsupportedSchemaException("", "The JSON Schema is not valid JSON: " + ex.getOriginalMessage());
        }
        if (schema == null || schema.isMissingNode()) {
            throw new UnsupportedSchemaException("", "The JSON Schema is empty");
        }
        return jsonSchema(schema);
    }

    /**
     * The JSON documents valid against {@code schema}, as Spring AI's BeanOutputConverter
     * (victools) and OpenAI structured outputs write schemas. Enforced: {@code type} (one
     * or an array), {@code enum}, {@code const}, {@code properties} (written in their
     * order; required ones always, optional ones maybe), {@code required},
     * {@code additionalProperties} ({@code false}; a schema on an object without
     * properties: a map with any string keys; absent or {@code true} on an object with
     * properties: taken as {@code false}, as OpenAI's strict mode and llama.cpp do, and
     * so is the empty schema there; absent or {@code true} without properties: any
     * object; the keys of a map may repeat), {@code items}, {@code minItems},
     * {@code maxItems}, {@code anyOf}, {@code oneOf} (taken as {@code anyOf}: the
     * alternatives are not checked to be exclusive), a one-element {@code allOf},
     * {@code $ref} into {@code $defs} or {@code definitions} or {@code #} (recursion
     * nests at most {@value StateSpace#MAX_DEPTH} rule calls deep), {@code pattern} (a
     * regex subset, matched against the whole string), {@code minLength},
     * {@code maxLength} and {@code format} date, date-time, time, uuid. Annotations
     * ({@code title}, {@code description} and the like) are ignored. Any other keyword is
     * refused with an {@link UnsupportedSchemaException} naming it and its JSON pointer;
     * so is a malformed schema.
     */
    public static Grammar jsonSchema(JsonNode schema) {
        return new Grammar(SchemaTranslator.translate(schema), "json-schema:" + schema);
    }

    /**
     * Any JSON object, objects and arrays nested at most
     * {@value JsonGrammars#MAX_NESTING} levels deep.
     */
    public static Grammar jsonObject() {
        return new Grammar(JsonGrammars.anyObject(), "json-object");
    }

    /**
     * Exactly {@code text}. Where it contains a special token's content, that special
     * token may stand for it.
     */
    public static Grammar literal(String text) {
        return new Grammar(Expr.literal(text), "literal:" + quote(text));
    }

    /** The parts one after the other. */
    public static Grammar sequence(Grammar... parts) {
        return new Grammar(new Expr.Seq(exprs(parts)), "sequence(" + keys(parts) + ")");
    }

    /** Any one of the alternatives. */
    public static Grammar anyOf(Grammar... alternatives) {
        if (alternatives.length == 0) {
            throw new IllegalArgumentException("anyOf needs at least one alternative");
        }
        return new Grammar(new Expr.Alt(exprs(alternatives)), "any-of(" + keys(alternatives) + ")");
    }

    /**
     * {@code min} to {@code max} items ({@code max < 0}: no upper bound) with
     * {@code separator} between two of them.
     */
    public static Grammar repeat(Grammar item, Grammar separator, int min, int max) {
        if (min < 0 || (max >= 0 && max < min)) {
            throw new IllegalArgumentException("repeat needs 0 <= min <= max (or max < 0) but was " + min + ".." + max);
        }
        int upper = (max < 0) ? -1 : max;
        return new Grammar(new Expr.Repeat(item.expr, separator.expr, min, upper),
                "repeat(" + item.key + "," + separator.key + "," + min + "," + upper + ")");
    }

    /**
     * Canonical text: equal grammars have equal keys (what caches look compiled grammars
     * up by).
     */
    public String key() {
        return key;
    }

    Expr expr() {
        return expr;
    }

    private static List<Expr> exprs(Grammar[] grammars) {
        List<Expr> exprs = new ArrayList<>();
        for (Grammar grammar : grammars) {
            exprs.add(grammar.expr);
        }
        return List.copyOf(exprs);
    }

    private static String keys(Grammar[] grammars) {
        return Arrays.stream(grammars).map(Grammar::key).collect(Collectors.joining(","));
    }

    static String quote(String text) {
        try {
            return JSON.writeValueAsString(text);
        }
        catch (JsonProcessingException ex) {
            throw new IllegalStateException(ex);
        }
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof Grammar grammar && grammar.key.equals(key);
    }

    @Override
    public int hashCode() {
        return key.hashCode();
    }

    @Override
    public String toString() {
        return key;
    }

}
