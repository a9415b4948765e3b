package dev.specula.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import dev.specula.Fixtures;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * DJL's tokenizer (truncation off) gives transformers' ids and decoded text: byte-level
 * BPEs of the fixture models and stories260K's SentencePiece-style BPE with byte fallback
 * (fixtures/tokenizers.json).
 */
class TokenizerParityTest {

    private static final Map<String, TextTokenizer> TOKENIZERS = new HashMap<>();

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (JsonNode testCase : Fixtures.json(Fixtures.path("tokenizers.json"))) {
            String text = testCase.path("text").asText();
            String label = testCase.path("tokenizer").asText() + ": "
                    + (text.length() > 30 ? text.substring(0, 30) + "…" : text);
            cases.add(Arguments.of(label.replace("\n", "\\n"), testCase));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void encodesAndDecodesLikeTransformers(String label, JsonNode testCase) {
        TextTokenizer tokenizer = TOKENIZERS.computeIfAbsent(testCase.path("tokenizer").asText(),
                (dir) -> TextTokenizer.load(Fixtures.path(dir).resolve("tokenizer.json")));
        int[] expected = Fixtures.ints(testCase.path("ids"));
        assertThat(tokenizer.encode(testCase.path("text").asText(), true)).containsExactly(expected);
        assertThat(tokenizer.decode(expected, false)).isEqualTo(testCase.path("decoded").asText());
    }

    @AfterAll
    static void close() {
        TOKENIZERS.values().forEach(TextTokenizer::close);
    }

}
