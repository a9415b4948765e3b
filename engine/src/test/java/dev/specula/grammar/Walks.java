package dev.specula.grammar;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Random walks through the allowed tokens of a compiled grammar, checking on the way that
 * the mask and isAllowed agree on every id; and a greedy tokenization of text for
 * vocabularies without a tokenizer at hand.
 */
final class Walks {

    /** Tokens after which a walk prefers tokens that close strings, arrays, objects. */
    private static final int SOFT_LIMIT = 40;

    private static final int HARD_LIMIT = 3000;

    private Walks() {
    }

    /** A finished walk: its tokens (the end token last) and the text they spell. */
    record Walk(List<Integer> tokens, String text) {
    }

    /**
     * Samples uniformly among the allowed ids until an end token is advanced; past
     * {@link #SOFT_LIMIT} tokens, an end token or a closing quote or bracket is preferred
     * when allowed. Each step checks mask against isAllowed on every id of the (padded)
     * row.
     */
    static Walk random(CompiledGrammar grammar, TokenVocabulary vocabulary, Random random) {
        GrammarMatcher matcher = grammar.newMatcher();
        ByteArrayOutputStream text = new ByteArrayOutputStream();
        List<Integer> tokens = new ArrayList<>();
        int width = vocabulary.size() + 7;
        while (tokens.size() < HARD_LIMIT) {
            float[] logits = new float[width];
            matcher.mask(logits, 0, width);
            List<Integer> allowed = new ArrayList<>();
            List<Integer> preferred = new ArrayList<>();
            for (int id = 0; id < width; id++) {
                boolean masked = logits[id] == 0f;
                assertThat(matcher.isAllowed(id)).as("id %d after %s", id, tokens).isEqualTo(masked);
                if (masked) {
                    allowed.add(id);
                    if (grammar.isEnd(id) || closes(vocabulary.bytes(id))) {
                        preferred.add(id);
                    }
                }
            }
            assertThat(allowed).as("nothing allowed after %s", text).isNotEmpty();
            List<Integer> pool = (tokens.size() > SOFT_LIMIT && !preferred.isEmpty()) ? preferred : allowed;
            int token = pool.get(random.nextInt(pool.size()));
            if (tokens.size() > SOFT_LIMIT && pool == preferred) {
                for (int id : preferred) {
                    if (grammar.isEnd(id)) {
                        token = id;
                    }
                }
            }
            boolean completeBefore = matcher.isComplete();
            matcher.advance(token);
            tokens.add(token);
            if (grammar.isEnd(token)) {
                assertThat(completeBefore).isTrue();
                assertThat(matcher.isTerminated()).isTrue();
                return new Walk(tokens, text.toString(StandardCharsets.UTF_8));
            }
            text.writeBytes(vocabulary.bytes(token));
        }
        throw new AssertionError("No end after " + HARD_LIMIT + " tokens: " + text.toString(StandardCharsets.UTF_8));
    }

    private static boolean closes(byte[] bytes) {
        return bytes != null && bytes.length == 1 && (bytes[0] == '"' || bytes[0] == '}' || bytes[0] == ']');
    }

    /**
     * {@code text} as the longest-matching non-special tokens, left to right (some valid
     * tokenization; the tokenizer's own may differ).
     */
    static int[] greedy(TokenVocabulary vocabulary, String text) {
        Map<String, Integer> byBytes = new HashMap<>();
        int longest = 0;
        for (int id = vocabulary.size() - 1; id >= 0; id--) {
            byte[] bytes = vocabulary.bytes(id);
            if (bytes != null && bytes.length > 0 && !vocabulary.isSpecial(id)) {
                byBytes.put(new String(bytes, StandardCharsets.ISO_8859_1), id);
                longest = Math.max(longest, bytes.length);
            }
        }
        String latin = new String(text.getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1);
        List<Integer> ids = new ArrayList<>();
        int at = 0;
        while (at < latin.length()) {
            int length = Math.min(longest, latin.length() - at);
            while (length > 0 && !byBytes.containsKey(latin.substring(at, at + length))) {
                length--;
            }
            if (length == 0) {
                throw new IllegalArgumentException("No token for byte " + at + " of " + text);
            }
            ids.add(byBytes.get(latin.substring(at, at + length)));
            at += length;
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

}
