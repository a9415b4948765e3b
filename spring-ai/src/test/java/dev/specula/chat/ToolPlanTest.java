package dev.specula.chat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.tool.ToolCallback;

import dev.specula.request.InvalidRequestException;
import dev.specula.tokenizer.ChatTemplate;
import dev.specula.tokenizer.ChatTool;
import dev.specula.toolcall.ToolCallFormat;
import dev.specula.toolcall.ToolCallSyntax;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Which tools a request offers and how its output is read, for each {@code toolChoice},
 * on released templates; and a model's calls as Spring AI tool calls.
 */
class ToolPlanTest {

    private static final ToolCallback WEATHER = SpeculaChatModelToolsTest.weatherTool("currentWeather");

    private static final ToolCallback FORECAST = SpeculaChatModelToolsTest.weatherTool("forecast");

    @TempDir
    Path directory;

    @Test
    void theTemplateChoosesTheFormatAndToolChoiceTheOfferedTools() throws IOException {
        Optional<ChatTemplate> qwen = template("qwen2.5-instruct/tools");
        ToolPlan auto = ToolPlan.of(options(null), qwen);
        assertThat(auto.format()).isEqualTo(ToolCallFormat.HERMES);
        assertThat(auto.offered()).extracting(ChatTool::name).containsExactly("currentWeather", "forecast");
        assertThat(auto.offered().get(0).parameters()).contains("\"city\"");
        assertThat(auto.callRequired()).isFalse();

        ToolPlan named = ToolPlan.of(options("forecast"), template("mistral-nemo-instruct-2407/tools-user"));
        assertThat(named.offered()).extracting(ChatTool::name).containsExactly("forecast");
        assertThat(named.callRequired()).isTrue();
        assertThat(named.syntax()).isEqualTo(new ToolCallSyntax("[TOOL_CALLS]", "", ", ", "arguments", true));

        ToolPlan required = ToolPlan.of(options("required"), template("llama-3.3-instruct/tools"));
        assertThat(required.format()).isEqualTo(ToolCallFormat.LLAMA3_JSON);
        assertThat(required.offered()).hasSize(2);
        assertThat(required.callRequired()).isTrue();

        ToolPlan none = ToolPlan.of(options("none"), qwen);
        assertThat(none.offered()).isEmpty();
        assertThat(none.readsCalls()).isFalse();
        assertThat(ToolPlan.of(SpeculaChatOptions.builder().build(), Optional.empty())).isEqualTo(ToolPlan.NONE);

        assertThatThrownBy(() -> ToolPlan.of(options(null), template("llama-3-instruct/user-only")))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("tools"));
        assertThatThrownBy(() -> ToolPlan.of(options(null), Optional.empty())).isInstanceOfSatisfying(
                InvalidRequestException.class, (ex) -> assertThat(ex.getField()).isEqualTo("tools"));
    }

    @Test
    void callsBecomeSpringAiToolCallsAndParallelFalseKeepsTheFirst() throws IOException {
        String output = "Checking.\n<tool_call>\n{\"name\": \"currentWeather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                + "</tool_call>\n<tool_call>\n{\"name\": \"forecast\", \"arguments\": {\"city\": \"Lyon\"}}\n</tool_call>";
        ToolPlan all = ToolPlan.of(options(null), template("qwen2.5-instruct/tools"));
        List<AssistantMessage.ToolCall> calls = all.keptCalls(all.format().parse(output));
        assertThat(calls)
            .extracting(AssistantMessage.ToolCall::type, AssistantMessage.ToolCall::name,
                    AssistantMessage.ToolCall::arguments)
            .containsExactly(org.assertj.core.groups.Tuple.tuple("function", "currentWeather", "{\"city\":\"Paris\"}"),
                    org.assertj.core.groups.Tuple.tuple("function", "forecast", "{\"city\":\"Lyon\"}"));
        assertThat(calls).allSatisfy((call) -> assertThat(call.id()).startsWith("call_"));

        ToolPlan first = ToolPlan.of(
                SpeculaChatOptions.builder().toolCallbacks(WEATHER, FORECAST).parallelToolCalls(false).build(),
                template("qwen2.5-instruct/tools"));
        assertThat(first.keptCalls(first.format().parse(output))).extracting(AssistantMessage.ToolCall::name)
            .containsExactly("currentWeather");
    }

    private static SpeculaChatOptions options(String toolChoice) {
        return SpeculaChatOptions.builder().toolCallbacks(WEATHER, FORECAST).toolChoice(toolChoice).build();
    }

    private Optional<ChatTemplate> template(String caseName) throws IOException {
        Path file = Files.writeString(directory.resolve(caseName.replace('/', '-') + ".jinja"),
                SpeculaChatModelToolsTest.releasedTemplate(caseName));
        return ChatTemplate.load(Optional.empty(), Optional.of(file));
    }

}
