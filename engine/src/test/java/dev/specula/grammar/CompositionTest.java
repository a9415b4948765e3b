package dev.specula.grammar;

import java.nio.charset.StandardCharsets;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Tool-call formats built from literals, schemas, sequences, alternatives and repeats; a
 * special token allowed where a literal spells it; the compiled-grammar cache.
 */
class CompositionTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static final String WEATHER = "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
            + "\"unit\":{\"enum\":[\"c\",\"f\"]}},\"required\":[\"city\"]}";

    /** {"name": "f", "arguments": {...}} for one of two functions. */
    private static Grammar call(String argumentsKey) {
        Grammar weather = Grammar.sequence(Grammar.literal("{\"name\": \"get_weather\", \"" + argumentsKey + "\": "),
                Grammar.jsonSchema(WEATHER), Grammar.literal("}"));
        Grammar time = Grammar.sequence(Grammar.literal("{\"name\": \"get_time\", \"" + argumentsKey + "\": "),
                Grammar.jsonSchema("{\"type\":\"object\",\"properties\":{\"zone\":{\"type\":\"string\"}},"
                        + "\"additionalProperties\":false}"),
                Grammar.literal("}"));
        return Grammar.anyOf(weather, time);
    }

    @Test
    void hermesToolCallsRepeatedWithNewlines() throws Exception {
        Grammar one = Grammar.sequence(Grammar.literal("<tool_call>\n"), call("arguments"),
                Grammar.literal("\n</tool_call>"));
        Grammar calls = Grammar.repeat(one, Grammar.literal("\n"), 1, 3);
        for (String model : new String[] { "qwen-vocab", "tiny" }) {
            TokenVocabulary vocabulary = Vocabularies.fixture(model);
            CompiledGrammar grammar = CompiledGrammar.compile(calls, vocabulary, new int[] { 0 });
            Random random = new Random(5);
            Pattern block = Pattern.compile("<tool_call>\n(.*?)\n</tool_call>", Pattern.DOTALL);
            for (int walk = 0; walk < 10; walk++) {
                String text = Walks.random(grammar, vocabulary, random).text();
                Matcher matcher = block.matcher(text);
                int count = 0;
                int end = 0;
                while (matcher.find()) {
                    assertThat(matcher.start()).isEqualTo((count == 0) ? 0 : end + 1);
                    JsonNode call = JSON.readTree(matcher.group(1));
                    assertThat(call.get("name").asText()).isIn("get_weather", "get_time");
                    assertThat(call.get("arguments").isObject()).isTrue();
                    end = matcher.end();
                    count++;
                }
                assertThat(count).as(text).isBetween(1, 3);
                assertThat(end).isEqualTo(text.length());
            }
        }
    }

    @Test
    void mistralToolCallsMayUseTheSpecialToken() {
        // a vocabulary with [TOOL_CALLS] special (id 1) and single bytes
        byte[][] bytes = new byte[258][];
        boolean[] special = new boolean[258];
        bytes[0] = "</s>".getBytes(StandardCharsets.UTF_8);
        special[0] = true;
        bytes[1] = "[TOOL_CALLS]".getBytes(StandardCharsets.UTF_8);
        special[1] = true;
        for (int b = 0; b < 256; b++) {
            bytes[b + 2] = new byte[] { (byte) b };
        }
        TokenVocabulary vocabulary = TokenVocabulary.of(bytes, special);
        Grammar calls = Grammar.sequence(Grammar.literal("[TOOL_CALLS] ["),
                Grammar.repeat(call("arguments"), Grammar.literal(", "), 1, -1), Grammar.literal("]"));
        CompiledGrammar grammar = CompiledGrammar.compile(calls, vocabulary, new int[] { 0 });
        GrammarMatcher matcher = grammar.newMatcher();
        assertThat(matcher.isAllowed(1)).isTrue();
        assertThat(matcher.isAllowed(2 + '[')).as("the text spelling too").isTrue();
        matcher.advance(1);
        assertThat(matcher.isAllowed(1)).isFalse();
        assertThat(matcher.isAllowed(2 + ' ')).isTrue();
        // inside the arguments, the special token is never allowed
        for (byte b : " [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"".getBytes(StandardCharsets.UTF_8)) {
            matcher.advance(2 + (b & 0xFF));
        }
        assertThat(matcher.isAllowed(1)).isFalse();
        float[] logits = new float[258];
        matcher.mask(logits, 0, 258);
        assertThat(logits[1]).isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(logits[2 + 'x']).isZero();
        Random random = new Random(9);
        for (int walk = 0; walk < 5; walk++) {
            assertThat(Walks.random(grammar, vocabulary, random).text()).startsWith("[TOOL_CALLS] [{\"name\": \"get_")
                .endsWith("}]");
        }
    }

    @Test
    void llamaPythonTagOrJson() {
        TokenVocabulary vocabulary = Vocabularies.fixture("llama3");
        Grammar grammar = Grammar.anyOf(Grammar.sequence(Grammar.literal("<|eot_id|>"), Grammar.literal("x")),
                call("parameters"));
        // <|eot_id|> (id 4) is special: allowed where the literal spells it
        CompiledGrammar compiled = CompiledGrammar.compile(grammar, vocabulary, new int[] { 1 });
        GrammarMatcher matcher = compiled.newMatcher();
        assertThat(matcher.isAllowed(4)).isTrue();
        assertThat(matcher.isAllowed(0)).isFalse();
        matcher.advance(4);
        for (int token : Walks.greedy(vocabulary, "x")) {
            matcher.advance(token);
        }
        assertThat(matcher.isTerminated()).isTrue();
        assertThat(matcher.isAllowed(1)).isTrue();
        Random random = new Random(2);
        for (int walk = 0; walk < 5; walk++) {
            String text = Walks.random(compiled, vocabulary, random).text();
            assertThat(text.equals("<|eot_id|>x") || text.startsWith("{\"name\": \"get_")).as(text).isTrue();
        }
    }

    @Test
    void keysAreCanonicalAndTheCacheKeepsCompiledGrammars() {
        Grammar a = Grammar.sequence(Grammar.literal("x"), Grammar.jsonSchema(WEATHER));
        Grammar b = Grammar.sequence(Grammar.literal("x"), Grammar.jsonSchema(WEATHER));
        assertThat(a.key()).isEqualTo(b.key());
        assertThat(a).isEqualTo(b);
        assertThat(Grammar.literal("a,b").key())
            .isNotEqualTo(Grammar.sequence(Grammar.literal("a"), Grammar.literal("b")).key());
        assertThat(Grammar.repeat(Grammar.literal("a"), Grammar.literal(""), 0, -5).key())
            .isEqualTo(Grammar.repeat(Grammar.literal("a"), Grammar.literal(""), 0, -1).key());
        GrammarCache cache = new GrammarCache(Vocabularies.fixture("qwen-vocab"), new int[] { 0 }, 2);
        CompiledGrammar first = cache.get(a);
        assertThat(cache.get(b)).isSameAs(first);
        cache.get(Grammar.literal("1"));
        cache.get(a);
        cache.get(Grammar.literal("2"));
        assertThat(cache.size()).isEqualTo(2);
        assertThat(cache.get(a)).isSameAs(first);
        assertThat(cache.get(Grammar.literal("1"))).isNotNull();
    }

}
