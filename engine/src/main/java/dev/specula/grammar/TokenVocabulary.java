package dev.specula.grammar;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.jspecify.annotations.Nullable;

/**
 * The bytes each token id stands for, and which ids are special, read from a
 * {@code tokenizer.json}: what a grammar's masks are computed over. Built once per
 * tokenizer (it also holds the tokens' trie); immutable and thread-safe.
 *
 * <p>
 * Decoding: byte-level BPE (GPT-2, Qwen2, Llama-3: a {@code ByteLevel} decoder or
 * pre-tokenizer) maps each character back through GPT-2's byte-to-unicode table;
 * SentencePiece-style models (Llama-2, Mistral: {@code Metaspace} or a decoder replacing
 * {@code ▁}) turn {@code ▁} into a space and byte-fallback pieces {@code <0xNN>} into
 * their byte; added tokens are their content text. Ids no token has (holes), tokens whose
 * text cannot be decoded and empty tokens stand for nothing and are never allowed.
 * Special added tokens ({@code "special": true}) are kept out of the trie: a grammar
 * allows them only where one of its literals continues with their content. (A
 * SentencePiece decoder's removal of the text's leading space is not modelled: the
 * grammar sees the space.)
 */
public final class TokenVocabulary {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static final char METASPACE = '\u2581';

    /** By id: the bytes, or null for an id that stands for nothing. */
    private final byte[][] bytes;

    private final boolean[] special;

    /** Special tokens by content text (several ids may share one). */
    private final Map<String, int[]> specialByContent;

    private final TokenTrie trie;

    TokenVocabulary(byte[][] bytes, boolean[] special, Map<String, int[]> specialByContent) {
        this.bytes = bytes;
        this.special = special;
        this.specialByContent = Collections.unmodifiableMap(specialByContent);
        this.trie = TokenTrie.of(bytes, special);
    }

    /**
     * Reads {@code tokenizerJson}; an unreadable file or a tokenizer model other than BPE
     * or Unigram fails with {@link IllegalArgumentException} naming the file.
     */
    public static TokenVocabulary read(Path tokenizerJson) {
        JsonNode root;
        try {
            root = JSON.readTree(tokenizerJson.toFile());
        }
        catch (IOException ex) {
            throw new IllegalArgumentException("Cannot read tokenizer " + tokenizerJson + ": " + ex.getMessage(), ex);
        }
        try {
            return of(root);
        }
        catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException(tokenizerJson + ": " + ex.getMessage(), ex);
        }
    }

    /** The vocabulary of a parsed {@code tokenizer.json}. */
    static TokenVocabulary of(JsonNode root) {
        JsonNode model = root.path("model");
        String type = model.path("type").asText("");
        if (!type.equals("BPE") && !type.equals("Unigram")) {
            throw new IllegalArgumentException("Tokenizer model " + type + " is not supported by grammars "
                    + "(byte-level BPE and SentencePiece-style BPE or Unigram are)");
        }
        boolean byteLevel = mentions(root.path("decoder"), "ByteLevel")
                || mentions(root.path("pre_tokenizer"), "ByteLevel");
        boolean byteFallback = model.path("byte_fallback").asBoolean(false)
                || mentions(root.path("decoder"), "ByteFallback");
        JsonNode vocab = model.path("vocab");
        JsonNode added = root.path("added_tokens");
        int maxId = vocab.isArray() ? vocab.size() - 1 : -1;
        for (Map.Entry<String, JsonNode> entry : vocab.properties()) {
            maxId = Math.max(maxId, entry.getValue().asInt(-1));
        }
        for (JsonNode token : added) {
            maxId = Math.max(maxId, token.path("id").asInt(-1));
        }
        String[] pieces = new String[maxId + 1];
        if (vocab.isArray()) {
            for (int id = 0; id < vocab.size(); id++) {
                pieces[id] = vocab.get(id).path(0).asText();
            }
        }
        for (Map.Entry<String, JsonNode> entry : vocab.properties()) {
            int id = entry.getValue().asInt(-1);
            if (id >= 0) {
                pieces[id] = entry.getKey();
            }
        }
        byte[][] bytes = new byte[maxId + 1][];
        for (int id = 0; id <= maxId; id++) {
            if (pieces[id] != null) {
                bytes[id] = byteLevel ? ByteLevelTable.decode(pieces[id]) : sentencePiece(pieces[id], byteFallback);
            }
        }
        boolean[] special = new boolean[maxId + 1];
        Map<String, List<Integer>> specialIds = new LinkedHashMap<>();
        for (JsonNode token : added) {
            int id = token.path("id").asInt(-1);
            if (id < 0) {
                continue;
            }
            String content = token.path("content").asText();
            bytes[id] = content.getBytes(StandardCharsets.UTF_8);
            if (token.path("special").asBoolean(false)) {
                special[id] = true;
                specialIds.computeIfAbsent(content, (key) -> new ArrayList<>()).add(id);
            }
        }
        return new TokenVocabulary(bytes, special, toArrays(specialIds));
    }

    /**
     * A vocabulary of the given byte strings by id (null: a hole) and special flags: for
     * tests and synthetic vocabularies.
     */
    static TokenVocabulary of(byte[][] bytes, boolean[] special) {
        Map<String, List<Integer>> specialIds = new LinkedHashMap<>();
        for (int id = 0; id < bytes.length; id++) {
            if (special[id] && bytes[id] != null) {
                specialIds.computeIfAbsent(new String(bytes[id], StandardCharsets.UTF_8), (key) -> new ArrayList<>())
                    .add(id);
            }
        }
        return new TokenVocabulary(bytes.clone(), special.clone(), toArrays(specialIds));
    }

    private static Map<String, int[]> toArrays(Map<String, List<Integer>> ids) {
        Map<String, int[]> arrays = new LinkedHashMap<>();
        ids.forEach((content, list) -> arrays.put(content, list.stream().mapToInt(Integer::intValue).toArray()));
        return arrays;
    }

    /** Whether {@code node} is, or (a Sequence) contains, a step of type {@code type}. */
    private static boolean mentions(JsonNode node, String type) {
        if (type.equals(node.path("type").asText())) {
            return true;
        }
        for (String list : new String[] { "decoders", "pretokenizers" }) {
            for (JsonNode child : node.path(list)) {
                if (mentions(child, type)) {
                    return true;
                }
            }
        }
        return false;
    }

    private static byte @Nullable [] sentencePiece(String piece, boolean byteFallback) {
        if (byteFallback && piece.length() == 6 && piece.startsWith("<0x") && piece.endsWith(">")) {
            try {
                return new byte[] { (byte) Integer.parseInt(piece.substring(3, 5), 16) };
            }
            catch (NumberFormatException ex) {
                // not a byte piece: its text below
            }
        }
        return piece.replace(METASPACE, ' ').getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Largest id + 1: ids from here on (a model's padded logit rows) are never allowed.
     */
    public int size() {
        return bytes.length;
    }

    /**
     * The bytes of {@code id}, or null when it stands for nothing (or is out of range).
     */
    byte @Nullable [] bytes(int id) {
        return (id >= 0 && id < bytes.length) ? bytes[id] : null;
    }

    boolean isSpecial(int id) {
        return id >= 0 && id < special.length && special[id];
    }

    Map<String, int[]> specialByContent() {
        return specialByContent;
    }

    TokenTrie trie() {
        return trie;
    }

}
