package dev.specula.tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import dev.specula.Fixtures;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Vocabulary digests and differences: equal for the same tokens and merges however the
 * file writes them, different for the same tokens at other ids, and cheap on a
 * Qwen2.5-sized vocabulary.
 */
class VocabularyTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Qwen2.5: 151,643 BPE tokens (256 bytes and 151,387 merges) and 22 added tokens. */
    private static final int MERGES = 151_387;

    private static final int ADDED = 22;

    @TempDir
    Path temp;

    @Test
    void sameTokensAndMergesHaveTheSameDigestHoweverWritten() throws IOException {
        List<String> tokens = byteTokens();
        List<String[]> merges = merges(tokens, 2_000, 1);
        Path pairs = write("pairs.json", tokens, merges, false, false);
        Path strings = write("strings.json", tokens, merges, true, true);
        Vocabulary first = Vocabulary.read(pairs);
        Vocabulary second = Vocabulary.read(strings);
        assertThat(first.digest()).isEqualTo(second.digest());
        assertThat(Vocabulary.differences(first, second)).isEmpty();
        assertThat(TextTokenizer.load(pairs).vocabularyDigest()).isEqualTo(first.digest());
    }

    @Test
    void fixtureTokenizersOfOneFamilyShareTheirDigest() {
        Vocabulary llama = Vocabulary.read(Fixtures.model("llama").resolve("tokenizer.json"));
        Vocabulary draft = Vocabulary.read(Fixtures.model("llama-draft").resolve("tokenizer.json"));
        Vocabulary gpt2 = Vocabulary.read(Fixtures.model("gpt2").resolve("tokenizer.json"));
        Vocabulary qwen2 = Vocabulary.read(Fixtures.model("qwen2").resolve("tokenizer.json"));
        assertThat(llama.digest()).isEqualTo(draft.digest());
        assertThat(gpt2.digest().tokens()).isNotEqualTo(qwen2.digest().tokens());
        // same size, other tokenizer: most ids mean other tokens
        assertThat(gpt2.size()).isEqualTo(qwen2.size());
        assertThat(Vocabulary.differences(qwen2, gpt2)).first()
            .asString()
            .matches("\\d+ of the draft's 512 tokens are not at the same id in the target");
    }

    /**
     * The characters-per-token bound holds for texts that tokenize into few, long tokens
     * (runs of spaces and of one symbol, code indentation) and for non-Latin text, with
     * each fixture tokenizer that has one.
     */
    @Test
    void maxCharactersPerTokenBoundsTheTokensOfEveryText() {
        List<String> texts = List.of("def f(x):\n" + "    ".repeat(200) + "return x\n", " ".repeat(3000),
                "=".repeat(2000), "\n".repeat(500), "Ελληνικά και 日本語のテキスト、emoji 🙂🙂🙂 ".repeat(40),
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        int bounded = 0;
        for (String model : List.of("gpt2", "qwen2", "llama", "llama3", "mistral", "phi3", "gemma2")) {
            Path file = Fixtures.model(model).resolve("tokenizer.json");
            if (!Files.exists(file)) {
                continue;
            }
            try (TextTokenizer tokenizer = TextTokenizer.load(file)) {
                int perToken = tokenizer.maxCharactersPerToken();
                if (perToken == 0) {
                    continue;
                }
                bounded++;
                for (String text : texts) {
                    int tokens = tokenizer.encode(text, false).length;
                    assertThat((long) tokens * perToken)
                        .as("%s: %d tokens of %d characters, bound %d", model, tokens, text.length(), perToken)
                        .isGreaterThanOrEqualTo(text.length());
                }
            }
        }
        assertThat(bounded).isGreaterThanOrEqualTo(3);
    }

    /**
     * Normalizers that never shorten text keep the bound at the longest token, NFC and
     * NFKC multiply it by 4, others (a regex replacement, stripping) leave no bound.
     */
    @Test
    void normalizersThatFoldTextWidenOrRemoveTheBound() throws IOException {
        assertThat(bound("null")).isEqualTo(5);
        assertThat(bound("{\"type\": \"NFC\"}")).isEqualTo(20);
        assertThat(bound("{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"_\"}, "
                + "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"_\"}]}"))
            .isEqualTo(5);
        assertThat(bound("{\"type\": \"Replace\", \"pattern\": {\"Regex\": \" +\"}, \"content\": \" \"}")).isZero();
        assertThat(bound("{\"type\": \"Strip\", \"strip_left\": true, \"strip_right\": true}")).isZero();
    }

    private int bound(String normalizer) throws IOException {
        Path file = temp.resolve("normalized.json");
        Files.writeString(file, "{\"normalizer\": " + normalizer
                + ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"hello\": 1}, \"merges\": []}}");
        return Vocabulary.read(file).maxCharactersPerToken();
    }

    @Test
    void absurdTokenIdIsABrokenFile() throws IOException {
        Path file = temp.resolve("tokenizer.json");
        Files.writeString(file, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2000000000}}}");
        assertThatThrownBy(() -> Vocabulary.read(file)).isInstanceOf(TokenizerLoadException.class)
            .hasMessageContaining(file.toString())
            .hasMessageContaining("Token id 2000000000");
    }

    /**
     * A Qwen2.5-sized tokenizer.json and a copy with two ids swapped: the digest pass and
     * the whole load are timed (printed, not asserted), the swap is found.
     */
    @Test
    void qwenSizedVocabulary() throws IOException {
        List<String> tokens = byteTokens();
        List<String[]> merges = merges(tokens, MERGES, 7);
        Path file = write("qwen-sized.json", tokens, merges, false, false);
        String first = tokens.get(1_000);
        tokens.set(1_000, tokens.get(100_000));
        tokens.set(100_000, first);
        Path swapped = write("qwen-sized-swapped.json", tokens, merges, false, false);

        long start = System.nanoTime();
        Vocabulary vocabulary = Vocabulary.read(file);
        long read = System.nanoTime();
        Vocabulary.Digest digest = vocabulary.digest();
        long digested = System.nanoTime();
        try (TextTokenizer tokenizer = TextTokenizer.load(file)) {
            long loaded = System.nanoTime();
            System.out.printf("%d tokens, %d merges: parse %.1f ms, digest %.1f ms; TextTokenizer.load %.1f ms%n",
                    vocabulary.size(), MERGES, (read - start) / 1e6, (digested - read) / 1e6,
                    (loaded - digested) / 1e6);
            assertThat(tokenizer.vocabularySize()).isEqualTo(151_665);
            assertThat(tokenizer.vocabularyDigest()).isEqualTo(digest);
        }
        Vocabulary other = Vocabulary.read(swapped);
        assertThat(other.digest().tokens()).isNotEqualTo(digest.tokens());
        assertThat(Vocabulary.differences(vocabulary, other)).containsExactly(
                "2 of the draft's 151665 tokens are not at the same id in the target",
                "token '" + tokens.get(1_000) + "' is 100000 in the target's tokenizer.json but 1000 in the draft's",
                "token '" + first + "' is 1000 in the target's tokenizer.json but 100000 in the draft's");
    }

    /**
     * 256 single-character tokens, as byte-level BPE maps bytes to characters from
     * U+0100.
     */
    private static List<String> byteTokens() {
        List<String> tokens = new ArrayList<>();
        for (int i = 0; i < 256; i++) {
            tokens.add(String.valueOf((char) (0x100 + i)));
        }
        return tokens;
    }

    /**
     * {@code count} merges of two tokens into a new one, appended to {@code tokens}, as
     * BPE training would leave them (each merge's parts exist before it).
     */
    private static List<String[]> merges(List<String> tokens, int count, long seed) {
        Random random = new Random(seed);
        Set<String> known = new HashSet<>(tokens);
        List<String[]> merges = new ArrayList<>(count);
        while (merges.size() < count) {
            String left = tokens.get(random.nextInt(tokens.size()));
            String right = tokens.get(random.nextInt(Math.min(tokens.size(), 4_096)));
            String merged = left + right;
            if (merged.length() <= 12 && known.add(merged)) {
                tokens.add(merged);
                merges.add(new String[] { left, right });
            }
        }
        return merges;
    }

    /**
     * A BPE tokenizer.json of {@code tokens} (ids in list order) and {@code merges}, with
     * {@link #ADDED} special tokens after them; optionally its vocabulary written in
     * reverse order and its merges as "left right" strings.
     */
    private Path write(String name, List<String> tokens, List<String[]> merges, boolean reversed, boolean mergeStrings)
            throws IOException {
        Path file = temp.resolve(name);
        try (JsonGenerator json = JSON.getFactory().createGenerator(file.toFile(), JsonEncoding.UTF8)) {
            json.writeStartObject();
            json.writeStringField("version", "1.0");
            json.writeArrayFieldStart("added_tokens");
            for (int i = 0; i < ADDED; i++) {
                json.writeStartObject();
                json.writeNumberField("id", tokens.size() + i);
                json.writeStringField("content", "<|special_" + i + "|>");
                json.writeBooleanField("single_word", false);
                json.writeBooleanField("lstrip", false);
                json.writeBooleanField("rstrip", false);
                json.writeBooleanField("normalized", false);
                json.writeBooleanField("special", true);
                json.writeEndObject();
            }
            json.writeEndArray();
            json.writeObjectFieldStart("model");
            json.writeStringField("type", "BPE");
            json.writeNullField("dropout");
            json.writeNullField("unk_token");
            json.writeBooleanField("fuse_unk", false);
            json.writeBooleanField("byte_fallback", false);
            json.writeObjectFieldStart("vocab");
            for (int i = 0; i < tokens.size(); i++) {
                int id = reversed ? tokens.size() - 1 - i : i;
                json.writeNumberField(tokens.get(id), id);
            }
            json.writeEndObject();
            json.writeArrayFieldStart("merges");
            for (String[] merge : merges) {
                if (mergeStrings) {
                    json.writeString(merge[0] + " " + merge[1]);
                }
                else {
                    json.writeStartArray();
                    json.writeString(merge[0]);
                    json.writeString(merge[1]);
                    json.writeEndArray();
                }
            }
            json.writeEndArray();
            json.writeEndObject();
            json.writeEndObject();
        }
        return file;
    }

}
