package dev.specula.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import dev.specula.Fixtures;
import dev.specula.models.tiny.TinyModels;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The embedded pair's chat template hands code through as code and leaves the last
 * message open, exactly as transformers renders it (fixtures/embedded-chat-template.json,
 * written by {@code python -m specula_tools.pair_template fixture}).
 */
class EmbeddedChatTemplateTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (JsonNode testCase : Fixtures.json(Fixtures.path("embedded-chat-template.json"))) {
            cases.add(Arguments.of(testCase.path("name").asText() + ", generation prompt "
                    + testCase.path("add_generation_prompt").asBoolean(), testCase));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void rendersLikeTransformers(String name, JsonNode testCase) {
        List<Map<String, Object>> messages = JSON.convertValue(testCase.path("messages"), new TypeReference<>() {
        });
        Map<String, Object> variables = testCase.has("tools")
                ? Map.of("tools", JSON.convertValue(testCase.path("tools"), new TypeReference<List<Object>>() {
                })) : Map.of();
        assertThat(shippedTemplate().renderMessages(messages, testCase.path("add_generation_prompt").asBoolean(),
                variables))
            .isEqualTo(testCase.path("expected").asText());
    }

    @Test
    void aFunctionHeaderIsLeftOpenForTheModelToIndent() {
        String rendered = shippedTemplate().render(List.of(new ChatMessage("user", "def fibonacci(n):")), true);

        assertThat(rendered).endsWith("\ndef fibonacci(n):").doesNotContain("# def");
    }

    @Test
    void tokenizerConfigCarriesTheSameTemplateAsTheJinjaFile() {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        for (var directory : List.of(pair.target(), pair.draft())) {
            ChatTemplate inline = ChatTemplate
                .load(Optional.of(directory.resolve("tokenizer_config.json")), Optional.empty())
                .orElseThrow();
            assertThat(inline.source()).as(directory.toString()).isEqualTo(shippedTemplate().source());
        }
    }

    private static ChatTemplate shippedTemplate() {
        var target = Fixtures.embeddedPair().target();
        return ChatTemplate
            .load(Optional.of(target.resolve("tokenizer_config.json")),
                    Optional.of(target.resolve("chat_template.jinja")))
            .orElseThrow();
    }

}
