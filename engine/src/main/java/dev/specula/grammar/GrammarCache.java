package dev.specula.grammar;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Compiled grammars of one {@link TokenVocabulary} and end ids, by {@link Grammar#key()}:
 * the least recently used one is dropped past {@code maxEntries}. Thread-safe (a compile
 * runs under the cache's lock; it builds the automaton only, masks come later on demand).
 */
public final class GrammarCache {

    private final TokenVocabulary vocabulary;

    private final int[] endTokenIds;

    private final Map<String, CompiledGrammar> compiled;

    public GrammarCache(TokenVocabulary vocabulary, int[] endTokenIds, int maxEntries) {
        if (maxEntries < 1) {
            throw new IllegalArgumentException("maxEntries must be >= 1 but was " + maxEntries);
        }
        this.vocabulary = vocabulary;
        this.endTokenIds = endTokenIds.clone();
        this.compiled = new LinkedHashMap<>(16, 0.75f, true) {

            @Override
            protected boolean removeEldestEntry(Map.Entry<String, CompiledGrammar> eldest) {
                return size() > maxEntries;
            }

        };
    }

    /** The compiled form of {@code grammar}, compiled on first use. */
    public synchronized CompiledGrammar get(Grammar grammar) {
        CompiledGrammar known = compiled.get(grammar.key());
        if (known != null) {
            return known;
        }
        CompiledGrammar fresh = CompiledGrammar.compile(grammar, vocabulary, endTokenIds);
        compiled.put(grammar.key(), fresh);
        return fresh;
    }

    /** How many compiled grammars are held. */
    synchronized int size() {
        return compiled.size();
    }

}
