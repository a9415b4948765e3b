package dev.specula.grammar;

import java.util.Random;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Masks at real vocabulary sizes (the embedded pair's 4,096 ids and a synthetic 150,000):
 * a state's first mask, its cached mask and the greedy choice agree with
 * {@link GrammarMatcher#isAllowed} on every id, and whole documents go through token by
 * token. What they cost is measured by the CLI's bench ({@code --response-format};
 * docs/benchmarks.md, "Constrained decoding"), not here.
 */
class LargeVocabularyMaskTest {

    private static final String[] PREFIXES = { "{", "{\"name\": \"Ada", "{\"name\": \"Ada\", \"age\": 3" };

    @Test
    void firstAndCachedMasksAgreeWithIsAllowed() {
        check(Vocabularies.fixture("tiny"));
        check(Vocabularies.synthetic(150_000));
    }

    private static void check(TokenVocabulary vocabulary) {
        Grammar schema = Grammar.jsonSchema(SchemaGrammarTest.PERSON);
        int width = vocabulary.size();
        Random random = new Random(1);
        float[] logits = new float[width];
        for (int id = 0; id < width; id++) {
            logits[id] = (float) random.nextGaussian();
        }
        for (String prefix : PREFIXES) {
            // a fresh compiled grammar: neither the state's mask nor its transitions are
            // known
            int coldChoice = matcherAfter(schema, vocabulary, prefix).argmaxAllowed(logits, 0, width);
            GrammarMatcher matcher = matcherAfter(schema, vocabulary, prefix);
            float[] first = new float[width];
            boolean anyAllowed = matcher.mask(first, 0, width);
            boolean seen = false;
            for (int id = 0; id < width; id++) {
                assertThat(matcher.isAllowed(id)).as("id %d after %s", id, prefix).isEqualTo(first[id] == 0f);
                seen |= first[id] == 0f;
            }
            assertThat(anyAllowed).as("mask says whether anything is allowed").isEqualTo(seen).isTrue();
            float[] cached = new float[width];
            matcher.mask(cached, 0, width);
            assertThat(cached).isEqualTo(first);
            int choice = matcher.argmaxAllowed(logits, 0, width);
            assertThat(matcher.isAllowed(choice)).isTrue();
            assertThat(coldChoice).isEqualTo(choice);
        }
    }

    @Test
    void documentsGoThroughOnTheLargeVocabulary() {
        TokenVocabulary vocabulary = Vocabularies.synthetic(150_000);
        String person = "{\"name\": \"Ada Lovelace\", \"age\": 36, \"address\": {\"street\": \"12 St James's Sq\", "
                + "\"city\": \"London\"}, \"tags\": [\"math\", \"poetry\"], \"role\": \"ADMIN\", "
                + "\"birthday\": \"1815-12-10\", \"scores\": {\"analysis\": 9.5}}";
        String nested = "{\"a\": {\"name\": \"hello world\", \"list\": [1, 2, {\"x\": \"deep string\", \"y\": [\"s\"]}], "
                + "\"b\": {\"c\": {\"d\": \"more text\"}}}, \"e\": \"end\"}";
        document(Grammar.jsonSchema(SchemaGrammarTest.PERSON), vocabulary, person);
        document(Grammar.jsonObject(), vocabulary, nested);
    }

    private static void document(Grammar grammar, TokenVocabulary vocabulary, String text) {
        CompiledGrammar compiled = CompiledGrammar.compile(grammar, vocabulary, new int[] { 0 });
        int[] tokens = Walks.greedy(vocabulary, text);
        float[] row = new float[vocabulary.size()];
        GrammarMatcher matcher = compiled.newMatcher();
        for (int token : tokens) {
            java.util.Arrays.fill(row, 0f);
            matcher.mask(row, 0, row.length);
            assertThat(row[token]).as("the document's next token is allowed").isEqualTo(0f);
            matcher.advance(token);
        }
        assertThat(matcher.isComplete()).isTrue();
    }

    private static GrammarMatcher matcherAfter(Grammar grammar, TokenVocabulary vocabulary, String prefix) {
        GrammarMatcher matcher = CompiledGrammar.compile(grammar, vocabulary, new int[] { 0 }).newMatcher();
        for (int token : Walks.greedy(vocabulary, prefix)) {
            matcher.advance(token);
        }
        return matcher;
    }

}
