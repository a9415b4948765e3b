package dev.specula.tokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.jspecify.annotations.Nullable;

/**
 * The token ids and merges of one {@code tokenizer.json}: its tokens by id (the model's
 * vocabulary and the added tokens) and, for BPE, its merges in rank order. A draft and
 * its target must agree on these, or the draft's token ids mean other tokens to the
 * target. {@link TextTokenizer} keeps only their {@link Digest}; the tables are read
 * again to name the differences when two digests differ.
 */
public final class Vocabulary {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Ids from here on are a broken file: no model has 16M logits. */
    private static final int MAX_ID = 1 << 24;

    /**
     * Most characters one composed character may stand for after NFC or NFKC
     * normalization.
     */
    private static final int COMPOSITION = 4;

    /** How many differing tokens a comparison names. */
    private static final int EXAMPLES = 3;

    private final Path file;

    /** {@code model.type}: BPE, Unigram, WordPiece or WordLevel. */
    private final String model;

    /** [largest id + 1]: the token with each id, null for an id no token has. */
    private final @Nullable String[] tokens;

    /**
     * {@code model.merges} in rank order: "left right" strings or [left, right] pairs.
     */
    private final JsonNode merges;

    /**
     * Most characters of text one token can stand for: the longest token times what the
     * normalizer may fold into one character; 0 when a normalizer may fold without bound.
     */
    private final int maxCharactersPerToken;

    private Vocabulary(Path file, String model, @Nullable String[] tokens, JsonNode merges, int maxCharactersPerToken) {
        this.file = file;
        this.model = model;
        this.tokens = tokens;
        this.merges = merges;
        this.maxCharactersPerToken = maxCharactersPerToken;
    }

    /** Reads {@code tokenizerJson}; a missing or corrupt file fails with its path. */
    public static Vocabulary read(Path tokenizerJson) {
        try {
            return of(tokenizerJson, JSON.readTree(tokenizerJson.toFile()));
        }
        catch (IOException ex) {
            throw new TokenizerLoadException(tokenizerJson,
                    "Cannot parse tokenizer " + tokenizerJson + ": " + ex.getMessage(), ex);
        }
    }

    /**
     * The vocabulary of a parsed {@code tokenizer.json}: one pass over the model's
     * vocabulary (an object token to id, or Unigram's [[piece, score], ...]) and one over
     * the added tokens, which take their ids over the model's.
     */
    static Vocabulary of(Path file, JsonNode root) {
        JsonNode model = root.path("model");
        JsonNode vocab = model.path("vocab");
        JsonNode added = root.path("added_tokens");
        int maxId = vocab.isArray() ? vocab.size() - 1 : -1;
        for (Map.Entry<String, JsonNode> entry : vocab.properties()) {
            maxId = Math.max(maxId, entry.getValue().asInt(-1));
        }
        for (JsonNode token : added) {
            maxId = Math.max(maxId, token.path("id").asInt(-1));
        }
        if (maxId >= MAX_ID) {
            throw new TokenizerLoadException(file,
                    "Token id " + maxId + " in " + file + " is out of range (at most " + (MAX_ID - 1)
                            + "); re-export the model or copy its tokenizer.json from the Hugging Face " + "repository",
                    null);
        }
        String[] tokens = new String[maxId + 1];
        if (vocab.isArray()) {
            for (int id = 0; id < vocab.size(); id++) {
                tokens[id] = vocab.get(id).path(0).asText();
            }
        }
        for (Map.Entry<String, JsonNode> entry : vocab.properties()) {
            int id = entry.getValue().asInt(-1);
            if (id >= 0) {
                tokens[id] = entry.getKey();
            }
        }
        for (JsonNode token : added) {
            int id = token.path("id").asInt(-1);
            if (id >= 0) {
                tokens[id] = token.path("content").asText();
            }
        }
        int longest = 0;
        for (String token : tokens) {
            longest = token == null ? longest : Math.max(longest, token.length());
        }
        int folding = folding(root.path("normalizer"));
        return new Vocabulary(file, model.path("type").asText(""), tokens, model.path("merges"),
                folding == 0 ? 0 : Math.multiplyExact(longest, folding));
    }

    /**
     * How many characters of the input the normalizer may fold into one: 1 without a
     * normalizer or with ones that never shorten text (decompositions, lowercasing,
     * prepending, replacing a string by one at least as long), {@value #COMPOSITION} with
     * canonical or compatibility composition (NFC, NFKC: U+1F8F is the composition of 4
     * characters), 0 (unknown, unbounded) for anything else, such as a regex replacement
     * or stripping.
     */
    private static int folding(JsonNode normalizer) {
        if (normalizer.isMissingNode() || normalizer.isNull()) {
            return 1;
        }
        String type = normalizer.path("type").asText("");
        switch (type) {
            case "Sequence" -> {
                long folding = 1;
                for (JsonNode each : normalizer.path("normalizers")) {
                    folding *= folding(each);
                }
                return folding > Integer.MAX_VALUE ? 0 : (int) folding;
            }
            case "NFD", "NFKD", "Lowercase", "Prepend" -> {
                return 1;
            }
            case "NFC", "NFKC" -> {
                return COMPOSITION;
            }
            case "Replace" -> {
                JsonNode pattern = normalizer.path("pattern");
                String content = normalizer.path("content").asText("");
                boolean plain = pattern.has("String");
                return plain && content.length() >= pattern.path("String").asText("").length() ? 1 : 0;
            }
            default -> {
                return 0;
            }
        }
    }

    /**
     * Most characters of text (UTF-16 units, as {@link String#length()}) a single token
     * can cover, a bound that holds for any text: a text of {@code n} characters is at
     * least {@code n / maxCharactersPerToken()} tokens, so a prompt can be refused as too
     * long before it is tokenized. Every token's text is at most as long as its
     * vocabulary entry (byte-level BPE writes one character per byte; byte-fallback
     * tokens such as {@code <0x0A>} are longer than the byte they stand for), times the
     * normalizer's folding. 0 when the normalizer can shorten text without bound: no
     * bound is known.
     */
    public int maxCharactersPerToken() {
        return maxCharactersPerToken;
    }

    /** The {@code tokenizer.json} read. */
    public Path file() {
        return file;
    }

    /** Largest id + 1. */
    public int size() {
        return tokens.length;
    }

    /**
     * SHA-256 digests of the tokens by id and of the model type and merges: equal
     * digests, equal vocabularies. One pass over the tables, hashing each token's
     * characters through one buffer.
     */
    public Digest digest() {
        Hasher hasher = new Hasher();
        for (int id = 0; id < tokens.length; id++) {
            String token = tokens[id];
            if (token != null) {
                hasher.putInt(id);
                hasher.putString(token, 0, token.length());
            }
        }
        String tokensDigest = hasher.hex();
        hasher.putString(model, 0, model.length());
        for (JsonNode merge : merges) {
            if (merge.isArray()) {
                String left = merge.path(0).asText();
                String right = merge.path(1).asText();
                hasher.putString(left, 0, left.length());
                hasher.putString(right, 0, right.length());
            }
            else {
                String pair = merge.asText();
                int space = Math.max(0, pair.indexOf(' '));
                hasher.putString(pair, 0, space);
                hasher.putString(pair, Math.min(space + 1, pair.length()), pair.length());
            }
        }
        return new Digest(tokensDigest, hasher.hex());
    }

    /**
     * What keeps {@code draft} from speculating for {@code target}, one line each (the
     * first token line counts the differing tokens and names the first of them); empty
     * when every token the draft defines has the same id in the target and both have the
     * same merges. The target may define more tokens: the draft never proposes them.
     */
    public static List<String> differences(Vocabulary target, Vocabulary draft) {
        List<String> lines = new ArrayList<>();
        int draftTokens = 0;
        int differing = 0;
        List<String> examples = new ArrayList<>();
        Map<String, Integer> targetIds = null;
        for (int id = 0; id < draft.tokens.length; id++) {
            String token = draft.tokens[id];
            if (token == null) {
                continue;
            }
            draftTokens++;
            if (id < target.tokens.length && token.equals(target.tokens[id])) {
                continue;
            }
            differing++;
            if (examples.size() < EXAMPLES) {
                if (targetIds == null) {
                    targetIds = target.ids();
                }
                Integer targetId = targetIds.get(token);
                examples.add((targetId != null)
                        ? "token " + quote(token) + " is " + targetId + " in the target's tokenizer.json but " + id
                                + " in the draft's"
                        : "token " + quote(token) + " is " + id
                                + " in the draft's tokenizer.json but not in the target's");
            }
        }
        if (differing > 0) {
            lines.add(differing + " of the draft's " + draftTokens + " tokens " + ((differing == 1) ? "is" : "are")
                    + " not at the same id in the target");
            lines.addAll(examples);
            if (differing > examples.size()) {
                lines.add("and " + (differing - examples.size()) + " more");
            }
        }
        if (!target.model.equals(draft.model)) {
            lines.add("the tokenizer models differ: " + target.model + " in the target's tokenizer.json, " + draft.model
                    + " in the draft's");
        }
        else {
            String merges = mergeDifference(target, draft);
            if (merges != null) {
                lines.add(merges);
            }
        }
        return lines;
    }

    private static @Nullable String mergeDifference(Vocabulary target, Vocabulary draft) {
        int common = Math.min(target.merges.size(), draft.merges.size());
        for (int rank = 0; rank < common; rank++) {
            String targetMerge = merge(target.merges.get(rank));
            String draftMerge = merge(draft.merges.get(rank));
            if (!targetMerge.equals(draftMerge)) {
                return "the merges differ from rank " + rank + " on: " + quote(targetMerge)
                        + " in the target's tokenizer.json, " + quote(draftMerge) + " in the draft's";
            }
        }
        if (target.merges.size() != draft.merges.size()) {
            return "the target's tokenizer.json has " + target.merges.size() + " merges, the draft's "
                    + draft.merges.size();
        }
        return null;
    }

    /** A merge as "left right", whichever way the file writes it. */
    private static String merge(JsonNode merge) {
        return merge.isArray() ? merge.path(0).asText() + " " + merge.path(1).asText() : merge.asText();
    }

    private Map<String, Integer> ids() {
        Map<String, Integer> ids = new HashMap<>(tokens.length * 2);
        for (int id = tokens.length - 1; id >= 0; id--) {
            if (tokens[id] != null) {
                ids.put(tokens[id], id);
            }
        }
        return ids;
    }

    /** {@code text} in single quotes, control characters escaped. */
    private static String quote(String text) {
        StringBuilder quoted = new StringBuilder(text.length() + 2).append('\'');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isISOControl(c)) {
                quoted.append(String.format("\\u%04x", (int) c));
            }
            else {
                quoted.append(c);
            }
        }
        return quoted.append('\'').toString();
    }

    /**
     * Hex SHA-256 of a vocabulary's tokens by id, and of its model type and merges.
     *
     * @param tokens digest of every (id, token), in id order
     * @param merges digest of the model type and the merges, in rank order
     */
    public record Digest(String tokens, String merges) {

    }

    /**
     * SHA-256 over length-prefixed UTF-16 strings and ints, through one reused buffer.
     */
    private static final class Hasher {

        private final MessageDigest sha;

        private final byte[] buffer = new byte[16384];

        private int used;

        Hasher() {
            try {
                sha = MessageDigest.getInstance("SHA-256");
            }
            catch (NoSuchAlgorithmException ex) {
                throw new IllegalStateException("Every Java runtime has SHA-256", ex);
            }
        }

        void putInt(int value) {
            if (used + 4 > buffer.length) {
                flush();
            }
            buffer[used++] = (byte) (value >>> 24);
            buffer[used++] = (byte) (value >>> 16);
            buffer[used++] = (byte) (value >>> 8);
            buffer[used++] = (byte) value;
        }

        void putString(String text, int from, int to) {
            putInt(to - from);
            for (int i = from; i < to; i++) {
                if (used + 2 > buffer.length) {
                    flush();
                }
                char c = text.charAt(i);
                buffer[used++] = (byte) (c >>> 8);
                buffer[used++] = (byte) c;
            }
        }

        /** The digest so far, as hex; the hasher starts again empty. */
        String hex() {
            flush();
            return HexFormat.of().formatHex(sha.digest());
        }

        private void flush() {
            sha.update(buffer, 0, used);
            used = 0;
        }

    }

}
