package dev.specula.chat;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.ToolResponseMessage;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.content.Media;
import org.springframework.ai.tool.ToolCallback;
import org.springframework.ai.tool.annotation.Tool;
import org.springframework.ai.tool.function.FunctionToolCallback;
import org.springframework.core.io.ByteArrayResource;
import org.springframework.util.MimeTypeUtils;

import dev.specula.Fixtures;
import dev.specula.engine.ModelPair;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;
import dev.specula.request.InvalidRequestException;
import dev.specula.serving.BatchingSettings;
import dev.specula.serving.GenerationService;
import dev.specula.serving.GoodputSettings;
import dev.specula.serving.ModelPairHandle;
import dev.specula.serving.ResponseCacheSettings;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Tools through the ChatModel on the embedded pair, its target given Qwen2.5-Instruct's
 * released template: ChatClient's tools reach the prompt, tool-call history renders, and
 * what cannot be served is refused by name. The tiny model never calls a tool on its own:
 * reading calls from output is tested on the formats (ToolCallFormatTest, ToolPlanTest).
 */
class SpeculaChatModelToolsTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @TempDir
    static Path directory;

    private static ModelPairHandle models;

    private static GenerationService service;

    private static SpeculaChatModel chatModel;

    /** Tools as an application writes them. */
    static final class WeatherTools {

        @Tool(description = "Get the current weather in a city")
        String currentWeather(String city) {
            return "22 C in " + city;
        }

    }

    @BeforeAll
    static void start() throws IOException {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        Path target = targetWithTemplate(directory, "target-with-qwen-template",
                releasedTemplate("qwen2.5-instruct/tools"));
        models = ModelPairHandle.ready(ModelPair.load(target, pair.draft(), RuntimeOptions.defaults()));
        service = GenerationService.builder(models)
            .responseCache(ResponseCacheSettings.disabled())
            .goodput(GoodputSettings.disabled())
            .batching(BatchingSettings.disabled())
            .prefixCacheBytes(0)
            .build();
        chatModel = SpeculaChatModel.builder()
            .service(service)
            .modelName("specula-tiny")
            .defaultOptions(SpeculaChatOptions.builder().temperature(0.0).maxTokens(16).build())
            .build();
    }

    @AfterAll
    static void stop() {
        service.close();
        models.close();
    }

    @Test
    void chatClientToolsAreRenderedIntoThePrompt() {
        RecordingChatModel recording = new RecordingChatModel(chatModel);
        ChatResponse response = ChatClient.create(recording)
            .prompt()
            .user("What's the weather in Paris?")
            .tools(new WeatherTools())
            .call()
            .chatResponse();

        Prompt sent = recording.prompts.get(0);
        assertThat(sent.getOptions()).isInstanceOfSatisfying(SpeculaChatOptions.class,
                (options) -> assertThat(options.getToolCallbacks()).hasSize(1));
        String rendered = chatModel.renderedPrompt(sent);
        assertThat(rendered).contains("# Tools",
                "<tools>\n{\"type\": \"function\", \"function\": "
                        + "{\"name\": \"currentWeather\", \"description\": \"Get the current weather in a city\", "
                        + "\"parameters\": {",
                "\"city\": {\"type\": \"string\"}", "</tools>",
                "<|im_start|>user\nWhat's the weather in Paris?<|im_end|>\n<|im_start|>assistant\n");
        // the tiny model answers in text: no call, the usual finish reason
        assertThat(response.getResult().getOutput().hasToolCalls()).isFalse();
        assertThat(response.getResult().getMetadata().getFinishReason()).isIn("stop", "length");
        assertThat(response.getMetadata().getUsage().getPromptTokens()).isGreaterThan(
                chatModel.call(new Prompt("What's the weather in Paris?")).getMetadata().getUsage().getPromptTokens());
    }

    @Test
    void historyWithToolCallsAndToolResponsesRendersAsTheTemplateExpects() {
        Prompt history = new Prompt(List.of(new UserMessage("Weather in Paris and Lyon?"), AssistantMessage.builder()
            .content("")
            .toolCalls(List.of(
                    new AssistantMessage.ToolCall("call0a1b2", "function", "currentWeather", "{\"city\": \"Paris\"}"),
                    new AssistantMessage.ToolCall("call3c4d5", "function", "currentWeather", "{\"city\":\"Lyon\"}")))
            .build(),
                ToolResponseMessage.builder()
                    .responses(List.of(new ToolResponseMessage.ToolResponse("call0a1b2", "currentWeather", "22 C"),
                            new ToolResponseMessage.ToolResponse("call3c4d5", "currentWeather", "19 C")))
                    .build()),
                SpeculaChatOptions.builder().toolCallbacks(weatherTool("currentWeather")).build());

        assertThat(chatModel.renderedPrompt(history))
            .endsWith("<|im_start|>user\nWeather in Paris and Lyon?<|im_end|>\n"
                    + "<|im_start|>assistant\n<tool_call>\n{\"name\": \"currentWeather\", \"arguments\": {\"city\": \"Paris\"}}"
                    + "\n</tool_call>\n<tool_call>\n{\"name\": \"currentWeather\", \"arguments\": {\"city\": \"Lyon\"}}\n"
                    + "</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n22 C\n</tool_response>\n"
                    + "<tool_response>\n19 C\n</tool_response><|im_end|>\n<|im_start|>assistant\n");
        ChatResponse answer = chatModel.call(history);
        assertThat(answer.getMetadata().getUsage().getCompletionTokens()).isPositive();
    }

    /**
     * Provenance tells how the output's text was made; an answer read for calls holds
     * part of it back, so the two are refused together, naming provenance; with tool
     * choice none the output is not read for calls.
     */
    @Test
    void provenanceIsRefusedWithToolsReadFromTheOutput() {
        SpeculaChatOptions both = SpeculaChatOptions.builder()
            .toolCallbacks(weatherTool("currentWeather"))
            .provenance(true)
            .build();
        assertThatThrownBy(() -> chatModel.call(new Prompt("Weather?", both))).isInstanceOfSatisfying(
                InvalidRequestException.class, (ex) -> assertThat(ex.getField()).isEqualTo("provenance"));
        assertThatThrownBy(() -> chatModel.stream(new Prompt("Weather?", both)).blockLast(TIMEOUT))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("provenance"));

        ChatResponse answer = chatModel
            .call(new Prompt("Weather?", both.mutate().toolChoice(SpeculaChatOptions.TOOL_CHOICE_NONE).build()));
        assertThat((List<?>) answer.getResult().getMetadata().get(SpeculaChatModel.METADATA_TOKENS)).isNotEmpty();
    }

    @Test
    void toolChoiceNoneOffersNoToolAndANamedChoiceOffersOnlyThatTool() {
        List<ToolCallback> tools = List.of(weatherTool("currentWeather"), weatherTool("forecast"));
        String none = chatModel.renderedPrompt(
                new Prompt("Weather?", SpeculaChatOptions.builder().toolCallbacks(tools).toolChoice("none").build()));
        String named = chatModel.renderedPrompt(new Prompt("Weather?",
                SpeculaChatOptions.builder().toolCallbacks(tools).toolChoice("forecast").build()));

        assertThat(none).doesNotContain("<tools>");
        assertThat(named).contains("\"name\": \"forecast\"").doesNotContain("\"name\": \"currentWeather\"");
    }

    @Test
    void withToolsAStreamShowsTheSameTextAsACall() {
        ChatClient client = ChatClient.create(chatModel);
        String called = client.prompt().user("def add(a, b):").tools(new WeatherTools()).call().content();
        List<String> chunks = client.prompt()
            .user("def add(a, b):")
            .tools(new WeatherTools())
            .stream()
            .content()
            .collectList()
            .block(TIMEOUT);

        assertThat(called).isNotBlank();
        assertThat(String.join("", chunks)).isEqualTo(called);
    }

    @Test
    void whatCannotBeServedIsRefusedByName() throws IOException {
        SpeculaChatOptions tools = SpeculaChatOptions.builder().toolCallbacks(weatherTool("currentWeather")).build();
        assertRefused(new Prompt("Weather?",
                SpeculaChatOptions.builder()
                    .toolCallbacks(weatherTool("currentWeather"))
                    .toolChoice("get_weather")
                    .build()),
                "toolChoice")
            .hasMessageContaining("get_weather")
            .hasMessageContaining("currentWeather");
        assertRefused(new Prompt("Weather?", SpeculaChatOptions.builder().toolChoice("required").build()),
                "toolChoice");
        assertRefused(new Prompt("Weather?",
                SpeculaChatOptions.builder()
                    .toolCallbacks(weatherTool("currentWeather"), weatherTool("currentWeather"))
                    .build()),
                "tools");
        Media image = new Media(MimeTypeUtils.IMAGE_PNG, new ByteArrayResource(new byte[] { 1, 2, 3 }));
        assertRefused(new Prompt(UserMessage.builder().text("What is this?").media(image).build()), "media")
            .hasMessageContaining("text only");
        assertRefused(new Prompt(List.of(new UserMessage("Weather?"),
                AssistantMessage.builder()
                    .content("")
                    .toolCalls(
                            List.of(new AssistantMessage.ToolCall("c1", "function", "currentWeather", "[\"Paris\"]")))
                    .build()),
                tools), "messages[1].tool_calls.function.arguments");
        assertRefused(new Prompt(List.of(new UserMessage("Weather?"),
                ToolResponseMessage.builder()
                    .responses(List.of(new ToolResponseMessage.ToolResponse("", "currentWeather", "22 C")))
                    .build()),
                tools), "messages[1].tool_call_id");

        // Llama 3's template knows no tool-call format: tools are refused, not dropped
        SpeculaChatModel withoutToolTemplate = SpeculaChatModel.builder()
            .service(
                    GenerationService.builder(ModelPairHandle.ready(ModelPair.load(
                            targetWithTemplate(directory, "target-without-tools",
                                    releasedTemplate("llama-3-instruct/system-user")),
                            null, RuntimeOptions.defaults())))
                        .batching(BatchingSettings.disabled())
                        .build())
            .build();
        try {
            assertThatThrownBy(() -> ChatClient.create(withoutToolTemplate)
                .prompt()
                .user("Weather?")
                .tools(new WeatherTools())
                .call()
                .content())
                .isInstanceOfSatisfying(InvalidRequestException.class,
                        (ex) -> assertThat(ex.getField()).isEqualTo("tools"))
                .hasMessageContaining("does not support tools");
            assertThatThrownBy(() -> withoutToolTemplate.call(new Prompt(List.of(new UserMessage("Weather?"),
                    AssistantMessage.builder()
                        .content("")
                        .toolCalls(List.of(new AssistantMessage.ToolCall("c1", "function", "currentWeather", "{}")))
                        .build()))))
                .isInstanceOfSatisfying(InvalidRequestException.class,
                        (ex) -> assertThat(ex.getField()).isEqualTo("messages"))
                .hasMessageContaining("tool calls or tool results");
        }
        finally {
            withoutToolTemplate.getService().close();
            withoutToolTemplate.getService().models().close();
        }
    }

    private static org.assertj.core.api.AbstractThrowableAssert<?, ?> assertRefused(Prompt prompt, String field) {
        return assertThatThrownBy(() -> chatModel.call(prompt)).isInstanceOfSatisfying(InvalidRequestException.class,
                (ex) -> assertThat(ex.getField()).isEqualTo(field));
    }

    static ToolCallback weatherTool(String name) {
        return FunctionToolCallback.builder(name, (WeatherRequest request) -> "22 C in " + request.city())
            .description("Weather in a city")
            .inputType(WeatherRequest.class)
            .build();
    }

    record WeatherRequest(String city) {
    }

    /**
     * The embedded target in a directory of its own whose chat template is
     * {@code template} (its files linked, the template replaced).
     */
    static Path targetWithTemplate(Path parent, String name, String template) throws IOException {
        Path target = Files.createDirectories(parent.resolve(name));
        try (Stream<Path> files = Files.list(Fixtures.embeddedPair().target())) {
            for (Path file : files.toList()) {
                if (!file.getFileName().toString().equals("chat_template.jinja")) {
                    Files.createSymbolicLink(target.resolve(file.getFileName()), file.toAbsolutePath());
                }
            }
        }
        Files.writeString(target.resolve("chat_template.jinja"), template);
        return target;
    }

    static String releasedTemplate(String caseName) {
        try (InputStream fixture = SpeculaChatModelToolsTest.class
            .getResourceAsStream("/fixtures/chat-templates.json")) {
            for (JsonNode testCase : new ObjectMapper().readTree(fixture)) {
                if (testCase.path("name").asText().equals(caseName)) {
                    return testCase.path("template").asText();
                }
            }
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        throw new IllegalStateException("No chat-template fixture " + caseName);
    }

    /** Records the prompts ChatClient sends, and passes them on. */
    static final class RecordingChatModel implements ChatModel {

        final List<Prompt> prompts = new ArrayList<>();

        private final SpeculaChatModel delegate;

        RecordingChatModel(SpeculaChatModel delegate) {
            this.delegate = delegate;
        }

        @Override
        public ChatResponse call(Prompt prompt) {
            prompts.add(prompt);
            return delegate.call(prompt);
        }

        @Override
        public ChatOptions getOptions() {
            return delegate.getOptions();
        }

    }

}
