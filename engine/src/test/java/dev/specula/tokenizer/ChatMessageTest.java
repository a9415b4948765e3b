package dev.specula.tokenizer;

import java.util.List;

import org.junit.jupiter.api.Test;

import dev.specula.request.InvalidRequestException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Messages with tool calls and tool results: what a template receives, and the mistakes
 * refused by field name.
 */
class ChatMessageTest {

    @Test
    void toolCallsReachTheTemplateAsOpenAiShapedMapsWithParsedArguments() {
        ChatMessage call = ChatMessage.assistant(null,
                List.of(new ToolCall("call0a1b2", "get_weather", "{\"city\": \"Paris\", \"days\": [1, 2]}")));
        ChatMessage result = ChatMessage.tool("call0a1b2", "get_weather", "22 C");

        assertThat(PythonJson.dumps(call.templateValue(), null))
            .isEqualTo("{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"call0a1b2\", "
                    + "\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": "
                    + "{\"city\": \"Paris\", \"days\": [1, 2]}}}]}");
        assertThat(PythonJson.dumps(result.templateValue(), null)).isEqualTo(
                "{\"role\": \"tool\", \"tool_call_id\": \"call0a1b2\", \"name\": \"get_weather\", \"content\": \"22 C\"}");
        assertThat(ChatMessage.user("hi")).isEqualTo(new ChatMessage("user", "hi", List.of(), null, null));
    }

    @Test
    void mistakesAreRefusedNamingTheField() {
        assertThatThrownBy(() -> new ChatMessage("tool", "22 C", List.of(), null, "get_weather"))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("tool_call_id"))
            .hasMessageContaining("tool_call_id");
        for (String arguments : List.of("[1, 2]", "\"Paris\"", "{\"city\": ", "{} {}", "")) {
            assertThatThrownBy(() -> new ToolCall("c", "get_weather", arguments)).as(arguments)
                .isInstanceOfSatisfying(InvalidRequestException.class,
                        (ex) -> assertThat(ex.getField()).isEqualTo("tool_calls.function.arguments"))
                .hasMessageContaining("JSON object");
        }
        assertThatThrownBy(() -> new ToolCall("c", " ", "{}")).isInstanceOfSatisfying(InvalidRequestException.class,
                (ex) -> assertThat(ex.getField()).isEqualTo("tool_calls.function.name"));
        assertThatThrownBy(() -> new ChatMessage("user", "x", List.of(new ToolCall("c", "f", "{}")), null, null))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("tool_calls"));
        assertThatThrownBy(() -> new ChatTool("get_weather", null, "[]")).isInstanceOfSatisfying(
                InvalidRequestException.class, (ex) -> assertThat(ex.getField()).isEqualTo("tools"));
        assertThatThrownBy(() -> new ChatMessage("user", null, List.of(), null, null))
            .isInstanceOf(IllegalArgumentException.class);
    }

}
