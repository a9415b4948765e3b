package dev.specula.sample;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.models.Model;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import tools.jackson.databind.JsonNode;

import dev.specula.chat.SpeculaChatModel;
import dev.specula.engine.GenerationStats;
import dev.specula.serving.GenerationService;
import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The gateway on the embedded model pair, no mocks: driven by OpenAI's own Java client
 * and by plain HTTP. The response cache is off so that every request, streamed ones
 * included, really decodes; requests without max_tokens get 64
 * (specula.chat.options.max-tokens). The goodput switch is off: its plain probes (after
 * the 2nd speculative request, then every 50th) would fall on whichever test comes then,
 * in a context CompletionsIntegrationTest and GatewayPrometheusTest share, and decode it
 * plainly.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
        properties = { "specula.cache.response.enabled=false", "specula.chat.options.max-tokens=64",
                "specula.resilience.goodput.enabled=false" })
class GatewayIntegrationTest {

    private static final String PROMPT = "def fibonacci(n):";

    @LocalServerPort
    private int port;

    @Autowired
    private SpeculaChatModel chatModel;

    @Autowired
    private ModelPairHandle models;

    @Autowired
    private GenerationService service;

    @Autowired
    private ChatClient.Builder chatClientBuilder;

    @Autowired
    private org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerAdapter handlerAdapter;

    private OpenAIClient client;

    private GatewayHttp http;

    @BeforeEach
    void setUp() {
        models.await();
        client = OpenAIOkHttpClient.builder()
            .baseUrl("http://localhost:" + port + "/v1")
            .apiKey("unused")
            .maxRetries(0)
            .timeout(Duration.ofSeconds(60))
            .build();
        http = new GatewayHttp(port);
    }

    @AfterEach
    void tearDown() {
        client.close();
    }

    @Test
    void responsesAreWrittenByJackson3AloneSoTheFirstRequestBuildsNoJackson2Serializers() {
        // Jackson 2 is on the classpath (openai-java, jackson-dataformat-yaml): Spring
        // MVC
        // would register its YAML converter, and asking it whether it can write a
        // response
        // (every response) made its first request build Kotlin-reflective Jackson 2
        // serializers: 0.5 s of a fresh gateway's first answer
        assertThat(handlerAdapter.getMessageConverters())
            .noneMatch(org.springframework.http.converter.json.AbstractJackson2HttpMessageConverter.class::isInstance)
            .anyMatch(org.springframework.http.converter.json.JacksonJsonHttpMessageConverter.class::isInstance);
    }

    @Test
    void listsTheServedModel() {
        List<Model> served = client.models().list().data();

        assertThat(served).singleElement().satisfies((model) -> {
            assertThat(model.id()).isEqualTo(chatModel.getModelName()).isEqualTo("specula-tiny");
            assertThat(model.ownedBy()).isEqualTo("specula");
        });
    }

    @Test
    void completesAChatWithTheOpenAiClient() {
        ChatCompletion completion = client.chat().completions().create(greedy(24));

        assertThat(completion.id()).startsWith("chatcmpl-");
        assertThat(completion.model()).isEqualTo("specula-tiny");
        ChatCompletion.Choice choice = completion.choices().get(0);
        assertThat(choice.message().content()).hasValueSatisfying((content) -> assertThat(content).isNotBlank());
        assertThat(choice.finishReason()).isIn(ChatCompletion.Choice.FinishReason.STOP,
                ChatCompletion.Choice.FinishReason.LENGTH);
        assertThat(completion.usage()).hasValueSatisfying((usage) -> {
            assertThat(usage.promptTokens()).isPositive();
            assertThat(usage.completionTokens()).isBetween(1L, 24L);
            assertThat(usage.totalTokens()).isEqualTo(usage.promptTokens() + usage.completionTokens());
        });
    }

    @Test
    void answersAJsonSchemaResponseFormatThatParsesAndValidates() {
        java.util.Map<String, Object> schema = java.util.Map.of("type", "object", "properties",
                java.util.Map.of("city", java.util.Map.of("type", "string", "maxLength", 20), "temperature",
                        java.util.Map.of("type", "integer"), "sky",
                        java.util.Map.of("type", "string", "enum", List.of("sunny", "cloudy", "rainy"))),
                "required", List.of("city", "temperature", "sky"), "additionalProperties", false);
        com.openai.models.ResponseFormatJsonSchema.JsonSchema.Schema.Builder schemaJson = com.openai.models.ResponseFormatJsonSchema.JsonSchema.Schema
            .builder();
        schema.forEach((key, value) -> schemaJson.putAdditionalProperty(key, com.openai.core.JsonValue.from(value)));
        ChatCompletion completion = client.chat()
            .completions()
            .create(greedy(160).toBuilder()
                .responseFormat(com.openai.models.ResponseFormatJsonSchema.builder()
                    .jsonSchema(com.openai.models.ResponseFormatJsonSchema.JsonSchema.builder()
                        .name("forecast")
                        .strict(true)
                        .schema(schemaJson.build())
                        .build())
                    .build())
                .build());

        String content = completion.choices().get(0).message().content().orElseThrow();
        JsonNode forecast = http.json(content);
        assertThat(forecast.propertyNames()).as(content).containsExactlyInAnyOrder("city", "temperature", "sky");
        assertThat(forecast.get("city").isString()).as(content).isTrue();
        assertThat(forecast.get("city").stringValue().length()).isLessThanOrEqualTo(20);
        assertThat(forecast.get("temperature").isIntegralNumber()).as(content).isTrue();
        assertThat(forecast.get("sky").stringValue()).isIn("sunny", "cloudy", "rainy");

        assertThatThrownBy(() -> client.chat()
            .completions()
            .create(greedy(8).toBuilder()
                .responseFormat(com.openai.models.ResponseFormatJsonSchema.builder()
                    .jsonSchema(com.openai.models.ResponseFormatJsonSchema.JsonSchema.builder()
                        .name("age")
                        .schema(com.openai.models.ResponseFormatJsonSchema.JsonSchema.Schema.builder()
                            .putAdditionalProperty("type", com.openai.core.JsonValue.from("integer"))
                            .putAdditionalProperty("minimum", com.openai.core.JsonValue.from(0))
                            .build())
                        .build())
                    .build())
                .build()))
            .isInstanceOfSatisfying(BadRequestException.class, (ex) -> {
                assertThat(ex.param()).hasValue("response_format.json_schema.schema");
                assertThat(ex.getMessage()).contains("minimum");
            });
    }

    /** What an application asks ChatClient's {@code .entity(...)} for. */
    record Forecast(String city, int temperature, Sky sky, List<String> tags) {
    }

    enum Sky {

        SUNNY, CLOUDY, RAINY

    }

    @Test
    void chatClientEntityWithNativeStructuredOutputGetsAValidRecordFromTheWeakModel() {
        Forecast forecast = chatClientBuilder.build()
            .prompt()
            .user("The weather in Paris, as JSON")
            .options(dev.specula.chat.SpeculaChatOptions.builder().maxTokens(200))
            .advisors(org.springframework.ai.chat.client.AdvisorParams.ENABLE_NATIVE_STRUCTURED_OUTPUT)
            .call()
            .entity(Forecast.class);

        assertThat(forecast).isNotNull();
        assertThat(forecast.city()).isNotNull();
        assertThat(forecast.sky()).isNotNull();
        assertThat(forecast.tags()).isNotNull();
    }

    @Test
    void answersJsonModeWithAJsonObject() throws Exception {
        ChatCompletion completion = client.chat()
            .completions()
            .create(greedy(160).toBuilder()
                .responseFormat(com.openai.models.ResponseFormatJsonObject.builder().build())
                .build());

        String content = completion.choices().get(0).message().content().orElseThrow();
        assertThat(tools.jackson.databind.json.JsonMapper.builder().build().readTree(content).isObject()).as(content)
            .isTrue();
    }

    @Test
    void runsAToolRoundTripWithTheOpenAiClient() {
        com.openai.models.chat.completions.ChatCompletionFunctionTool weather = com.openai.models.chat.completions.ChatCompletionFunctionTool
            .builder()
            .function(com.openai.models.FunctionDefinition.builder()
                .name("current_weather")
                .description("Get the current weather in a city")
                .parameters(com.openai.models.FunctionParameters.builder()
                    .putAdditionalProperty("type", com.openai.core.JsonValue.from("object"))
                    .putAdditionalProperty("properties",
                            com.openai.core.JsonValue
                                .from(java.util.Map.of("city", java.util.Map.of("type", "string"))))
                    .putAdditionalProperty("required", com.openai.core.JsonValue.from(List.of("city")))
                    .putAdditionalProperty("additionalProperties", com.openai.core.JsonValue.from(false))
                    .build())
                .build())
            .build();
        ChatCompletionCreateParams forced = greedy(96).toBuilder()
            .addTool(weather)
            .toolChoice(com.openai.models.chat.completions.ChatCompletionToolChoiceOption.Auto.REQUIRED)
            .build();

        ChatCompletion called = client.chat().completions().create(forced);

        ChatCompletion.Choice choice = called.choices().get(0);
        assertThat(choice.finishReason()).isEqualTo(ChatCompletion.Choice.FinishReason.TOOL_CALLS);
        com.openai.models.chat.completions.ChatCompletionMessageFunctionToolCall call = choice.message()
            .toolCalls()
            .orElseThrow()
            .get(0)
            .asFunction();
        assertThat(call.function().name()).isEqualTo("current_weather");
        assertThat(http.json(call.function().arguments()).get("city").isString()).isTrue();

        List<com.openai.models.chat.completions.ChatCompletionChunk.Choice.Delta.ToolCall> streamedCalls = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(forced)) {
            stream.stream()
                .forEach((chunk) -> chunk.choices()
                    .forEach((streamed) -> streamed.delta().toolCalls().ifPresent(streamedCalls::addAll)));
        }
        assertThat(streamedCalls).singleElement().satisfies((streamed) -> {
            assertThat(streamed.function().orElseThrow().name()).hasValue("current_weather");
            assertThat(streamed.function().orElseThrow().arguments()).hasValue(call.function().arguments());
        });

        ChatCompletion answered = client.chat()
            .completions()
            .create(greedy(32).toBuilder()
                .addTool(weather)
                .addMessage(choice.message())
                .addMessage(com.openai.models.chat.completions.ChatCompletionToolMessageParam.builder()
                    .toolCallId(call.id())
                    .content("22 C and sunny")
                    .build())
                .build());
        assertThat(answered.choices().get(0).finishReason()).isIn(ChatCompletion.Choice.FinishReason.STOP,
                ChatCompletion.Choice.FinishReason.LENGTH);
        assertThat(answered.choices().get(0).message().content()).isPresent();
    }

    @Test
    void reportsLogprobsInOpenAisShapeCalledAndStreamed() {
        ChatCompletionCreateParams params = greedy(24).toBuilder().logprobs(true).topLogprobs(3L).build();
        ChatCompletion completion = client.chat().completions().create(params);

        ChatCompletion.Choice choice = completion.choices().get(0);
        List<com.openai.models.chat.completions.ChatCompletionTokenLogprob> content = choice.logprobs()
            .orElseThrow()
            .content()
            .orElseThrow();
        assertThat((long) content.size()).isEqualTo(completion.usage().orElseThrow().completionTokens());
        StringBuilder tokens = new StringBuilder();
        for (com.openai.models.chat.completions.ChatCompletionTokenLogprob token : content) {
            tokens.append(token.token());
            assertThat(token.logprob()).isLessThanOrEqualTo(0.0);
            assertThat(token.topLogprobs()).hasSize(3);
            assertThat(token.topLogprobs().get(0).token()).isEqualTo(token.token());
            assertThat(token.bytes()).isPresent();
        }
        assertThat(tokens.toString()).contains(choice.message().content().orElseThrow().strip());

        // each chunk carries its own tokens' (the chunk that first shows their text); how
        // many chunks there are depends on timing (a slow reader gets several rounds'
        // text
        // in one), so only what each carries is checked
        List<com.openai.models.chat.completions.ChatCompletionTokenLogprob> streamed = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
            stream.stream().forEach((chunk) -> chunk.choices().forEach((streamedChoice) -> {
                List<com.openai.models.chat.completions.ChatCompletionTokenLogprob> own = streamedChoice.logprobs()
                    .flatMap((logprobs) -> logprobs.content())
                    .orElse(List.of());
                if (streamedChoice.delta().content().filter((text) -> !text.isEmpty()).isPresent()) {
                    assertThat(own).as("a chunk with text has its tokens").isNotEmpty();
                }
                streamed.addAll(own);
            }));
        }
        assertThat(streamed).extracting((token) -> token.token(), (token) -> token.logprob())
            .containsExactlyElementsOf(content.stream()
                .map((token) -> org.assertj.core.groups.Tuple.tuple(token.token(), token.logprob()))
                .toList());
    }

    @Test
    void honoursPenaltiesAndLogitBias() {
        ChatCompletion plain = client.chat().completions().create(greedy(24).toBuilder().logprobs(true).build());
        String firstToken = plain.choices().get(0).logprobs().orElseThrow().content().orElseThrow().get(0).token();
        int firstId = chatModel.getService().models().get().target().tokenizer().encode(firstToken, false)[0];

        ChatCompletion biased = client.chat()
            .completions()
            .create(greedy(24).toBuilder()
                .logprobs(true)
                .logitBias(ChatCompletionCreateParams.LogitBias.builder()
                    .putAdditionalProperty(String.valueOf(firstId), com.openai.core.JsonValue.from(-100))
                    .build())
                .build());
        ChatCompletion penalized = client.chat()
            .completions()
            .create(greedy(24).toBuilder().frequencyPenalty(2.0).presencePenalty(1.0).build());

        assertThat(biased.choices().get(0).logprobs().orElseThrow().content().orElseThrow().get(0).token())
            .isNotEqualTo(firstToken);
        assertThat(penalized.choices().get(0).message().content())
            .isNotEqualTo(plain.choices().get(0).message().content());
    }

    @Test
    void streamsExactlyTheTextOfTheCompleteAnswer() {
        ChatCompletion completion = client.chat().completions().create(greedy(40));

        StringBuilder streamed = new StringBuilder();
        List<String> finishReasons = new ArrayList<>();
        List<Long> completionTokens = new ArrayList<>();
        ChatCompletionCreateParams params = greedy(40).toBuilder()
            .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build())
            .build();
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
            stream.stream().forEach((chunk) -> {
                chunk.choices().forEach((choice) -> {
                    choice.delta().content().ifPresent(streamed::append);
                    choice.finishReason().ifPresent((reason) -> finishReasons.add(reason.asString()));
                });
                chunk.usage().ifPresent((usage) -> completionTokens.add(usage.completionTokens()));
            });
        }

        assertThat(streamed.toString()).isNotEmpty()
            .isEqualTo(completion.choices().get(0).message().content().orElseThrow());
        assertThat(finishReasons).containsExactly(completion.choices().get(0).finishReason().asString());
        assertThat(completionTokens).containsExactly(completion.usage().orElseThrow().completionTokens());
    }

    @Test
    void answersLikeTheChatClientOverTheSameChatModel() {
        ChatResponse response = chatClientBuilder.build().prompt().user(PROMPT).call().chatResponse();

        ChatCompletion completion = client.chat()
            .completions()
            .create(ChatCompletionCreateParams.builder().model("specula-tiny").addUserMessage(PROMPT).build());
        assertThat(response.getResult().getOutput().getText()).isNotEmpty()
            .isEqualTo(completion.choices().get(0).message().content().orElseThrow());
        assertThat(completion.usage().orElseThrow().completionTokens())
            .isEqualTo(response.getMetadata().getUsage().getCompletionTokens().longValue())
            .isBetween(1L, 64L);
        assertThat(response.getMetadata().<String>get(SpeculaChatModel.METADATA_POLICY)).isEqualTo("fixed");
    }

    @Test
    void reportsBadRequestsInOpenAisErrorShape() {
        assertThatThrownBy(() -> client.chat().completions().create(greedy(8).toBuilder().temperature(-1.0).build()))
            .isInstanceOfSatisfying(BadRequestException.class, (ex) -> {
                assertThat(ex.statusCode()).isEqualTo(400);
                assertThat(ex.param()).hasValue("temperature");
                assertThat(ex.type()).hasValue("invalid_request_error");
            });
        assertThatThrownBy(() -> client.chat().completions().create(greedy(8).toBuilder().n(2L).build()))
            .isInstanceOfSatisfying(BadRequestException.class, (ex) -> assertThat(ex.param()).hasValue("n"));
        assertThatThrownBy(() -> client.chat().completions().create(greedy(8).toBuilder().model("gpt-4o").build()))
            .isInstanceOfSatisfying(BadRequestException.class, (ex) -> {
                assertThat(ex.param()).hasValue("model");
                assertThat(ex.code()).hasValue("model_not_found");
            });
    }

    @Test
    void answersMalformedJsonAndEmptyMessagesWith400() {
        HttpResponse<String> malformed = http.post("{\"messages\": [");
        assertThat(malformed.statusCode()).isEqualTo(400);
        JsonNode error = http.json(malformed).get("error");
        assertThat(error.get("type").stringValue()).isEqualTo("invalid_request_error");
        assertThat(error.get("param").isNull()).isTrue();
        assertThat(error.get("message").stringValue()).contains("not valid JSON");

        HttpResponse<String> empty = http.post("{\"model\": \"specula-tiny\", \"messages\": []}");
        assertThat(empty.statusCode()).isEqualTo(400);
        assertThat(http.json(empty).at("/error/param").stringValue()).isEqualTo("messages");

        // a streaming client that accepts only text/event-stream still gets the JSON
        // error and its status
        HttpResponse<String> eventsOnly = http.postAcceptingOnlyEvents("{\"stream\": true, \"messages\": []}");
        assertThat(eventsOnly.statusCode()).isEqualTo(400);
        assertThat(eventsOnly.headers().firstValue("Content-Type"))
            .hasValueSatisfying((type) -> assertThat(type).startsWith("application/json"));
        assertThat(http.json(eventsOnly).at("/error/param").stringValue()).isEqualTo("messages");
    }

    @Test
    void rejectsAPromptBeyondTheContextBeforeTheStreamStarts() {
        String tooLong = "{\"messages\": [{\"role\": \"user\", \"content\": \"hello\"}], \"max_tokens\": 5000";

        for (String body : List.of(tooLong + "}", tooLong + ", \"stream\": true}")) {
            HttpResponse<String> response = http.post(body);
            assertThat(response.statusCode()).isEqualTo(400);
            assertThat(response.headers().firstValue("Content-Type"))
                .hasValueSatisfying((type) -> assertThat(type).startsWith("application/json"));
            JsonNode error = http.json(response).get("error");
            assertThat(error.get("param").stringValue()).isEqualTo("messages");
            assertThat(error.get("code").stringValue()).isEqualTo("context_length_exceeded");
        }
    }

    /**
     * Under the body limit (1MB) but over the ChatModel's 1,000,000 characters: refused
     * before tokenizing.
     */
    @Test
    void rejectsMessagesOverTheCharacterLimitNamingIt() {
        String huge = "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \""
                + "x".repeat(SpeculaChatModel.DEFAULT_MAX_PROMPT_CHARACTERS) + "\"}]";

        for (String body : List.of(huge + "}", huge + ", \"stream\": true}")) {
            HttpResponse<String> response = http.post(body);
            assertThat(response.statusCode()).as(response.body()).isEqualTo(400);
            JsonNode error = http.json(response).get("error");
            assertThat(error.get("param").stringValue()).isEqualTo("messages");
            assertThat(error.get("code").stringValue()).isEqualTo(SpeculaChatModel.PROMPT_TOO_LONG);
            assertThat(error.get("message").stringValue()).contains("1000009 characters").contains("1000000");
        }
    }

    @Test
    void streamsServerSentEventsEndingWithDone() {
        HttpResponse<String> response = http
            .post("""
                    {"messages": [{"role": "user", "content": "import os"}], "max_tokens": 16, "stream": true,
                     "stream_options": {"include_usage": true}, "user": "someone", "metadata": {"clients": "send these"}}""");

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type"))
            .hasValueSatisfying((type) -> assertThat(type).startsWith("text/event-stream"));
        assertThat(response.body()).endsWith("data: [DONE]\n\n");
        List<String> events = List.of(response.body().split("\n\n"));
        assertThat(events).allSatisfy((event) -> assertThat(event).startsWith("data: "));
        List<JsonNode> chunks = events.subList(0, events.size() - 1)
            .stream()
            .map((event) -> http.json(event.substring(6)))
            .toList();
        assertThat(chunks)
            .allSatisfy((chunk) -> assertThat(chunk.get("object").stringValue()).isEqualTo("chat.completion.chunk"));
        assertThat(chunks.get(0).at("/choices/0/delta/role").stringValue()).isEqualTo("assistant");
        JsonNode finish = chunks.get(chunks.size() - 2);
        assertThat(finish.at("/choices/0/finish_reason").stringValue()).isIn("stop", "length");
        assertThat(finish.at("/choices/0/delta").isEmpty()).isTrue();
        JsonNode usage = chunks.get(chunks.size() - 1);
        assertThat(usage.get("choices").isEmpty()).isTrue();
        assertThat(usage.at("/usage/completion_tokens").intValue()).isBetween(1, 16);
    }

    @Test
    void speculationOptionsChooseHowToDecodeButNotWhat() {
        String request = "{\"messages\": [{\"role\": \"user\", \"content\": \"class Stack:\"}], \"max_tokens\": 32, "
                + "\"speculation\": %s}";
        JsonNode plain = http.json(http.post(request.formatted("{\"enabled\": false}")));
        JsonNode speculative = http.json(http.post(request.formatted("{\"policy\": \"fixed\", \"gamma\": 3}")));
        JsonNode lookedUp = http.json(http.post(request.formatted("{\"proposer\": \"ngram\"}")));

        assertThat(plain.at("/speculation/policy").stringValue()).isEqualTo("plain");
        assertThat(plain.at("/speculation/requested_policy").stringValue()).isEqualTo("plain");
        assertThat(plain.at("/speculation/reason").isMissingNode()).isTrue();
        assertThat(speculative.at("/speculation/policy").stringValue()).isEqualTo("fixed");
        assertThat(speculative.at("/speculation/requested_policy").stringValue()).isEqualTo("fixed");
        assertThat(speculative.at("/speculation/reason").isMissingNode()).isTrue();
        assertThat(speculative.at("/speculation/drafted").longValue()).isPositive();
        assertThat(speculative.at("/choices/0/message/content").stringValue()).isNotEmpty()
            .isEqualTo(plain.at("/choices/0/message/content").stringValue());
        assertThat(speculative.at("/speculation/proposer").stringValue()).isEqualTo("model");
        assertThat(plain.at("/speculation/proposer").isMissingNode()).isTrue();
        assertThat(lookedUp.at("/speculation/proposer").stringValue()).isEqualTo("ngram");
        assertThat(lookedUp.at("/choices/0/message/content").stringValue())
            .isEqualTo(plain.at("/choices/0/message/content").stringValue());

        // the GRIFFIN feature head: the embedded pair's, once it ships one
        HttpResponse<String> griffin = http.post(request.formatted("{\"proposer\": \"griffin\"}"));
        if (dev.specula.models.tiny.TinyModels.extract().head().isPresent()) {
            assertThat(griffin.statusCode()).isEqualTo(200);
            JsonNode drafted = http.json(griffin.body());
            assertThat(drafted.at("/speculation/proposer").stringValue()).isEqualTo("griffin");
            assertThat(drafted.at("/choices/0/message/content").stringValue())
                .isEqualTo(plain.at("/choices/0/message/content").stringValue());
        }
        else {
            assertThat(griffin.statusCode()).isEqualTo(400);
            assertThat(http.json(griffin.body()).at("/error/param").stringValue()).isEqualTo("speculation.proposer");
            assertThat(http.json(griffin.body()).at("/error/message").stringValue())
                .contains("specula.griffin.location");
        }
    }

    @Test
    void aPredictionIsTheDraftAndUsageCountsItsTokens() {
        String request = "{\"messages\": [{\"role\": \"user\", \"content\": \"class Stack:\"}], \"max_tokens\": 40%s}";
        JsonNode plain = http.json(http.post(request.formatted(", \"speculation\": {\"enabled\": false}")));
        String answer = plain.at("/choices/0/message/content").stringValue();
        String prediction = ", \"prediction\": {\"type\": \"content\", \"content\": "
                + tools.jackson.databind.json.JsonMapper.builder().build().writeValueAsString(answer) + "}";
        JsonNode predicted = http.json(http.post(request.formatted(prediction)));

        assertThat(predicted.at("/choices/0/message/content").stringValue()).isEqualTo(answer);
        assertThat(predicted.at("/speculation/proposer").stringValue()).isEqualTo("prediction");
        int accepted = predicted.at("/usage/completion_tokens_details/accepted_prediction_tokens").intValue();
        assertThat(accepted).as("the answer came from its prediction")
            .isGreaterThan(predicted.at("/usage/completion_tokens").intValue() / 2);
        assertThat(predicted.at("/usage/completion_tokens_details/rejected_prediction_tokens").isNumber()).isTrue();
        assertThat(plain.at("/usage/completion_tokens_details").isMissingNode()).isTrue();

        HttpResponse<String> off = http.post(request.formatted(prediction + ", \"speculation\": {\"enabled\": false}"));
        assertThat(off.statusCode()).isEqualTo(400);
        assertThat(http.json(off.body()).at("/error/param").stringValue()).isEqualTo("prediction");
        HttpResponse<String> otherProposer = http
            .post(request.formatted(prediction + ", \"speculation\": {\"proposer\": \"ngram\"}"));
        assertThat(otherProposer.statusCode()).isEqualTo(400);
        assertThat(http.json(otherProposer.body()).at("/error/param").stringValue()).isEqualTo("speculation.proposer");
    }

    @Test
    void closingTheStreamStopsTheGeneration() throws Exception {
        // Greedy decoding of this prompt runs to the token limit (no end of sequence
        // before 2000 tokens).
        int maxTokens = 1500;
        long generatedBefore = generatedTokens();
        HttpResponse<InputStream> response = http.postStreaming("{\"messages\": [{\"role\": \"user\", \"content\": "
                + "\"class Foo:\"}], \"max_tokens\": " + maxTokens + ", \"stream\": true}");
        assertThat(response.statusCode()).isEqualTo(200);
        try (BufferedReader reader = new BufferedReader(
                new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
            assertThat(reader.readLine()).startsWith("data: ");
        }

        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (freeSlots() < service.bulkhead().getBulkheadConfig().getMaxConcurrentCalls()
                && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertThat(freeSlots()).isEqualTo(service.bulkhead().getBulkheadConfig().getMaxConcurrentCalls());
        assertThat(generatedTokens() - generatedBefore).as("tokens generated before the cancellation stopped it")
            .isPositive()
            .isLessThan(maxTokens);
    }

    private int freeSlots() {
        return service.bulkhead().getMetrics().getAvailableConcurrentCalls();
    }

    private long generatedTokens() {
        return service.snapshot().totalsByPolicy().values().stream().mapToLong(GenerationStats::generatedTokens).sum();
    }

    private static ChatCompletionCreateParams greedy(long maxTokens) {
        return ChatCompletionCreateParams.builder()
            .model("specula-tiny")
            .addUserMessage(PROMPT)
            .temperature(0.0)
            .maxCompletionTokens(maxTokens)
            .build();
    }

}
