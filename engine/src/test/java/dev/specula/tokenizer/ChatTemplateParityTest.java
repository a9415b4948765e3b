package dev.specula.tokenizer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import dev.specula.Fixtures;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Released models' chat templates (ChatML/Qwen2.5, Llama 2/3/3.1+, Mistral, Mixtral,
 * Zephyr, Gemma, Phi-3, SmolLM2) and the fixtures' own render exactly as transformers
 * renders them (fixtures/chat-templates.json).
 */
class ChatTemplateParityTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (JsonNode testCase : Fixtures.json(Fixtures.path("chat-templates.json"))) {
            cases.add(Arguments.of(testCase.path("name").asText(), testCase));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void rendersLikeTransformers(String name, JsonNode testCase) {
        ChatTemplate template = new ChatTemplate(testCase.path("template").asText(), text(testCase.path("bos_token")),
                text(testCase.path("eos_token")));
        List<Map<String, Object>> messages = JSON.convertValue(testCase.path("messages"), new TypeReference<>() {
        });
        Map<String, Object> extra = new LinkedHashMap<>();
        if (testCase.hasNonNull("tools")) {
            extra.put("tools", JSON.convertValue(testCase.path("tools"), new TypeReference<List<Object>>() {
            }));
        }
        if (testCase.hasNonNull("extra_context")) {
            extra.putAll(JSON.convertValue(testCase.path("extra_context"), new TypeReference<Map<String, Object>>() {
            }));
        }
        boolean generationPrompt = testCase.path("add_generation_prompt").asBoolean();
        if (testCase.has("expected_error")) {
            assertThatThrownBy(() -> template.renderMessages(messages, generationPrompt, extra))
                .isInstanceOf(ChatTemplateException.class)
                .hasMessage(testCase.path("expected_error").asText());
        }
        else {
            assertThat(template.renderMessages(messages, generationPrompt, extra))
                .isEqualTo(testCase.path("expected").asText());
        }
    }

    private static String text(JsonNode node) {
        return node.isNull() || node.isMissingNode() ? null : node.asText();
    }

}
