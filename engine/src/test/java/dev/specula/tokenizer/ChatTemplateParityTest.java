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
 * Mistral-Nemo, Zephyr, Gemma, Phi-3, SmolLM2) and the fixtures' own render exactly as
 * transformers renders them (fixtures/chat-templates.json), tools, tool calls and tool
 * results included: given as the fixture's maps, and given as {@link ChatMessage}s and
 * {@link ChatTool}s (arguments and schemas as JSON text).
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

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void typedMessagesAndToolsRenderLikeTransformers(String name, JsonNode testCase) throws Exception {
        ChatTemplate template = new ChatTemplate(testCase.path("template").asText(), text(testCase.path("bos_token")),
                text(testCase.path("eos_token")));
        List<ChatMessage> messages = new ArrayList<>();
        for (JsonNode message : testCase.path("messages")) {
            messages.add(chatMessage(message));
        }
        List<ChatTool> tools = new ArrayList<>();
        for (JsonNode tool : testCase.path("tools")) {
            JsonNode function = tool.path("function");
            tools.add(new ChatTool(function.path("name").asText(), text(function.path("description")),
                    JSON.writeValueAsString(function.path("parameters"))));
        }
        Map<String, Object> extra = new LinkedHashMap<>();
        if (!tools.isEmpty()) {
            extra.put("tools", tools.stream().map(ChatTool::templateValue).toList());
        }
        if (testCase.hasNonNull("extra_context")) {
            extra.putAll(JSON.convertValue(testCase.path("extra_context"), new TypeReference<Map<String, Object>>() {
            }));
        }
        boolean generationPrompt = testCase.path("add_generation_prompt").asBoolean();
        if (testCase.has("expected_error")) {
            assertThatThrownBy(() -> template.render(messages, generationPrompt, extra))
                .isInstanceOf(ChatTemplateException.class)
                .hasMessage(testCase.path("expected_error").asText());
        }
        else {
            assertThat(template.render(messages, generationPrompt, extra))
                .isEqualTo(testCase.path("expected").asText());
            if (!testCase.hasNonNull("extra_context")) {
                assertThat(template.render(messages, tools, generationPrompt))
                    .isEqualTo(testCase.path("expected").asText());
            }
        }
    }

    /**
     * A fixture message as a ChatMessage; a tool result without an id (an older fixture
     * case) gets one, which that template does not render.
     */
    private static ChatMessage chatMessage(JsonNode message) throws Exception {
        List<ToolCall> calls = new ArrayList<>();
        for (JsonNode call : message.path("tool_calls")) {
            calls.add(new ToolCall(text(call.path("id")), call.path("function").path("name").asText(),
                    JSON.writeValueAsString(call.path("function").path("arguments"))));
        }
        String role = message.path("role").asText();
        String toolCallId = "tool".equals(role) && !message.hasNonNull("tool_call_id") ? "unrendered"
                : text(message.path("tool_call_id"));
        return new ChatMessage(role, text(message.path("content")), calls, toolCallId, text(message.path("name")));
    }

    private static String text(JsonNode node) {
        return node.isNull() || node.isMissingNode() ? null : node.asText();
    }

}
