package dev.specula.chat;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.chat.client.ChatClientRequest;
import org.springframework.ai.chat.client.ChatClientResponse;
import org.springframework.ai.chat.client.advisor.api.CallAdvisor;
import org.springframework.ai.chat.client.advisor.api.CallAdvisorChain;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.ToolResponseMessage;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.support.ToolCallbacks;
import org.springframework.ai.tool.annotation.Tool;
import org.springframework.core.Ordered;

import dev.specula.Fixtures;
import dev.specula.engine.ModelPair;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;
import dev.specula.serving.BatchingSettings;
import dev.specula.serving.GenerationService;
import dev.specula.serving.GoodputSettings;
import dev.specula.serving.ModelPairHandle;
import dev.specula.serving.ResponseCacheSettings;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code toolChoice} {@code required} forces a valid call with released chat templates
 * (Qwen2.5's Hermes {@code <tool_call>}, Llama 3.x's JSON, Mistral-Nemo's
 * {@code [TOOL_CALLS]}) on the embedded pair, a model far too weak to call tools on its
 * own: through call, stream, and ChatClient's tool loop.
 */
class ForcedToolCallsTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    private static final AtomicInteger SERVED = new AtomicInteger();

    @TempDir
    static Path directory;

    /** Tools as an application writes them; counts the calls it runs. */
    static final class WeatherTools {

        final AtomicInteger calls = new AtomicInteger();

        @Tool(description = "Get the current weather in a city")
        String currentWeather(String city) {
            calls.incrementAndGet();
            return "22 C in " + city;
        }

    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(
            strings = { "qwen2.5-instruct/tools", "llama-3.3-instruct/tools", "mistral-nemo-instruct-2407/tools-user" })
    void requiredForcesAValidCallCalledAndStreamed(String template) throws Exception {
        try (Served served = serve(template)) {
            SpeculaChatOptions options = SpeculaChatOptions.builder()
                .toolCallbacks(ToolCallbacks.from(new WeatherTools()))
                .toolChoice(SpeculaChatOptions.TOOL_CHOICE_REQUIRED)
                .parallelToolCalls(false)
                .maxTokens(160)
                .build();
            Prompt prompt = new Prompt(List.of(new UserMessage("What's the weather in Paris?")), options);

            ChatResponse called = served.chatModel.call(prompt);
            List<ChatResponse> streamed = served.chatModel.stream(prompt).collectList().block(TIMEOUT);

            AssistantMessage answer = called.getResult().getOutput();
            assertThat(answer.getToolCalls()).as("%s: %s", template, answer).singleElement().satisfies((call) -> {
                assertThat(call.name()).isEqualTo("currentWeather");
                JsonNode arguments = new ObjectMapper().readTree(call.arguments());
                assertThat(arguments.path("city").isTextual()).as(call.arguments()).isTrue();
            });
            assertThat(called.getResult().getMetadata().getFinishReason())
                .isEqualTo(SpeculaChatModel.FINISH_REASON_TOOL_CALLS);
            ChatResponse last = streamed.get(streamed.size() - 1);
            assertThat(last.getResult().getOutput().getToolCalls()).extracting(AssistantMessage.ToolCall::arguments)
                .containsExactlyElementsOf(
                        answer.getToolCalls().stream().map(AssistantMessage.ToolCall::arguments).toList());
            String streamedText = String.join("",
                    streamed.stream().map((chunk) -> chunk.getResult().getOutput().getText()).toList());
            assertThat(streamedText).as("no call markup leaks into the text").doesNotContain("currentWeather");
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(
            strings = { "qwen2.5-instruct/tools", "llama-3.3-instruct/tools", "mistral-nemo-instruct-2407/tools-user" })
    void chatClientToolLoopRunsTheForcedCallThenAnswers(String template) throws Exception {
        try (Served served = serve(template)) {
            WeatherTools tools = new WeatherTools();
            ChatResponse response = ChatClient.create(served.chatModel)
                .prompt()
                .user("What's the weather in Paris?")
                .tools(tools)
                .options(SpeculaChatOptions.builder()
                    .toolChoice(SpeculaChatOptions.TOOL_CHOICE_REQUIRED)
                    .parallelToolCalls(false)
                    .maxTokens(160))
                .advisors(new AutoAfterToolResults())
                .call()
                .chatResponse();

            // after the results the model may call again on its own (auto), then it
            // answers
            assertThat(tools.calls.get()).as("the loop ran the forced call").isPositive();
            assertThat(response.getResult().getOutput().getToolCalls()).as("the last answer is text").isEmpty();
            assertThat(response.getResult().getOutput().getText()).isNotNull();
        }
    }

    /**
     * What an application does so that a forced call is forced once: after tool results,
     * the model may answer ({@code auto}); OpenAI's {@code required} alone would call
     * again and again.
     */
    static final class AutoAfterToolResults implements CallAdvisor {

        @Override
        public ChatClientResponse adviseCall(ChatClientRequest request, CallAdvisorChain chain) {
            Prompt prompt = request.prompt();
            boolean answered = prompt.getInstructions().stream().anyMatch(ToolResponseMessage.class::isInstance);
            if (answered && prompt.getOptions() instanceof SpeculaChatOptions options) {
                Prompt auto = prompt.mutate()
                    .chatOptions(options.mutate().toolChoice(SpeculaChatOptions.TOOL_CHOICE_AUTO).build())
                    .build();
                return chain.nextCall(request.mutate().prompt(auto).build());
            }
            return chain.nextCall(request);
        }

        @Override
        public String getName() {
            return "auto-after-tool-results";
        }

        @Override
        public int getOrder() {
            return Ordered.LOWEST_PRECEDENCE - 100;
        }

    }

    private record Served(ModelPairHandle models, GenerationService service,
            SpeculaChatModel chatModel) implements AutoCloseable {

        @Override
        public void close() {
            service.close();
            models.close();
        }

    }

    /** The embedded pair, its target given a released template. */
    private static Served serve(String template) throws IOException {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        Path target = SpeculaChatModelToolsTest.targetWithTemplate(directory,
                template.replace('/', '-') + "-" + SERVED.incrementAndGet(),
                SpeculaChatModelToolsTest.releasedTemplate(template));
        ModelPairHandle models = ModelPairHandle.ready(ModelPair.load(target, pair.draft(), RuntimeOptions.defaults()));
        GenerationService service = GenerationService.builder(models)
            .responseCache(ResponseCacheSettings.disabled())
            .goodput(GoodputSettings.disabled())
            .batching(BatchingSettings.disabled())
            .prefixCacheBytes(0)
            .build();
        SpeculaChatModel chatModel = SpeculaChatModel.builder()
            .service(service)
            .modelName("specula-tiny")
            .defaultOptions(SpeculaChatOptions.builder().temperature(0.0).build())
            .build();
        return new Served(models, service, chatModel);
    }

}
