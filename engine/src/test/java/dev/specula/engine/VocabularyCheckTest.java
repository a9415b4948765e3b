package dev.specula.engine;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.function.Consumer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The startup check that a draft's token ids mean the same tokens to the target: the
 * vocabularies themselves are compared, not only their sizes and special tokens.
 */
class VocabularyCheckTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path temp;

    @Test
    void sameSizeTokenizerWithPermutedIdsIsRefused() {
        // 'Ġthe' is 300 and 'ri' is 400 in the llama tokenizer; the draft's copy swaps
        // them
        Path draft = editTokenizer("llama-draft", (root) -> {
            ObjectNode vocab = (ObjectNode) root.path("model").path("vocab");
            assertThat(vocab.path("Ġthe").asInt()).isEqualTo(300);
            assertThat(vocab.path("ri").asInt()).isEqualTo(400);
            vocab.put("Ġthe", 400);
            vocab.put("ri", 300);
        });
        Path target = Fixtures.model("llama");
        assertThatThrownBy(() -> ModelPair.load(target, draft, RuntimeOptions.defaults()))
            .isInstanceOf(VocabularyMismatchException.class)
            .hasMessageContaining(target.resolve("tokenizer.json").toString())
            .hasMessageContaining(draft.resolve("tokenizer.json").toString())
            .hasMessageContaining("token 'ri' is 400 in the target's tokenizer.json but 300 in the draft's")
            .hasMessageContaining("token 'Ġthe' is 300 in the target's tokenizer.json but 400 in the draft's")
            .hasMessageContaining("2 of the draft's 512 tokens are not at the same id in the target")
            .satisfies((ex) -> {
                VocabularyMismatchException mismatch = (VocabularyMismatchException) ex;
                assertThat(mismatch.getTargetTokenizer()).isEqualTo(target.resolve("tokenizer.json"));
                assertThat(mismatch.getDraftTokenizer()).isEqualTo(draft.resolve("tokenizer.json"));
                assertThat(mismatch.getDifferences()).first()
                    .asString()
                    .contains("2 of the draft's 512 tokens are not at the same id in the target");
            });
    }

    @Test
    void sameTokensWithOtherMergesAreRefused() {
        Path draft = editTokenizer("llama-draft", (root) -> {
            ArrayNode merges = (ArrayNode) root.path("model").path("merges");
            JsonNode tenth = merges.get(10);
            merges.set(10, merges.get(11));
            merges.set(11, tenth);
        });
        JsonNode merges = Fixtures.json(Fixtures.model("llama").resolve("tokenizer.json")).path("model").path("merges");
        String tenth = merges.get(10).get(0).asText() + " " + merges.get(10).get(1).asText();
        String eleventh = merges.get(11).get(0).asText() + " " + merges.get(11).get(1).asText();
        assertThatThrownBy(() -> ModelPair.load(Fixtures.model("llama"), draft, RuntimeOptions.defaults()))
            .isInstanceOf(VocabularyMismatchException.class)
            .hasMessageContaining(draft.resolve("tokenizer.json").toString())
            .hasMessageContaining("merges differ from rank 10 on: '" + tenth + "' in the target's tokenizer.json, '"
                    + eleventh + "' in the draft's");
    }

    @Test
    void draftTokenTheTargetLacksIsNamed() {
        Path draft = editTokenizer("llama-draft", (root) -> {
            ObjectNode vocab = (ObjectNode) root.path("model").path("vocab");
            // '¢' (100) takes part in no merge
            vocab.remove("¢");
            vocab.put("<|draft-only|>", 100);
        });
        assertThatThrownBy(() -> ModelPair.load(Fixtures.model("llama"), draft, RuntimeOptions.defaults()))
            .isInstanceOf(VocabularyMismatchException.class)
            .hasMessageContaining(
                    "token '<|draft-only|>' is 100 in the draft's tokenizer.json but not in the target's");
    }

    @Test
    void compatiblePairsLoad() {
        try (ModelPair embedded = Fixtures.embeddedModels();
                DecoderModel llama = Fixtures.load("llama");
                DecoderModel draft = Fixtures.load("llama-draft");
                DecoderModel wide = Fixtures.load("llama-wide")) {
            assertThat(embedded.draft()).isPresent();
            assertThat(new ModelPair(llama, draft).draft()).contains(draft);
            // 600 logits over the same 512-token tokenizer: padding is not a mismatch
            assertThat(wide.logitsWidth()).isGreaterThan(wide.tokenizer().vocabularySize());
            assertThat(new ModelPair(wide, draft).draft()).contains(draft);
        }
    }

    @Test
    void targetMayDefineTokensTheDraftLacks() {
        // every id the draft can propose means the same token to the target; the target's
        // extra token (id 512, within its 600 logits) is one the draft never proposes
        Path wide = editTokenizer("llama-wide",
                (root) -> root.withArray("added_tokens")
                    .addObject()
                    .put("id", 512)
                    .put("content", "<|tool_call|>")
                    .put("single_word", false)
                    .put("lstrip", false)
                    .put("rstrip", false)
                    .put("normalized", false)
                    .put("special", true));
        try (ModelPair pair = ModelPair.load(wide, Fixtures.model("llama-draft"), RuntimeOptions.defaults())) {
            assertThat(pair.target().tokenizer().vocabularySize()).isEqualTo(513);
            assertThat(pair.draft().orElseThrow().tokenizer().vocabularySize()).isEqualTo(512);
        }
    }

    /** A copy of fixture {@code name} whose tokenizer.json {@code edit} changed. */
    private Path editTokenizer(String name, Consumer<ObjectNode> edit) {
        Path copy = Fixtures.copyOf(name, temp);
        Path tokenizer = copy.resolve("tokenizer.json");
        try {
            ObjectNode root = (ObjectNode) JSON.readTree(tokenizer.toFile());
            edit.accept(root);
            JSON.writeValue(tokenizer.toFile(), root);
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        return copy;
    }

}
