package dev.specula.grammar;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import org.jspecify.annotations.Nullable;

/**
 * A JSON Schema as an {@link Expr}, keyword by keyword (the supported set is documented
 * on {@link Grammar#jsonSchema(JsonNode)}). Every schema object is checked for keywords
 * outside that set: one is refused by name with its JSON pointer, never ignored. Each
 * {@code $ref} target becomes a {@link Rule} (so recursion works and a shared definition
 * is compiled once).
 */
final class SchemaTranslator {

    /** Keywords without effect on the text. */
    private static final Set<String> ANNOTATIONS = Set.of("$schema", "$id", "title", "description", "examples",
            "default", "$comment", "deprecated", "readOnly", "writeOnly");

    /** Containers of definitions: read through {@code $ref} only. */
    private static final Set<String> DEFINITIONS = Set.of("$defs", "definitions");

    private static final Set<String> ENFORCED = Set.of("type", "enum", "const", "properties", "required",
            "additionalProperties", "items", "minItems", "maxItems", "anyOf", "oneOf", "allOf", "$ref", "pattern",
            "minLength", "maxLength", "format");

    private static final Set<String> TYPES = Set.of("object", "array", "string", "number", "integer", "boolean",
            "null");

    private static final Map<String, String> FORMATS = formats();

    private final JsonNode root;

    private final Map<String, Rule> refs = new HashMap<>();

    private SchemaTranslator(JsonNode root) {
        this.root = root;
    }

    static Expr translate(JsonNode schema) {
        return new SchemaTranslator(schema).schema(schema, "");
    }

    private static Map<String, String> formats() {
        // days by month; February 29th only in leap years (by 4, not by 100 unless by
        // 400)
        String date = "([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
                + "|02-(0[1-9]|1[0-9]|2[0-8]))"
                + "|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29)";
        String time = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?";
        // offsets within +-18:00, the range java.time accepts (RFC 3339 allows up to
        // 23:59)
        String offset = "(Z|[+-](0[0-9]|1[0-7]):[0-5][0-9]|[+-]18:00)";
        return Map.of("date", date, "time", time + offset + "?", "date-time", date + "T" + time + offset, "uuid",
                "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
    }

    private static UnsupportedSchemaException unsupported(String keyword, String pointer, String why) {
        return new UnsupportedSchemaException(pointer, "Unsupported JSON Schema keyword \"" + keyword + "\" at "
                + PatternParser.display(pointer) + ": " + why);
    }

    private static UnsupportedSchemaException malformed(String pointer, String what) {
        return new UnsupportedSchemaException(pointer,
                "Invalid JSON Schema at " + PatternParser.display(pointer) + ": " + what);
    }

    private static String child(String pointer, String... tokens) {
        StringBuilder out = new StringBuilder(pointer);
        for (String token : tokens) {
            out.append('/').append(token.replace("~", "~0").replace("/", "~1"));
        }
        return out.toString();
    }

    private Expr schema(JsonNode node, String pointer) {
        if (node.isBoolean()) {
            if (node.asBoolean()) {
                return JsonGrammars.anyValue();
            }
            throw malformed(pointer, "the schema false allows no value");
        }
        if (!node.isObject()) {
            throw malformed(pointer, "a schema must be an object or a boolean, not " + node.getNodeType());
        }
        Set<String> constraints = new LinkedHashSet<>();
        for (Map.Entry<String, JsonNode> field : node.properties()) {
            String keyword = field.getKey();
            if (ENFORCED.contains(keyword)) {
                constraints.add(keyword);
            }
            else if (!ANNOTATIONS.contains(keyword) && !DEFINITIONS.contains(keyword)) {
                throw unsupported(keyword, pointer, "this engine enforces only " + String.join(", ", ENFORCED)
                        + " (and ignores annotations); refusing rather than leaving it unchecked");
            }
        }
        if (constraints.contains("$ref")) {
            alone("$ref", constraints, pointer);
            return new Expr.Call(ref(node.get("$ref"), pointer));
        }
        if (constraints.contains("allOf")) {
            alone("allOf", constraints, pointer);
            JsonNode all = node.get("allOf");
            if (!all.isArray() || all.size() != 1) {
                throw unsupported("allOf", pointer, "only an allOf of exactly one schema is supported");
            }
            return schema(all.get(0), child(pointer, "allOf", "0"));
        }
        for (String union : new String[] { "anyOf", "oneOf" }) {
            if (constraints.contains(union)) {
                alone(union, constraints, pointer);
                JsonNode alternatives = node.get(union);
                if (!alternatives.isArray() || alternatives.isEmpty()) {
                    throw malformed(pointer, union + " must be a non-empty array");
                }
                List<Expr> exprs = new ArrayList<>();
                for (int i = 0; i < alternatives.size(); i++) {
                    exprs.add(schema(alternatives.get(i), child(pointer, union, Integer.toString(i))));
                }
                return new Expr.Alt(exprs);
            }
        }
        Set<String> types = types(node, pointer);
        if (node.has("format") && !types.contains("string") && !node.has("const") && !node.has("enum")) {
            Expr numeric = numericFormat(node.get("format").asText(), types);
            if (numeric == null) {
                throw unsupported("format", pointer,
                        "a format on a non-string type (" + String.join(", ", types)
                                + ") is not enforced; supported formats are " + String.join(", ", FORMATS.keySet())
                                + " on strings, and int32, int64, float, double on integers and numbers");
            }
            return numeric;
        }
        if (node.has("const")) {
            return value(node.get("const"));
        }
        if (node.has("enum")) {
            return enumeration(node.get("enum"), types, pointer);
        }
        List<Expr> alternatives = new ArrayList<>();
        for (String type : types) {
            alternatives.add(typed(type, node, pointer));
        }
        return (alternatives.size() == 1) ? alternatives.get(0) : new Expr.Alt(alternatives);
    }

    /**
     * A numeric format as a grammar whose every number is in the format's range (a subset
     * of it: int32 at most 9 digits, int64 at most 18, float and double without an
     * exponent); null when {@code format} is not numeric or {@code types} are not
     * numbers. Java's schema generators (victools, as Spring AI's BeanOutputConverter
     * uses it) write int32 for every {@code int}.
     */
    private static @Nullable Expr numericFormat(String format, Set<String> types) {
        boolean integer = types.contains("integer");
        boolean number = types.contains("number");
        if (!(integer || number) || types.size() > (integer && number ? 2 : 1)) {
            return null;
        }
        return switch (format) {
            case "int32" -> PatternParser.parse("-?(0|[1-9][0-9]{0,8})", false, "");
            case "int64" -> PatternParser.parse("-?(0|[1-9][0-9]{0,17})", false, "");
            case "float", "double" -> number ? PatternParser.parse("-?(0|[1-9][0-9]{0,15})(\\.[0-9]{1,16})?", false, "")
                    : JsonGrammars.INTEGER;
            default -> null;
        };
    }

    /** Refuses {@code keyword} beside other constraints (annotations may stay). */
    private static void alone(String keyword, Set<String> constraints, String pointer) {
        for (String other : constraints) {
            if (!other.equals(keyword)) {
                throw unsupported(other, pointer, "it is not supported beside \"" + keyword + "\"");
            }
        }
    }

    /**
     * The types a value may have: {@code type} (a name or an array of names), or, without
     * it, what the other keywords imply (all types when nothing does).
     */
    private static Set<String> types(JsonNode node, String pointer) {
        Set<String> types = new LinkedHashSet<>();
        JsonNode type = node.get("type");
        if (type != null) {
            List<JsonNode> names = new ArrayList<>();
            if (type.isArray()) {
                type.forEach(names::add);
            }
            else {
                names.add(type);
            }
            for (JsonNode name : names) {
                if (!name.isTextual() || !TYPES.contains(name.asText())) {
                    throw malformed(child(pointer, "type"), "unknown type " + name);
                }
                types.add(name.asText());
            }
            if (types.isEmpty()) {
                throw malformed(child(pointer, "type"), "an empty type array allows no value");
            }
            return types;
        }
        if (node.has("enum") || node.has("const")) {
            return types;
        }
        if (node.has("properties") || node.has("required") || node.has("additionalProperties")) {
            types.add("object");
        }
        if (node.has("items") || node.has("minItems") || node.has("maxItems")) {
            types.add("array");
        }
        if (node.has("pattern") || node.has("format") || node.has("minLength") || node.has("maxLength")) {
            types.add("string");
        }
        if (types.isEmpty()) {
            types.addAll(List.of("object", "array", "string", "number", "boolean", "null"));
        }
        return types;
    }

    private Expr typed(String type, JsonNode node, String pointer) {
        switch (type) {
            case "object":
                return object(node, pointer);
            case "array":
                return array(node, pointer);
            case "string":
                return string(node, pointer);
            case "number":
                return JsonGrammars.NUMBER;
            case "integer":
                return JsonGrammars.INTEGER;
            case "boolean":
                return JsonGrammars.BOOLEAN;
            default:
                return JsonGrammars.NULL;
        }
    }

    /**
     * The enum's values (of the allowed types, when {@code type} is given), as compact
     * JSON.
     */
    private static Expr enumeration(JsonNode values, Set<String> types, String pointer) {
        if (!values.isArray() || values.isEmpty()) {
            throw malformed(child(pointer, "enum"), "enum must be a non-empty array");
        }
        List<Expr> alternatives = new ArrayList<>();
        for (JsonNode value : values) {
            if (types.isEmpty() || types.contains(typeOf(value))
                    || (types.contains("number") && typeOf(value).equals("integer"))) {
                alternatives.add(value(value));
            }
        }
        if (alternatives.isEmpty()) {
            throw malformed(child(pointer, "enum"), "no enum value has the schema's type " + types);
        }
        return new Expr.Alt(alternatives);
    }

    private static String typeOf(JsonNode value) {
        if (value.isObject()) {
            return "object";
        }
        if (value.isArray()) {
            return "array";
        }
        if (value.isTextual()) {
            return "string";
        }
        if (value.isIntegralNumber()) {
            return "integer";
        }
        if (value.isNumber()) {
            return "number";
        }
        return value.isBoolean() ? "boolean" : "null";
    }

    /** Exactly {@code value}, written as compact JSON. */
    private static Expr value(JsonNode value) {
        return Expr.literal(value.toString());
    }

    private Expr object(JsonNode node, String pointer) {
        JsonNode properties = node.path("properties");
        if (!properties.isMissingNode() && !properties.isObject()) {
            throw malformed(child(pointer, "properties"), "properties must be an object");
        }
        Set<String> required = new LinkedHashSet<>();
        for (JsonNode name : node.path("required")) {
            if (!name.isTextual()) {
                throw malformed(child(pointer, "required"), "required must hold property names");
            }
            if (!properties.has(name.asText())) {
                throw malformed(child(pointer, "required"),
                        "required names \"" + name.asText() + "\", which is not in properties");
            }
            required.add(name.asText());
        }
        JsonNode additional = node.get("additionalProperties");
        boolean additionalSchema = additional != null && !additional.isBoolean();
        if (properties.isObject() && !properties.isEmpty()) {
            if (additionalSchema && !additional.isEmpty()) {
                throw unsupported("additionalProperties", pointer,
                        "a schema for additional properties beside properties is not supported");
            }
            List<Expr> members = new ArrayList<>();
            List<Boolean> flags = new ArrayList<>();
            for (Map.Entry<String, JsonNode> property : properties.properties()) {
                String name = property.getKey();
                Expr value = schema(property.getValue(), child(pointer, "properties", name));
                members.add(JsonGrammars.member(name, value));
                flags.add(required.contains(name));
            }
            return JsonGrammars.object(members, flags);
        }
        if (additional != null && additional.isBoolean() && !additional.asBoolean()) {
            return JsonGrammars.object(List.of(), List.of());
        }
        if (additionalSchema) {
            return JsonGrammars.map(schema(additional, child(pointer, "additionalProperties")));
        }
        return JsonGrammars.anyObject();
    }

    private Expr array(JsonNode node, String pointer) {
        JsonNode items = node.get("items");
        Expr item;
        if (items == null) {
            item = JsonGrammars.anyValue();
        }
        else if (items.isArray()) {
            throw unsupported("items", pointer, "items as an array of schemas (a tuple) is not supported");
        }
        else {
            item = schema(items, child(pointer, "items"));
        }
        int min = count(node, "minItems", pointer, 0);
        int max = count(node, "maxItems", pointer, -1);
        if (max >= 0 && max < min) {
            throw malformed(pointer, "maxItems " + max + " is below minItems " + min);
        }
        return JsonGrammars.array(item, min, max);
    }

    private Expr string(JsonNode node, String pointer) {
        int min = count(node, "minLength", pointer, 0);
        int max = count(node, "maxLength", pointer, -1);
        if (max >= 0 && max < min) {
            throw malformed(pointer, "maxLength " + max + " is below minLength " + min);
        }
        boolean counted = node.has("minLength") || node.has("maxLength");
        JsonNode pattern = node.get("pattern");
        JsonNode format = node.get("format");
        if (pattern != null && format != null) {
            throw unsupported("pattern", pointer, "pattern beside format is not supported");
        }
        if (pattern != null || format != null) {
            if (counted) {
                throw unsupported(node.has("minLength") ? "minLength" : "maxLength", pointer,
                        "a length beside pattern or format is not supported");
            }
            String regex;
            if (pattern != null) {
                if (!pattern.isTextual()) {
                    throw malformed(child(pointer, "pattern"), "pattern must be a string");
                }
                regex = pattern.asText();
            }
            else {
                regex = FORMATS.get(format.asText());
                if (regex == null) {
                    throw new UnsupportedSchemaException(pointer,
                            "Unsupported JSON Schema format \"" + format.asText() + "\" at "
                                    + PatternParser.display(pointer) + ": supported formats are "
                                    + String.join(", ", FORMATS.keySet()));
                }
            }
            return JsonGrammars.quoted(PatternParser.parse(regex, true, pointer));
        }
        if (max > 100_000) {
            throw unsupported("maxLength", pointer, "a maxLength above 100000 is not supported");
        }
        return JsonGrammars.string(min, max);
    }

    /** A non-negative integer keyword, or {@code absent} when missing. */
    private static int count(JsonNode node, String keyword, String pointer, int absent) {
        JsonNode value = node.get(keyword);
        if (value == null) {
            return absent;
        }
        if (!value.canConvertToInt() || !value.isIntegralNumber() || value.asInt() < 0) {
            throw malformed(child(pointer, keyword), keyword + " must be a non-negative integer");
        }
        return value.asInt();
    }

    /**
     * The rule of a local reference ("#", "#/$defs/X", "#/definitions/X", any JSON
     * pointer).
     */
    private Rule ref(JsonNode ref, String pointer) {
        if (!ref.isTextual() || !ref.asText().startsWith("#")) {
            throw unsupported("$ref", pointer, "only local references (#...) are supported, not " + ref);
        }
        String target = ref.asText().substring(1);
        Rule known = refs.get(target);
        if (known != null) {
            return known;
        }
        JsonNode schema = target.isEmpty() ? root : root.at(target);
        if (schema.isMissingNode()) {
            throw malformed(pointer, "$ref " + ref.asText() + " does not resolve");
        }
        Rule rule = new Rule("ref:" + target);
        refs.put(target, rule);
        rule.define(schema(schema, target));
        return rule;
    }

}
