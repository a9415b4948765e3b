package dev.specula.autoconfigure;

import java.io.IOException;
import java.nio.file.Path;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.diagnostics.FailureAnalysis;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;

import dev.specula.autoconfigure.diagnostics.VocabularyMismatchFailureAnalyzer;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A draft whose tokenizer has the target's size and special tokens but other ids stops
 * startup, and the analysis names both tokenizer files, the first differing tokens and
 * what to do.
 */
class VocabularyMismatchFailureAnalyzerTests {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
        .withConfiguration(AutoConfigurations.of(TestModels.AUTO_CONFIGURATIONS));

    @Test
    void draftWithTheSameSizeButOtherIdsIsRefused(@TempDir Path temp) throws IOException {
        // the embedded draft with 'Ġencode' (2000) and 'Oper' (3000) swapped
        Path draft = TestModels.copy(TestModels.pair().draft(), temp.resolve("draft-permuted"));
        Path tokenizer = draft.resolve("tokenizer.json");
        ObjectNode root = (ObjectNode) JSON.readTree(tokenizer.toFile());
        ObjectNode vocab = (ObjectNode) root.path("model").path("vocab");
        assertThat(vocab.path("Ġencode").asInt()).isEqualTo(2000);
        assertThat(vocab.path("Oper").asInt()).isEqualTo(3000);
        vocab.put("Ġencode", 3000);
        vocab.put("Oper", 2000);
        JSON.writeValue(tokenizer.toFile(), root);
        Path target = TestModels.pair().target();
        runner.withPropertyValues("specula.target.location=" + target, "specula.draft.location=" + draft)
            .run((context) -> {
                assertThat(context).hasFailed();
                FailureAnalysis analysis = new VocabularyMismatchFailureAnalyzer().analyze(context.getStartupFailure());
                assertThat(analysis).isNotNull();
                System.out.println("=== vocabulary mismatch, same size ===\nDescription:\n" + analysis.getDescription()
                        + "\n\nAction:\n" + analysis.getAction() + "\n");
                assertThat(analysis.getDescription()).contains("Target: " + target,
                        "Target tokenizer: " + target.resolve("tokenizer.json"), "Draft:  " + draft,
                        "Draft tokenizer:  " + tokenizer,
                        "2 of the draft's 4096 tokens are not at the same id in the target",
                        "token 'Oper' is 3000 in the target's tokenizer.json but 2000 in the draft's",
                        "token 'Ġencode' is 2000 in the target's tokenizer.json but 3000 in the draft's");
                assertThat(analysis.getAction()).contains("specula.draft.location", "same tokenizer",
                        "specula.draft.enabled=false");
            });
    }

    @Test
    void draftWithAnExtraTokenNamesIt(@TempDir Path temp) {
        Path draft = TestModels.draftWithExtraToken(temp);
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.draft.location=" + draft)
            .run((context) -> {
                assertThat(context).hasFailed();
                FailureAnalysis analysis = new VocabularyMismatchFailureAnalyzer().analyze(context.getStartupFailure());
                assertThat(analysis.getDescription()).contains("Draft tokenizer:  " + draft.resolve("tokenizer.json"),
                        "token '<|specula-extra|>' is 4096 in the draft's tokenizer.json but not in the target's");
            });
    }

}
