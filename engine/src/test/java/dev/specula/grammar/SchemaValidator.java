package dev.specula.grammar;

import java.time.LocalDate;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.OffsetTime;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * A small JSON Schema validator for the keywords grammars enforce, independent of the
 * grammar code: what random outputs are checked against. It also checks that properties
 * come in the schema's order and that no property outside {@code properties} appears.
 */
final class SchemaValidator {

    private final JsonNode root;

    private final List<String> errors = new ArrayList<>();

    private SchemaValidator(JsonNode root) {
        this.root = root;
    }

    /** The errors of {@code value} against {@code schema} (empty: valid). */
    static List<String> validate(JsonNode value, JsonNode schema) {
        SchemaValidator validator = new SchemaValidator(schema);
        validator.check(value, schema, "");
        return validator.errors;
    }

    private boolean valid(JsonNode value, JsonNode schema) {
        SchemaValidator nested = new SchemaValidator(root);
        nested.check(value, schema, "");
        return nested.errors.isEmpty();
    }

    private void check(JsonNode value, JsonNode schema, String at) {
        if (schema.isBoolean()) {
            return;
        }
        if (schema.has("$ref")) {
            String ref = schema.get("$ref").asText().substring(1);
            check(value, ref.isEmpty() ? root : root.at(ref), at);
            return;
        }
        for (String union : new String[] { "anyOf", "oneOf" }) {
            if (schema.has(union)) {
                boolean any = false;
                for (JsonNode alternative : schema.get(union)) {
                    any |= valid(value, alternative);
                }
                if (!any) {
                    errors.add(at + ": no " + union + " alternative matches " + value);
                }
                return;
            }
        }
        if (schema.has("allOf")) {
            check(value, schema.get("allOf").get(0), at);
            return;
        }
        if (schema.has("const") && !schema.get("const").equals(value)) {
            errors.add(at + ": not the const " + schema.get("const"));
        }
        if (schema.has("enum")) {
            boolean found = false;
            for (JsonNode option : schema.get("enum")) {
                found |= option.equals(value);
            }
            if (!found) {
                errors.add(at + ": " + value + " not in enum");
            }
        }
        if (schema.has("type")) {
            JsonNode type = schema.get("type");
            boolean matches = false;
            if (type.isArray()) {
                for (JsonNode name : type) {
                    matches |= hasType(value, name.asText());
                }
            }
            else {
                matches = hasType(value, type.asText());
            }
            if (!matches) {
                errors.add(at + ": " + value + " is not of type " + type);
                return;
            }
        }
        if (value.isObject()) {
            checkObject(value, schema, at);
        }
        if (value.isArray()) {
            if (schema.has("minItems") && value.size() < schema.get("minItems").asInt()) {
                errors.add(at + ": fewer than minItems");
            }
            if (schema.has("maxItems") && value.size() > schema.get("maxItems").asInt()) {
                errors.add(at + ": more than maxItems");
            }
            if (schema.has("items")) {
                for (int i = 0; i < value.size(); i++) {
                    check(value.get(i), schema.get("items"), at + "/" + i);
                }
            }
        }
        if (value.isTextual()) {
            checkString(value.asText(), schema, at);
        }
    }

    private void checkObject(JsonNode value, JsonNode schema, String at) {
        JsonNode properties = schema.path("properties");
        for (JsonNode name : schema.path("required")) {
            if (!value.has(name.asText())) {
                errors.add(at + ": missing required " + name);
            }
        }
        if (properties.isObject() && !properties.isEmpty()) {
            List<String> order = new ArrayList<>();
            properties.fieldNames().forEachRemaining(order::add);
            int last = -1;
            for (Iterator<String> names = value.fieldNames(); names.hasNext();) {
                String name = names.next();
                int index = order.indexOf(name);
                if (index < 0) {
                    errors.add(at + ": property " + name + " not in properties");
                }
                else if (index <= last) {
                    errors.add(at + ": property " + name + " out of order");
                }
                last = Math.max(last, index);
            }
        }
        for (Map.Entry<String, JsonNode> field : value.properties()) {
            JsonNode propertySchema = properties.get(field.getKey());
            if (propertySchema != null) {
                check(field.getValue(), propertySchema, at + "/" + field.getKey());
            }
            else if (schema.has("additionalProperties")) {
                JsonNode additional = schema.get("additionalProperties");
                if (additional.isBoolean() && !additional.asBoolean()) {
                    errors.add(at + ": additional property " + field.getKey());
                }
                else {
                    check(field.getValue(), additional, at + "/" + field.getKey());
                }
            }
        }
    }

    private void checkString(String text, JsonNode schema, String at) {
        int length = text.codePointCount(0, text.length());
        if (schema.has("minLength") && length < schema.get("minLength").asInt()) {
            errors.add(at + ": shorter than minLength");
        }
        if (schema.has("maxLength") && length > schema.get("maxLength").asInt()) {
            errors.add(at + ": longer than maxLength");
        }
        if (schema.has("pattern") && !Pattern.compile(schema.get("pattern").asText()).matcher(text).find()) {
            errors.add(at + ": " + text + " does not match " + schema.get("pattern"));
        }
        if (schema.has("format")) {
            try {
                switch (schema.get("format").asText()) {
                    case "date" -> LocalDate.parse(text);
                    case "date-time" -> OffsetDateTime.parse(text);
                    case "time" -> {
                        if (text.length() > 8
                                && (text.endsWith("Z") || text.contains("+") || text.lastIndexOf('-') > 0)) {
                            OffsetTime.parse(text);
                        }
                        else {
                            LocalTime.parse(text);
                        }
                    }
                    case "uuid" -> {
                        if (!UUID.fromString(text).toString().equalsIgnoreCase(text)) {
                            errors.add(at + ": " + text + " is not a canonical uuid");
                        }
                    }
                    default -> errors.add(at + ": unknown format");
                }
            }
            catch (RuntimeException ex) {
                errors.add(at + ": " + text + " is not a " + schema.get("format").asText() + ": " + ex.getMessage());
            }
        }
    }

    private static boolean hasType(JsonNode value, String type) {
        return switch (type) {
            case "object" -> value.isObject();
            case "array" -> value.isArray();
            case "string" -> value.isTextual();
            case "integer" -> value.isIntegralNumber();
            case "number" -> value.isNumber();
            case "boolean" -> value.isBoolean();
            case "null" -> value.isNull();
            default -> false;
        };
    }

}
