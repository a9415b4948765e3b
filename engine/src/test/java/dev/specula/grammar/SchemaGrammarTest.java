package dev.specula.grammar;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import dev.specula.tokenizer.TextTokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * JSON Schema grammars end to end: random walks through the allowed tokens always end in
 * a document that parses and validates; known documents are accepted token by token and
 * broken ones refused at the token that breaks them.
 */
class SchemaGrammarTest {

    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /**
     * A BeanOutputConverter-like record: nested record, list, enum, map, date, nullable.
     */
    static final String PERSON = """
            {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
             "properties":{
               "name":{"type":"string"},
               "age":{"type":"integer"},
               "address":{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}},
                          "required":["street","city"],"additionalProperties":false},
               "tags":{"type":"array","items":{"type":"string"}},
               "role":{"type":"string","enum":["ADMIN","USER","GUEST"]},
               "birthday":{"type":"string","format":"date"},
               "scores":{"type":"object","additionalProperties":{"type":"number"}},
               "nickname":{"anyOf":[{"type":"string"},{"type":"null"}]},
               "active":{"type":"boolean","description":"whether the account is active"}},
             "required":["name","age","address","tags","role"],"additionalProperties":false}
            """;

    /** A recursive tree through $defs. */
    static final String TREE = """
            {"$defs":{"Node":{"type":"object","properties":{"value":{"type":"integer"},
               "children":{"type":"array","items":{"$ref":"#/$defs/Node"},"maxItems":2}},
               "required":["value","children"]}},
             "$ref":"#/$defs/Node"}
            """;

    /** Patterns, formats, lengths. */
    static final String CODES = """
            {"type":"object","properties":{
               "code":{"type":"string","pattern":"^[A-Z]{2}-\\\\d{3,5}$"},
               "sku":{"type":"string","pattern":"(ab|c[^a-z\\"]d)+x?"},
               "id":{"type":"string","format":"uuid"},
               "at":{"type":"string","format":"date-time"},
               "when":{"type":"string","format":"time"},
               "short":{"type":"string","minLength":2,"maxLength":5}},
             "required":["code","sku","id","at","short"]}
            """;

    /** Recursion through "#" with anyOf null; definitions; type arrays; min/max items. */
    static final String LINKED = """
            {"type":"object","properties":{"name":{"type":"string","maxLength":8},
               "next":{"anyOf":[{"$ref":"#"},{"type":"null"}]}},
             "required":["name","next"]}
            """;

    static final String ITEMS = """
            {"definitions":{"Item":{"type":["object","null"],"properties":{"n":{"type":"number"},
               "ok":{"type":"boolean"},"kind":{"const":"x"}},"required":["n"]}},
             "type":"array","items":{"$ref":"#/definitions/Item"},"minItems":1,"maxItems":4}
            """;

    static List<Arguments> schemasAndVocabularies() {
        return List.of(Arguments.of("person", PERSON, "qwen-vocab"), Arguments.of("person", PERSON, "tiny"),
                Arguments.of("person", PERSON, "stories260K"), Arguments.of("tree", TREE, "llama3"),
                Arguments.of("codes", CODES, "tiny"), Arguments.of("codes", CODES, "mistral"),
                Arguments.of("linked", LINKED, "qwen-vocab"), Arguments.of("items", ITEMS, "stories260K"),
                Arguments.of("items", ITEMS, "tiny"));
    }

    @ParameterizedTest(name = "{0} on {2}")
    @MethodSource("schemasAndVocabularies")
    void randomWalksEndInValidDocuments(String name, String schema, String model) throws JsonProcessingException {
        TokenVocabulary vocabulary = Vocabularies.fixture(model);
        int end = endId(vocabulary);
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema(schema), vocabulary, new int[] { end });
        Random random = new Random(name.hashCode() + model.hashCode());
        JsonNode schemaNode = JSON.readTree(schema);
        for (int walk = 0; walk < 12; walk++) {
            Walks.Walk result = Walks.random(grammar, vocabulary, random);
            JsonNode document = JSON.readTree(result.text());
            assertThat(SchemaValidator.validate(document, schemaNode)).as(result.text()).isEmpty();
        }
    }

    /** The first special token: the fixtures' end-of-text. */
    static int endId(TokenVocabulary vocabulary) {
        for (int id = 0; id < vocabulary.size(); id++) {
            if (vocabulary.isSpecial(id)) {
                return id;
            }
        }
        throw new IllegalStateException("no special token");
    }

    @Test
    void documentsTokenizedByTheTokenizerAreAcceptedTokenByToken() {
        String[] documents = {
                """
                        {"name": "Ada Lovelace", "age": 36, "address": {"street": "12 St James's Sq", "city": "London"}, \
                        "tags": ["math", "poetry \\"science\\"", "\\u00e9t\\u00E9"], "role": "ADMIN", "birthday": "1815-12-10", \
                        "scores": {"analysis": 9.5, "engines": -1.25e3}, "nickname": null, "active": true}""",
                "{\"name\":\"Z\u00fcrich \u65e5\u672c \ud83d\ude00\",\"age\":-7,\"address\":{\"street\":\"\",\"city\":\"x\"},"
                        + "\"tags\":[],\"role\":\"GUEST\"}" };
        for (String model : new String[] { "qwen-vocab", "tiny", "llama3" }) {
            TokenVocabulary vocabulary = Vocabularies.fixture(model);
            CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema(PERSON), vocabulary,
                    new int[] { endId(vocabulary) });
            try (TextTokenizer tokenizer = TextTokenizer.load(Vocabularies.tokenizer(model))) {
                for (String document : documents) {
                    GrammarMatcher matcher = grammar.newMatcher();
                    for (int token : tokenizer.encode(document, false)) {
                        assertThat(matcher.isAllowed(token)).as("%s: token %d of %s", model, token, document).isTrue();
                        matcher.advance(token);
                    }
                    assertThat(matcher.isComplete()).isTrue();
                    assertThat(matcher.isTerminated()).isTrue();
                    assertThat(matcher.isAllowed(endId(vocabulary))).isTrue();
                }
            }
        }
    }

    @Test
    void brokenDocumentsAreRefusedAtTheTokenThatBreaksThem() {
        TokenVocabulary vocabulary = Vocabularies.fixture("stories260K");
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema(PERSON), vocabulary, new int[] { 2 });
        String valid = "{\"name\":\"A\",\"age\":3,\"address\":{\"street\":\"s\",\"city\":\"c\"},\"tags\":[],"
                + "\"role\":\"USER\"}";
        // prefix that is fine, then the byte that breaks it
        String[][] broken = { { "{\"name\":\"A\",", "\"role\"" }, // required age skipped
                { "{\"name\":\"A\",\"age\":", "3.5" }, // integer
                { "{\"name\":\"A\",\"age\":3,\"address\":{\"street\":\"s\",\"city\":\"c\"", ",\"zip\"" },
                { "{\"name\":\"A\",\"age\":3,\"address\":{\"street\":\"s\",\"city\":\"c\"},\"tags\":[],\"role\":\"",
                        "ROOT\"" },
                { "{\"name\":\"A", "\n" }, // raw control character in a string
                { "{\"name\":\"A\",\"age\":3,\"address\":{\"street\":\"s\",\"city\":\"c\"},\"tags\":[],"
                        + "\"role\":\"USER\",\"birthday\":\"2024-", "13" } };
        assertAccepted(grammar, vocabulary, valid);
        for (String[] pair : broken) {
            GrammarMatcher matcher = grammar.newMatcher();
            for (int token : Walks.greedy(vocabulary, pair[0])) {
                matcher.advance(token);
            }
            int[] rest = Walks.greedy(vocabulary, pair[1]);
            int refusedAt = -1;
            for (int i = 0; i < rest.length && refusedAt < 0; i++) {
                if (matcher.isAllowed(rest[i])) {
                    matcher.advance(rest[i]);
                }
                else {
                    refusedAt = i;
                }
            }
            assertThat(refusedAt).as("%s + %s", pair[0], pair[1]).isGreaterThanOrEqualTo(0);
            int[] refused = rest;
            int at = refusedAt;
            assertThatThrownBy(() -> matcher.advance(refused[at])).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Token " + refused[at]);
        }
    }

    private static void assertAccepted(CompiledGrammar grammar, TokenVocabulary vocabulary, String text) {
        GrammarMatcher matcher = grammar.newMatcher();
        for (int token : Walks.greedy(vocabulary, text)) {
            matcher.advance(token);
        }
        assertThat(matcher.isComplete()).as(text).isTrue();
    }

    @Test
    void multiByteCharactersSplitAcrossTokensAreAccepted() {
        TokenVocabulary vocabulary = Vocabularies.fixture("stories260K");
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema("{\"type\":\"string\"}"), vocabulary,
                new int[] { 2 });
        GrammarMatcher matcher = grammar.newMatcher();
        matcher.advance(Walks.greedy(vocabulary, "\"")[0]);
        // U+65E5 is E6 97 A5: three byte-fallback tokens
        byte[] utf8 = "\u65e5".getBytes(StandardCharsets.UTF_8);
        int[] pieces = new int[3];
        for (int id = 0; id < vocabulary.size(); id++) {
            byte[] bytes = vocabulary.bytes(id);
            for (int i = 0; i < 3; i++) {
                if (bytes != null && bytes.length == 1 && bytes[0] == utf8[i]) {
                    pieces[i] = id;
                }
            }
        }
        int quote = Walks.greedy(vocabulary, "\"")[0];
        matcher.advance(pieces[0]);
        assertThat(matcher.isAllowed(quote)).as("a quote inside a character").isFalse();
        assertThat(matcher.isAllowed(pieces[0])).as("a lead byte after a lead byte").isFalse();
        matcher.advance(pieces[1]);
        matcher.advance(pieces[2]);
        assertThat(matcher.isAllowed(quote)).isTrue();
        matcher.advance(quote);
        assertThat(matcher.isTerminated()).isTrue();
    }

}
