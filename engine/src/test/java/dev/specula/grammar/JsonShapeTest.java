package dev.specula.grammar;

import java.util.Random;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * JSON mode and the shape rules every JSON grammar shares: bounded whitespace and
 * nesting.
 */
class JsonShapeTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** A vocabulary of the single bytes (id b + 1) and an end token (id 0). */
    private static final TokenVocabulary BYTES = bytes();

    private static TokenVocabulary bytes() {
        byte[][] bytes = new byte[257][];
        boolean[] special = new boolean[257];
        bytes[0] = "<end>".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        special[0] = true;
        for (int b = 0; b < 256; b++) {
            bytes[b + 1] = new byte[] { (byte) b };
        }
        return TokenVocabulary.of(bytes, special);
    }

    private static boolean accepts(CompiledGrammar grammar, String text) {
        GrammarMatcher matcher = grammar.newMatcher();
        for (byte b : text.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
            if (!matcher.isAllowed((b & 0xFF) + 1)) {
                return false;
            }
            matcher.advance((b & 0xFF) + 1);
        }
        return matcher.isComplete();
    }

    @Test
    void jsonObjectAcceptsAnyObjectAndOnlyObjects() throws Exception {
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonObject(), BYTES, new int[] { 0 });
        assertThat(accepts(grammar, "{}")).isTrue();
        assertThat(accepts(grammar, "{\"a\": [1, -2.5e+3, true, null, \"x\\n\", {\"b\": {}}], \"\": []}")).isTrue();
        assertThat(accepts(grammar, "[]")).isFalse();
        assertThat(accepts(grammar, "\"x\"")).isFalse();
        assertThat(accepts(grammar, "{\"a\" 1}")).isFalse();
        assertThat(accepts(grammar, "{\"a\": 01}")).isFalse();
        assertThat(accepts(grammar, "{\"a\": [1,]}")).isFalse();
        TokenVocabulary tiny = Vocabularies.fixture("tiny");
        CompiledGrammar onTiny = CompiledGrammar.compile(Grammar.jsonObject(), tiny, new int[] { 0 });
        Random random = new Random(1);
        for (int walk = 0; walk < 10; walk++) {
            JsonNode document = JSON.readTree(Walks.random(onTiny, tiny, random).text());
            assertThat(document.isObject()).isTrue();
        }
    }

    @Test
    void jsonObjectNestsAtMost64Levels() {
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonObject(), BYTES, new int[] { 0 });
        String deepest = "{\"a\":" + "[".repeat(63) + "]".repeat(63) + "}";
        assertThat(accepts(grammar, deepest)).isTrue();
        String tooDeep = "{\"a\":" + "[".repeat(64) + "]".repeat(64) + "}";
        assertThat(accepts(grammar, tooDeep)).isFalse();
    }

    @Test
    void numericFormatsKeepEveryNumberInRange() {
        // victools (Spring AI's BeanOutputConverter) writes int32 for every Java int
        CompiledGrammar int32 = CompiledGrammar
            .compile(Grammar.jsonSchema("{\"type\":\"integer\",\"format\":\"int32\"}"), BYTES, new int[] { 0 });
        assertThat(accepts(int32, "-123456789")).isTrue();
        assertThat(accepts(int32, "1234567890")).isFalse();
        CompiledGrammar int64 = CompiledGrammar
            .compile(Grammar.jsonSchema("{\"type\":\"integer\",\"format\":\"int64\"}"), BYTES, new int[] { 0 });
        assertThat(accepts(int64, "9".repeat(18))).isTrue();
        assertThat(accepts(int64, "9".repeat(19))).isFalse();
        CompiledGrammar dbl = CompiledGrammar.compile(Grammar.jsonSchema("{\"type\":\"number\",\"format\":\"double\"}"),
                BYTES, new int[] { 0 });
        assertThat(accepts(dbl, "-1.25")).isTrue();
        assertThat(accepts(dbl, "1e999")).isFalse();
    }

    @Test
    void whitespaceBetweenTokensIsBounded() {
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonObject(), BYTES, new int[] { 0 });
        // compact JSON: at most one space between two tokens, no newline
        assertThat(accepts(grammar, "{ \"a\" : 1 }")).isTrue();
        assertThat(accepts(grammar, "{\"a\":1}")).isTrue();
        assertThat(accepts(grammar, "{\n\"a\":1}")).isFalse();
        assertThat(accepts(grammar, "{  \"a\":1}")).isFalse();
        assertThat(accepts(grammar, " {}")).isFalse();
        assertThat(accepts(grammar, "{}\n")).isFalse();
    }

    @Test
    void stringsTakeEscapesAndValidUtf8Only() {
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema("{\"type\":\"string\"}"), BYTES,
                new int[] { 0 });
        assertThat(accepts(grammar, "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00E9 \u00e9 \u65e5 \ud83d\ude00\""))
            .isTrue();
        assertThat(accepts(grammar, "\"\\x\"")).isFalse();
        assertThat(accepts(grammar, "\"\t\"")).isFalse();
        GrammarMatcher matcher = grammar.newMatcher();
        matcher.advance('"' + 1);
        // C0 and F5..FF never start a character; a continuation byte never starts one
        for (int b : new int[] { 0xC0, 0xC1, 0xF5, 0xFF, 0x80, 0xBF }) {
            assertThat(matcher.isAllowed(b + 1)).as("byte %x", b).isFalse();
        }
        matcher.advance(0xED + 1);
        // ED A0..BF would be a surrogate
        assertThat(matcher.isAllowed(0xA0 + 1)).isFalse();
        assertThat(matcher.isAllowed(0x9F + 1)).isTrue();
    }

    @Test
    void patternsMatchTheWholeStringAndEscapeWhatJsonNeeds() {
        CompiledGrammar grammar = CompiledGrammar.compile(
                Grammar.jsonSchema("{\"type\":\"string\",\"pattern\":\"^a[\\\"\\\\\\\\]?\\\\d{2}(x|yz)*$\"}"), BYTES,
                new int[] { 0 });
        assertThat(accepts(grammar, "\"a12\"")).isTrue();
        assertThat(accepts(grammar, "\"a\\\"12xyzx\"")).isTrue();
        assertThat(accepts(grammar, "\"a\\\\12\"")).isTrue();
        assertThat(accepts(grammar, "\"a1\"")).isFalse();
        assertThat(accepts(grammar, "\"ba12\"")).isFalse();
        assertThat(accepts(grammar, "\"a12y\"")).isFalse();
    }

    @Test
    void optionalPropertiesMayBeSkippedInOrder() {
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema("""
                {"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},"c":{"type":"integer"}},
                 "required":["b"]}
                """), BYTES, new int[] { 0 });
        assertThat(accepts(grammar, "{\"b\":1}")).isTrue();
        assertThat(accepts(grammar, "{\"a\":1,\"b\":2,\"c\":3}")).isTrue();
        assertThat(accepts(grammar, "{\"b\":2,\"c\":3}")).isTrue();
        assertThat(accepts(grammar, "{\"a\":1,\"c\":3}")).isFalse();
        assertThat(accepts(grammar, "{\"b\":2,\"a\":1}")).isFalse();
        assertThat(accepts(grammar, "{\"b\":2,}")).isFalse();
        assertThat(accepts(grammar, "{\"b\":2,\"d\":1}")).isFalse();
    }

    @Test
    void recursiveSchemasNestUpToTheStackBound() {
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema("""
                {"$defs":{"A":{"anyOf":[{"type":"array","items":{"$ref":"#/$defs/A"}},{"type":"null"}]}},
                 "$ref":"#/$defs/A"}
                """), BYTES, new int[] { 0 });
        assertThat(accepts(grammar, "[[null, []], null]")).isTrue();
        assertThat(accepts(grammar, "[1]")).isFalse();
        // each level is one $ref call, one stack frame: at most 256
        assertThat(accepts(grammar, "[".repeat(250) + "]".repeat(250))).isTrue();
        assertThat(accepts(grammar, "[".repeat(260) + "]".repeat(260))).isFalse();
    }

    @Test
    void leftRecursionEndsAtTheStackBound() {
        CompiledGrammar grammar = CompiledGrammar
            .compile(Grammar.jsonSchema("{\"anyOf\":[{\"$ref\":\"#\"},{\"type\":\"null\"}]}"), BYTES, new int[] { 0 });
        assertThat(accepts(grammar, "null")).isTrue();
        assertThat(accepts(grammar, "nul")).isFalse();
        GrammarMatcher matcher = grammar.newMatcher();
        for (byte b : "null".getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
            matcher.advance((b & 0xFF) + 1);
        }
        assertThat(matcher.isTerminated()).isTrue();
    }

    @Test
    void compositionArgumentsAreChecked() {
        assertThatThrownBy(() -> Grammar.repeat(Grammar.literal("a"), Grammar.literal(","), 3, 2))
            .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Grammar.repeat(Grammar.literal("a"), Grammar.literal(","), -1, 2))
            .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(Grammar::anyOf).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> CompiledGrammar.compile(Grammar.jsonObject(), BYTES, new int[] { 257 }))
            .isInstanceOf(IllegalArgumentException.class)
            .hasMessageContaining("257");
    }

}
