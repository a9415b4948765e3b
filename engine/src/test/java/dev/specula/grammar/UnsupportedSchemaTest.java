package dev.specula.grammar;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import dev.specula.request.InvalidRequestException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * What a schema may not say: each unsupported keyword and malformed schema is refused by
 * name.
 */
class UnsupportedSchemaTest {

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|',
            value = { "minimum|{\"minimum\":0}|/properties/age",
                    "maximum|{\"type\":\"integer\",\"maximum\":9}|/properties/age",
                    "multipleOf|{\"type\":\"number\",\"multipleOf\":2}|/properties/age",
                    "exclusiveMinimum|{\"type\":\"number\",\"exclusiveMinimum\":2}|/properties/age",
                    "not|{\"not\":{\"type\":\"string\"}}|/properties/age",
                    "patternProperties|{\"type\":\"object\",\"patternProperties\":{\"^a\":{}}}|/properties/age",
                    "uniqueItems|{\"type\":\"array\",\"uniqueItems\":true}|/properties/age",
                    "minProperties|{\"type\":\"object\",\"minProperties\":1}|/properties/age",
                    "prefixItems|{\"type\":\"array\",\"prefixItems\":[{}]}|/properties/age",
                    "if|{\"if\":{},\"then\":{}}|/properties/age",
                    "nullable|{\"type\":\"string\",\"nullable\":true}|/properties/age",
                    "allOf|{\"allOf\":[{\"type\":\"string\"},{\"maxLength\":3}]}|/properties/age",
                    "items|{\"type\":\"array\",\"items\":[{\"type\":\"string\"}]}|/properties/age",
                    "type|{\"type\":\"string\",\"anyOf\":[{\"maxLength\":2}]}|/properties/age",
                    "format|{\"type\":\"integer\",\"format\":\"uint8\"}|/properties/age" })
    void unsupportedKeywordsAreRefusedByNameAndPath(String keyword, String ageSchema, String path) {
        String schema = "{\"type\":\"object\",\"properties\":{\"age\":" + ageSchema + "}}";
        assertThatThrownBy(() -> Grammar.jsonSchema(schema)).isInstanceOf(UnsupportedSchemaException.class)
            .isInstanceOf(InvalidRequestException.class)
            .hasMessageStartingWith("Unsupported JSON Schema keyword \"" + keyword + "\" at " + path + ": ")
            .satisfies((ex) -> assertThat(((UnsupportedSchemaException) ex).getPointer()).isEqualTo(path));
    }

    @Test
    void nestedPathsAreEscapedJsonPointers() {
        String schema = "{\"$defs\":{\"A\":{\"type\":\"array\",\"items\":{\"properties\":{\"a/b\":{\"minimum\":1}}}}},"
                + "\"$ref\":\"#/$defs/A\"}";
        assertThatThrownBy(() -> Grammar.jsonSchema(schema))
            .hasMessageStartingWith("Unsupported JSON Schema keyword \"minimum\" at /$defs/A/items/properties/a~1b: ");
    }

    @Test
    void unknownFormatsAreRefused() {
        assertThatThrownBy(() -> Grammar.jsonSchema("{\"type\":\"string\",\"format\":\"email\"}"))
            .isInstanceOf(UnsupportedSchemaException.class)
            .hasMessageContaining("format \"email\"");
    }

    @ParameterizedTest(name = "{1}")
    @CsvSource(delimiter = '|', value = {
            "{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"]}|\"b\", which is not in properties",
            "{\"$ref\":\"#/$defs/Missing\"}|does not resolve", "{\"type\":\"object\",|not valid JSON",
            "{\"type\":\"text\"}|unknown type", "{\"type\":\"array\",\"minItems\":3,\"maxItems\":1}|below minItems",
            "{\"$ref\":\"https://example.com/s.json\"}|only local references",
            "{\"type\":\"string\",\"pattern\":\"(?=a)b\"}|lookaround",
            "{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}|the escape \\1",
            "{\"type\":\"string\",\"pattern\":\"a+?\"}|lazy", "{\"type\":\"string\",\"pattern\":\"a^b\"}|anchor",
            "{\"type\":\"string\",\"pattern\":\"\\\\bword\"}|the escape \\b", "false|allows no value",
            "{\"enum\":[]}|non-empty array" })
    void malformedSchemasAreRefusedWithAClearMessage(String schema, String message) {
        assertThatThrownBy(() -> Grammar.jsonSchema(schema)).isInstanceOf(UnsupportedSchemaException.class)
            .hasMessageContaining(message);
    }

    @Test
    void annotationsAndTrivialAllOfAreAccepted() {
        String schema = """
                {"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"urn:x","title":"T",
                 "description":"d","$comment":"c","type":"object","properties":{
                   "a":{"allOf":[{"type":"string"}],"examples":["x"],"default":"x","deprecated":true,
                        "readOnly":false,"writeOnly":false}}}
                """;
        assertThat(Grammar.jsonSchema(schema).key()).startsWith("json-schema:");
    }

}
