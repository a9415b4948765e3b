package dev.specula.tokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * A Hugging Face {@code tokenizer.json} through DJL's Rust tokenizers, with truncation
 * and padding off (DJL truncates to 512 tokens by default, silently; the engine checks
 * context limits itself).
 */
public final class TextTokenizer implements TokenDecoder, AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final HuggingFaceTokenizer tokenizer;

    private final Path file;

    private final int vocabularySize;

    private final Vocabulary.Digest vocabularyDigest;

    private final Map<Integer, String> specialTokens;

    private final int maxCharactersPerToken;

    private TextTokenizer(HuggingFaceTokenizer tokenizer, Path file, int vocabularySize,
            Vocabulary.Digest vocabularyDigest, Map<Integer, String> specialTokens, int maxCharactersPerToken) {
        this.tokenizer = tokenizer;
        this.file = file;
        this.vocabularySize = vocabularySize;
        this.vocabularyDigest = vocabularyDigest;
        this.specialTokens = specialTokens;
        this.maxCharactersPerToken = maxCharactersPerToken;
    }

    /**
     * Loads {@code tokenizer.json}; a missing or corrupt file fails with its path.
     * Internal to the engine.
     */
    public static TextTokenizer load(Path tokenizerJson) {
        JsonNode root;
        try {
            root = JSON.readTree(tokenizerJson.toFile());
        }
        catch (IOException ex) {
            throw new TokenizerLoadException(tokenizerJson,
                    "Cannot parse tokenizer " + tokenizerJson + ": " + ex.getMessage()
                            + "; re-export the model or copy its tokenizer.json from the Hugging Face repository",
                    ex);
        }
        Vocabulary vocabulary = Vocabulary.of(tokenizerJson, root);
        Map<Integer, String> special = new TreeMap<>();
        for (JsonNode added : root.path("added_tokens")) {
            if (added.path("special").asBoolean(false)) {
                special.put(added.path("id").asInt(), added.path("content").asText());
            }
        }
        HuggingFaceTokenizer tokenizer;
        try {
            tokenizer = HuggingFaceTokenizer.newInstance(tokenizerJson,
                    Map.of("truncation", "false", "padding", "false", "addSpecialTokens", "true"));
        }
        catch (IOException | RuntimeException ex) {
            throw new TokenizerLoadException(tokenizerJson,
                    "Cannot load tokenizer " + tokenizerJson + ": " + ex.getMessage(), ex);
        }
        return new TextTokenizer(tokenizer, tokenizerJson, vocabulary.size(), vocabulary.digest(),
                Collections.unmodifiableMap(special), vocabulary.maxCharactersPerToken());
    }

    /**
     * Token ids of {@code text}.
     * @param addSpecialTokens whether the tokenizer's post-processor adds its tokens (BOS
     * for Llama-2 style tokenizers), as {@code tokenizer(text)} does in transformers;
     * false for text rendered by a chat template, which already carries them
     */
    public int[] encode(String text, boolean addSpecialTokens) {
        Encoding encoding = tokenizer.encode(text, addSpecialTokens, false);
        long[] ids = encoding.getIds();
        int[] result = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            result[i] = Math.toIntExact(ids[i]);
        }
        return result;
    }

    @Override
    public String decode(int[] ids, int from, int to, boolean skipSpecialTokens) {
        long[] longs = new long[to - from];
        for (int i = from; i < to; i++) {
            longs[i - from] = ids[i];
        }
        return tokenizer.decode(longs, skipSpecialTokens);
    }

    /** Text of all {@code ids}; special tokens dropped when {@code skipSpecialTokens}. */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        return decode(ids, 0, ids.length, skipSpecialTokens);
    }

    /**
     * Number of ids the tokenizer can produce: its largest id + 1 (base vocabulary and
     * added tokens).
     */
    public int vocabularySize() {
        return vocabularySize;
    }

    /** Special added tokens, id to text. */
    public Map<Integer, String> specialTokens() {
        return specialTokens;
    }

    /**
     * Digests of the tokens by id and of the merges: two tokenizers with equal digests
     * map every token to the same id. {@link Vocabulary#read} names the differences
     * otherwise.
     */
    public Vocabulary.Digest vocabularyDigest() {
        return vocabularyDigest;
    }

    /**
     * Most characters of text one token can cover
     * ({@link Vocabulary#maxCharactersPerToken}): a text longer than {@code n} times this
     * is more than {@code n} tokens, known without tokenizing it. 0 when the tokenizer's
     * normalizer allows no such bound.
     */
    public int maxCharactersPerToken() {
        return maxCharactersPerToken;
    }

    /** The {@code tokenizer.json} read. */
    public Path file() {
        return file;
    }

    @Override
    public void close() {
        tokenizer.close();
    }

}
