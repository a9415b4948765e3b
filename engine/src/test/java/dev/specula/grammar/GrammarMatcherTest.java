package dev.specula.grammar;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The matcher's contract: marks and resets, masks that agree with isAllowed on every id,
 * argmaxAllowed as an argmax over the masked row, end tokens only when complete, special
 * tokens never inside JSON, padded rows and holes never allowed.
 */
class GrammarMatcherTest {

    private static final String SCHEMA = SchemaGrammarTest.PERSON;

    @Test
    void resetToReturnsToTheStateAfterThatManyTokens() {
        TokenVocabulary vocabulary = Vocabularies.fixture("qwen-vocab");
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema(SCHEMA), vocabulary, new int[] { 0 });
        Walks.Walk walk = Walks.random(grammar, vocabulary, new Random(7));
        GrammarMatcher matcher = grammar.newMatcher();
        List<boolean[]> allowedAt = new ArrayList<>();
        for (int token : walk.tokens()) {
            allowedAt.add(allowed(matcher, vocabulary.size()));
            matcher.advance(token);
        }
        assertThat(matcher.mark()).isEqualTo(walk.tokens().size());
        assertThat(matcher.isTerminated()).isTrue();
        Random random = new Random(3);
        for (int round = 0; round < 20; round++) {
            int mark = random.nextInt(walk.tokens().size());
            matcher.resetTo(mark);
            assertThat(matcher.mark()).isEqualTo(mark);
            assertThat(allowed(matcher, vocabulary.size())).isEqualTo(allowedAt.get(mark));
            // go forward again along the same tokens, then somewhere else
            for (int k = mark; k < walk.tokens().size(); k++) {
                matcher.advance(walk.tokens().get(k));
            }
            assertThat(matcher.isTerminated()).isTrue();
        }
        assertThatThrownBy(() -> matcher.resetTo(walk.tokens().size() + 1))
            .isInstanceOf(IllegalArgumentException.class);
    }

    private static boolean[] allowed(GrammarMatcher matcher, int size) {
        boolean[] allowed = new boolean[size];
        for (int id = 0; id < size; id++) {
            allowed[id] = matcher.isAllowed(id);
        }
        return allowed;
    }

    @Test
    void masksAgreeWithIsAllowedOnEveryIdOfEveryVocabulary() {
        // Walks.random checks mask against isAllowed on every id (and padded ids) at
        // every step
        for (String model : new String[] { "qwen-vocab", "llama", "mistral", "llama3", "stories260K", "tiny" }) {
            TokenVocabulary vocabulary = Vocabularies.fixture(model);
            int end = SchemaGrammarTest.endId(vocabulary);
            for (Grammar grammar : List.of(Grammar.jsonObject(), Grammar.jsonSchema(SchemaGrammarTest.CODES))) {
                CompiledGrammar compiled = CompiledGrammar.compile(grammar, vocabulary, new int[] { end });
                Random random = new Random(model.hashCode());
                for (int walk = 0; walk < 3; walk++) {
                    assertThat(Walks.random(compiled, vocabulary, random).tokens()).isNotEmpty();
                }
            }
        }
    }

    @Test
    void masksAgreeWithIsAllowedOnTheSyntheticLargeVocabulary() {
        TokenVocabulary vocabulary = Vocabularies.synthetic(150_000);
        CompiledGrammar compiled = CompiledGrammar.compile(Grammar.jsonSchema(SCHEMA), vocabulary, new int[] { 0 });
        String text = Walks.random(compiled, vocabulary, new Random(4)).text();
        assertThat(text).startsWith("{").endsWith("}");
    }

    @Test
    void stringsAtDifferentPlacesShareOneLocalStateAndStillGetTheirOwnMasks() {
        TokenVocabulary vocabulary = Vocabularies.fixture("tiny");
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema(SCHEMA), vocabulary, new int[] { 0 });
        String inName = "{\"name\": \"x";
        String inCity = "{\"name\": \"\", \"age\": 1, \"address\": {\"street\": \"\", \"city\": \"x";
        ParserState nameState = stateOf(grammar, vocabulary, inName);
        ParserState cityState = stateOf(grammar, vocabulary, inCity);
        assertThat(nameState).isNotEqualTo(cityState);
        assertThat(grammar.space().local(nameState)).isSameAs(grammar.space().local(cityState));
        // what follows the closing quote differs: more properties after the name, the end
        // of
        // the address after the city
        int[] quoteComma = Walks.greedy(vocabulary, "\",");
        assertThat(quoteComma).hasSize(1);
        GrammarMatcher name = grammar.newMatcher();
        advanceText(name, vocabulary, inName);
        GrammarMatcher city = grammar.newMatcher();
        advanceText(city, vocabulary, inCity);
        assertThat(name.isAllowed(quoteComma[0])).isTrue();
        assertThat(city.isAllowed(quoteComma[0])).isFalse();
        float[] nameRow = new float[vocabulary.size()];
        float[] cityRow = new float[vocabulary.size()];
        name.mask(nameRow, 0, nameRow.length);
        city.mask(cityRow, 0, cityRow.length);
        assertThat(nameRow[quoteComma[0]]).isZero();
        assertThat(cityRow[quoteComma[0]]).isEqualTo(Float.NEGATIVE_INFINITY);
        for (int id = 0; id < vocabulary.size(); id++) {
            assertThat(name.isAllowed(id)).isEqualTo(nameRow[id] == 0f);
            assertThat(city.isAllowed(id)).isEqualTo(cityRow[id] == 0f);
        }
    }

    private static ParserState stateOf(CompiledGrammar grammar, TokenVocabulary vocabulary, String text) {
        ParserState state = grammar.initial();
        for (int token : Walks.greedy(vocabulary, text)) {
            state = grammar.after(state, token);
        }
        return state;
    }

    @Test
    void argmaxAllowedIsTheArgmaxOfTheMaskedRow() {
        TokenVocabulary vocabulary = Vocabularies.fixture("tiny");
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema(SCHEMA), vocabulary, new int[] { 0 });
        Random random = new Random(11);
        int width = vocabulary.size() + 32;
        for (int trial = 0; trial < 30; trial++) {
            GrammarMatcher matcher = grammar.newMatcher();
            for (int step = 0; step < 60 && !matcher.isTerminated(); step++) {
                float[] logits = new float[width];
                for (int id = 0; id < width; id++) {
                    // coarse values: ties happen
                    logits[id] = random.nextInt(50);
                }
                // padded ids hold the largest logits: never chosen
                logits[width - 1] = 1000;
                float[] masked = logits.clone();
                matcher.mask(masked, 0, width);
                int expected = -1;
                for (int id = 0; id < width; id++) {
                    if (masked[id] != Float.NEGATIVE_INFINITY && (expected < 0 || masked[id] > masked[expected])) {
                        expected = id;
                    }
                }
                int chosen = matcher.argmaxAllowed(logits, 0, width);
                assertThat(chosen).isEqualTo(expected);
                matcher.advance(chosen);
            }
        }
    }

    @Test
    void argmaxAllowedReadsTheRowAtItsOffset() {
        TokenVocabulary vocabulary = Vocabularies.fixture("qwen-vocab");
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.literal("ok"), vocabulary, new int[] { 0 });
        GrammarMatcher matcher = grammar.newMatcher();
        int width = vocabulary.size();
        float[] rows = new float[3 * width];
        int o = Walks.greedy(vocabulary, "o")[0];
        rows[width + o] = 5;
        rows[width + 100] = 9;
        assertThat(matcher.argmaxAllowed(rows, width, width)).isEqualTo(o);
        matcher.mask(rows, width, width);
        assertThat(rows[width + 100]).isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(rows[0]).isZero();
        assertThat(rows[2 * width]).isZero();
    }

    @Test
    void endTokensAreAllowedOnlyWhenTheTextIsComplete() {
        TokenVocabulary vocabulary = Vocabularies.fixture("qwen-vocab");
        CompiledGrammar grammar = CompiledGrammar
            .compile(Grammar.repeat(Grammar.literal("ab"), Grammar.literal(","), 1, 2), vocabulary, new int[] { 0, 2 });
        GrammarMatcher matcher = grammar.newMatcher();
        assertThat(matcher.isComplete()).isFalse();
        assertThat(matcher.isAllowed(0)).isFalse();
        assertThatThrownBy(() -> matcher.advance(2)).isInstanceOf(IllegalArgumentException.class)
            .hasMessageContaining("End token 2");
        advanceText(matcher, vocabulary, "ab");
        assertThat(matcher.isComplete()).isTrue();
        assertThat(matcher.isTerminated()).isFalse();
        assertThat(matcher.isAllowed(0)).isTrue();
        assertThat(matcher.isAllowed(2)).isTrue();
        advanceText(matcher, vocabulary, ",ab");
        assertThat(matcher.isTerminated()).isTrue();
        float[] logits = new float[vocabulary.size()];
        matcher.mask(logits, 0, logits.length);
        for (int id = 0; id < logits.length; id++) {
            assertThat(logits[id] == 0f).as("id %d", id).isEqualTo(id == 0 || id == 2);
        }
        matcher.advance(2);
        assertThat(matcher.isTerminated()).isTrue();
        assertThat(matcher.isComplete()).isFalse();
        assertThat(matcher.isAllowed(0)).isFalse();
        assertThat(matcher.argmaxAllowed(new float[logits.length], 0, logits.length)).isEqualTo(-1);
        matcher.resetTo(1);
        assertThat(matcher.isComplete()).isTrue();
    }

    private static void advanceText(GrammarMatcher matcher, TokenVocabulary vocabulary, String text) {
        for (int token : Walks.greedy(vocabulary, text)) {
            matcher.advance(token);
        }
    }

    @Test
    void specialTokensNeverMatchInsideJson() {
        TokenVocabulary vocabulary = Vocabularies.fixture("qwen-vocab");
        // <|im_start|> (id 1) spelled out inside the string is fine as text, never as the
        // special token
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema("{\"type\":\"string\"}"), vocabulary,
                new int[] { 2 });
        GrammarMatcher matcher = grammar.newMatcher();
        advanceText(matcher, vocabulary, "\"");
        assertThat(matcher.isAllowed(1)).isFalse();
        assertThat(matcher.isAllowed(0)).isFalse();
        advanceText(matcher, vocabulary, "<|im_start|>\"");
        assertThat(matcher.isTerminated()).isTrue();
        float[] logits = new float[vocabulary.size()];
        GrammarMatcher fresh = grammar.newMatcher();
        advanceText(fresh, vocabulary, "\"x");
        fresh.mask(logits, 0, logits.length);
        assertThat(logits[0]).isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(logits[1]).isEqualTo(Float.NEGATIVE_INFINITY);
    }

    @Test
    void holesAndPaddedIdsAreNeverAllowed() {
        byte[][] bytes = { "<end>".getBytes(StandardCharsets.UTF_8), "a".getBytes(StandardCharsets.UTF_8), null,
                new byte[0], "b".getBytes(StandardCharsets.UTF_8) };
        boolean[] special = { true, false, false, false, false };
        TokenVocabulary vocabulary = TokenVocabulary.of(bytes, special);
        CompiledGrammar grammar = CompiledGrammar.compile(
                Grammar.repeat(Grammar.anyOf(Grammar.literal("a"), Grammar.literal("b")), Grammar.literal(""), 0, -1),
                vocabulary, new int[] { 0 });
        GrammarMatcher matcher = grammar.newMatcher();
        float[] logits = new float[9];
        matcher.mask(logits, 0, 9);
        assertThat(logits).containsExactly(0f, 0f, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f,
                Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY);
        for (int id : new int[] { -1, 2, 3, 5, 8, 1 << 20 }) {
            assertThat(matcher.isAllowed(id)).as("id %d", id).isFalse();
        }
        float[] high = new float[9];
        Arrays.fill(high, 5, 9, 100f);
        assertThat(matcher.argmaxAllowed(high, 0, 9)).isZero();
    }

    @Test
    void oneCompiledGrammarServesManyThreads() throws InterruptedException {
        TokenVocabulary vocabulary = Vocabularies.fixture("tiny");
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema(SCHEMA), vocabulary, new int[] { 0 });
        List<Thread> threads = new ArrayList<>();
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int t = 0; t < 4; t++) {
            int seed = t;
            Thread thread = new Thread(() -> {
                try {
                    Walks.random(grammar, vocabulary, new Random(seed));
                }
                catch (Throwable ex) {
                    failures.add(ex);
                }
            });
            threads.add(thread);
            thread.start();
        }
        for (Thread thread : threads) {
            thread.join();
        }
        assertThat(failures).isEmpty();
    }

}
