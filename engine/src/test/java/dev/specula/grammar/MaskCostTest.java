package dev.specula.grammar;

import java.util.Random;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Mask costs on the largest vocabularies (the embedded pair's 4,096 ids and a synthetic
 * 150,000): printed, not asserted (timings depend on the machine; each figure is the best
 * of {@value #TRIALS} trials, the JIT warmed by a first unprinted pass). What is
 * asserted: cold and cached masks agree with isAllowed, and argmaxAllowed picks an
 * allowed id, the same with and without a cached mask.
 */
class MaskCostTest {

    private static final String[] PREFIXES = { "{", "{\"name\": \"Ada", "{\"name\": \"Ada\", \"age\": 3" };

    private static final int TRIALS = 5;

    private static final int ROUNDS = 100;

    @Test
    void maskCostsOnLargeVocabularies() {
        for (boolean print : new boolean[] { false, true }) {
            measure("tiny (4,096 ids)", Vocabularies.fixture("tiny"), print);
            measure("synthetic (150,000 ids)", Vocabularies.synthetic(150_000), print);
        }
    }

    private static void measure(String name, TokenVocabulary vocabulary, boolean print) {
        Grammar schema = Grammar.jsonSchema(SchemaGrammarTest.PERSON);
        int width = vocabulary.size();
        Random random = new Random(1);
        float[] logits = new float[width];
        for (int id = 0; id < width; id++) {
            logits[id] = (float) random.nextGaussian();
        }
        for (String prefix : PREFIXES) {
            long first = Long.MAX_VALUE;
            long cached = Long.MAX_VALUE;
            long argmaxCold = Long.MAX_VALUE;
            long argmaxCached = Long.MAX_VALUE;
            int allowedCount = 0;
            for (int trial = 0; trial < TRIALS; trial++) {
                // a fresh compiled grammar: neither the state's mask nor its transitions
                // are known
                GrammarMatcher cold = matcherAfter(schema, vocabulary, prefix);
                long start = System.nanoTime();
                int coldChoice = cold.argmaxAllowed(logits, 0, width);
                argmaxCold = Math.min(argmaxCold, System.nanoTime() - start);
                GrammarMatcher matcher = matcherAfter(schema, vocabulary, prefix);
                float[] row = new float[width];
                start = System.nanoTime();
                matcher.mask(row, 0, width);
                first = Math.min(first, System.nanoTime() - start);
                allowedCount = 0;
                for (int id = 0; id < width; id++) {
                    assertThat(matcher.isAllowed(id)).isEqualTo(row[id] == 0f);
                    allowedCount += (row[id] == 0f) ? 1 : 0;
                }
                float[] masked = new float[width];
                start = System.nanoTime();
                for (int r = 0; r < ROUNDS; r++) {
                    matcher.mask(masked, 0, width);
                }
                cached = Math.min(cached, (System.nanoTime() - start) / ROUNDS);
                assertThat(masked).isEqualTo(row);
                int choice = 0;
                start = System.nanoTime();
                for (int r = 0; r < ROUNDS; r++) {
                    choice = matcher.argmaxAllowed(logits, 0, width);
                }
                argmaxCached = Math.min(argmaxCached, (System.nanoTime() - start) / ROUNDS);
                assertThat(matcher.isAllowed(choice)).isTrue();
                assertThat(coldChoice).isEqualTo(choice);
            }
            if (print) {
                System.out.printf(
                        "[mask cost] %s after %-28s allowed %6d: first mask %7.3f ms, cached mask+apply %7.4f ms, "
                                + "argmaxAllowed (random row) cold %7.3f ms, cached %7.4f ms%n",
                        name, "'" + prefix + "'", allowedCount, first / 1e6, cached / 1e6, argmaxCold / 1e6,
                        argmaxCached / 1e6);
            }
        }
        if (print) {
            System.out.println("[mask cost] " + name + ": trie nodes " + vocabulary.trie().nodeCount());
        }
    }

    /**
     * A whole document token by token: the mask at every position, on a fresh compiled
     * grammar (most masks computed for the first time) and then again (all cached).
     */
    @Test
    void maskCostsAlongADocument() {
        TokenVocabulary vocabulary = Vocabularies.synthetic(150_000);
        String person = "{\"name\": \"Ada Lovelace\", \"age\": 36, \"address\": {\"street\": \"12 St James's Sq\", "
                + "\"city\": \"London\"}, \"tags\": [\"math\", \"poetry\"], \"role\": \"ADMIN\", "
                + "\"birthday\": \"1815-12-10\", \"scores\": {\"analysis\": 9.5}}";
        String nested = "{\"a\": {\"name\": \"hello world\", \"list\": [1, 2, {\"x\": \"deep string\", \"y\": [\"s\"]}], "
                + "\"b\": {\"c\": {\"d\": \"more text\"}}}, \"e\": \"end\"}";
        for (boolean print : new boolean[] { false, true }) {
            document("schema", Grammar.jsonSchema(SchemaGrammarTest.PERSON), vocabulary, person, print);
            document("json object", Grammar.jsonObject(), vocabulary, nested, print);
        }
    }

    private static void document(String name, Grammar grammar, TokenVocabulary vocabulary, String text, boolean print) {
        CompiledGrammar compiled = CompiledGrammar.compile(grammar, vocabulary, new int[] { 0 });
        int[] tokens = Walks.greedy(vocabulary, text);
        float[] row = new float[vocabulary.size()];
        for (String pass : new String[] { "fresh", "cached" }) {
            GrammarMatcher matcher = compiled.newMatcher();
            long total = 0;
            long worst = 0;
            for (int token : tokens) {
                long start = System.nanoTime();
                matcher.mask(row, 0, row.length);
                long took = System.nanoTime() - start;
                total += took;
                worst = Math.max(worst, took);
                matcher.advance(token);
            }
            assertThat(matcher.isTerminated()).isTrue();
            if (print) {
                System.out.printf(
                        "[mask cost] synthetic (150,000 ids) %s document of %d tokens, %s grammar: mask mean %.3f ms, "
                                + "worst %.3f ms%n",
                        name, tokens.length, pass, total / 1e6 / tokens.length, worst / 1e6);
            }
        }
    }

    private static GrammarMatcher matcherAfter(Grammar grammar, TokenVocabulary vocabulary, String prefix) {
        GrammarMatcher matcher = CompiledGrammar.compile(grammar, vocabulary, new int[] { 0 }).newMatcher();
        for (int token : Walks.greedy(vocabulary, prefix)) {
            matcher.advance(token);
        }
        return matcher;
    }

}
