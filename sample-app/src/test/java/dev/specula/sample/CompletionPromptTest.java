package dev.specula.sample;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

import dev.specula.models.tiny.TinyModels;
import dev.specula.request.InvalidRequestException;
import dev.specula.tokenizer.TextTokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The ids a completion request puts before the model: on the embedded pair's tokenizer
 * (no fill-in-the-middle tokens) and on a copy of it given Qwen's three FIM tokens.
 */
class CompletionPromptTest {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    @TempDir
    static Path directory;

    private static TextTokenizer plain;

    private static TextTokenizer fim;

    @BeforeAll
    static void loadTokenizers() throws Exception {
        Path original = TinyModels.extract().target().resolve("tokenizer.json");
        plain = TextTokenizer.load(original);
        ObjectNode json = (ObjectNode) JSON.readTree(original.toFile());
        ArrayNode added = (ArrayNode) json.get("added_tokens");
        int id = plain.vocabularySize();
        for (String token : FimTokens.KNOWN.get(0)) {
            added.addObject()
                .put("id", id++)
                .put("content", token)
                .put("single_word", false)
                .put("lstrip", false)
                .put("rstrip", false)
                .put("normalized", false)
                .put("special", true);
        }
        Path withFim = directory.resolve("tokenizer.json");
        Files.writeString(withFim, JSON.writeValueAsString(json));
        fim = TextTokenizer.load(withFim);
    }

    @AfterAll
    static void close() {
        plain.close();
        fim.close();
    }

    @Test
    void aTextPromptIsTokenizedAsItIsAndEchoedAsSent() {
        CompletionPrompt prompt = of(plain, "{\"prompt\": \"def add(a, b):\", \"echo\": true}");

        assertThat(prompt.ids()).containsExactly(plain.encode("def add(a, b):", true));
        assertThat(prompt.echo()).isEqualTo("def add(a, b):");
        assertThat(of(plain, "{\"prompt\": \"import os\"}").echo()).isNull();
    }

    @Test
    void tokenIdsAreTakenAsTheyAreAndEchoedDecoded() {
        int[] ids = plain.encode("class Stack:", true);
        String body = "{\"prompt\": " + java.util.Arrays.toString(ids) + ", \"echo\": true}";

        CompletionPrompt prompt = of(plain, body);

        assertThat(prompt.ids()).containsExactly(ids);
        assertThat(prompt.echo()).isEqualTo("class Stack:");
    }

    @Test
    void anIdOutsideTheVocabularyIsRefusedNamingItsIndex() {
        String body = "{\"prompt\": [1, " + plain.vocabularySize() + "]}";

        assertThatThrownBy(() -> of(plain, body))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("prompt[1]"))
            .hasMessageContaining("from 0 to " + (plain.vocabularySize() - 1));
    }

    @Test
    void aSuffixNeedsFillInTheMiddleTokens() {
        assertThat(FimTokens.of(plain)).isEmpty();
        assertThatThrownBy(() -> of(plain, "{\"prompt\": \"def add(a, b):\", \"suffix\": \"\\nprint(add(1, 2))\"}"))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("suffix"))
            .hasMessageContaining("<|fim_prefix|>")
            .hasMessageContaining("'specula-tiny' has none");
        // an empty suffix is no suffix: nothing to fill around
        assertThat(of(plain, "{\"prompt\": \"import os\", \"suffix\": \"\"}").ids())
            .containsExactly(plain.encode("import os", true));
    }

    @Test
    void withFillInTheMiddleTokensPromptAndSuffixAreWrappedInThem() {
        FimTokens tokens = FimTokens.of(fim).orElseThrow();
        int base = plain.vocabularySize();
        assertThat(tokens).isEqualTo(new FimTokens(base, base + 1, base + 2));

        CompletionPrompt text = of(fim, "{\"prompt\": \"def add(a, b):\\n\", \"suffix\": \"\\nprint(add(1, 2))\"}");
        int[] ids = plain.encode("print", false);
        CompletionPrompt tokenIds = of(fim, "{\"prompt\": " + java.util.Arrays.toString(ids) + ", \"suffix\": \"x\"}");

        assertThat(text.ids()).containsExactly(concat(new int[] { base }, fim.encode("def add(a, b):\n", false),
                new int[] { base + 1 }, fim.encode("\nprint(add(1, 2))", false), new int[] { base + 2 }));
        assertThat(tokenIds.ids()).containsExactly(concat(new int[] { base }, ids, new int[] { base + 1 },
                fim.encode("x", false), new int[] { base + 2 }));
    }

    private static CompletionPrompt of(TextTokenizer tokenizer, String body) {
        return CompletionPrompt.of(CompletionRequest.read(JSON.readTree(body), "specula-tiny"), tokenizer,
                "specula-tiny");
    }

    private static int[] concat(int[]... parts) {
        return java.util.Arrays.stream(parts).flatMapToInt(java.util.stream.IntStream::of).toArray();
    }

}
