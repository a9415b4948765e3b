package dev.specula.sample;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionChoice;
import com.openai.models.completions.CompletionCreateParams;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import tools.jackson.databind.JsonNode;

import dev.specula.serving.ModelPairHandle;
import dev.specula.tokenizer.TextTokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@code POST /v1/completions} on the embedded model pair over real HTTP: OpenAI's Java
 * client for the common calls, raw JSON for the edge cases (token-id prompts, echo,
 * logprobs, the event stream, suffix, errors). The same application context as
 * {@link GatewayIntegrationTest} (same properties): no response cache, so every request
 * decodes.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
        properties = { "specula.cache.response.enabled=false", "specula.chat.options.max-tokens=64",
                "specula.resilience.goodput.enabled=false" })
class CompletionsIntegrationTest {

    private static final String PROMPT = "def fibonacci(n):\n";

    private static final String COMPLETIONS = "/v1/completions";

    @LocalServerPort
    private int port;

    @Autowired
    private ModelPairHandle models;

    private OpenAIClient client;

    private GatewayHttp http;

    private TextTokenizer tokenizer;

    @BeforeEach
    void setUp() {
        models.await();
        tokenizer = models.get().target().tokenizer();
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
    void completesARawPromptWithTheOpenAiClient() {
        Completion completion = client.completions().create(greedy(24));

        assertThat(completion.id()).startsWith("cmpl-");
        assertThat(completion._object_().asString()).hasValue("text_completion");
        assertThat(completion.model()).isEqualTo("specula-tiny");
        CompletionChoice choice = completion.choices().get(0);
        assertThat(choice.text()).isNotBlank();
        assertThat(choice.index()).isZero();
        assertThat(choice.finishReason()).isIn(CompletionChoice.FinishReason.STOP,
                CompletionChoice.FinishReason.LENGTH);
        assertThat(choice.logprobs()).isEmpty();
        assertThat(completion.usage()).hasValueSatisfying((usage) -> {
            // the prompt as it is: no chat template around it
            assertThat(usage.promptTokens()).isEqualTo(tokenizer.encode(PROMPT, true).length);
            assertThat(usage.completionTokens()).isBetween(1L, 24L);
            assertThat(usage.totalTokens()).isEqualTo(usage.promptTokens() + usage.completionTokens());
        });
    }

    @Test
    void streamsTheSameTextWithTheOpenAiClient() {
        String called = client.completions().create(greedy(24)).choices().get(0).text();
        StringBuilder streamed = new StringBuilder();
        List<Completion> chunks = new ArrayList<>();
        try (StreamResponse<Completion> stream = client.completions()
            .createStreaming(greedy(24).toBuilder()
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build())
                .build())) {
            stream.stream().forEach((chunk) -> {
                chunks.add(chunk);
                chunk.choices().forEach((choice) -> streamed.append(choice.text()));
            });
        }

        assertThat(streamed.toString()).isEqualTo(called);
        assertThat(chunks).hasSizeGreaterThan(2);
        assertThat(chunks.get(chunks.size() - 1).usage())
            .hasValueSatisfying((usage) -> assertThat(usage.completionTokens()).isBetween(1L, 24L));
    }

    @Test
    void aTokenIdPromptAnswersAsItsTextDoes() {
        int[] ids = tokenizer.encode(PROMPT, true);

        JsonNode byText = complete("{\"prompt\": %s, \"max_tokens\": 24}".formatted(quote(PROMPT)));
        JsonNode byIds = complete("{\"prompt\": %s, \"max_tokens\": 24}".formatted(Arrays.toString(ids)));
        JsonNode batchOfOne = complete("{\"prompt\": [%s], \"max_tokens\": 24}".formatted(Arrays.toString(ids)));

        assertThat(byIds.at("/choices/0/text").stringValue()).isEqualTo(byText.at("/choices/0/text").stringValue())
            .isEqualTo(batchOfOne.at("/choices/0/text").stringValue());
        assertThat(byIds.at("/usage/prompt_tokens").intValue()).isEqualTo(ids.length);
    }

    @Test
    void echoPutsThePromptBeforeTheCompletion() {
        String body = "{\"prompt\": %s, \"max_tokens\": 16%s}";
        String completion = complete(body.formatted(quote(PROMPT), "")).at("/choices/0/text").stringValue();

        JsonNode echoed = complete(body.formatted(quote(PROMPT), ", \"echo\": true"));
        JsonNode echoedIds = complete(
                body.formatted(Arrays.toString(tokenizer.encode(PROMPT, true)), ", \"echo\": true"));

        assertThat(echoed.at("/choices/0/text").stringValue()).isEqualTo(PROMPT + completion);
        assertThat(echoedIds.at("/choices/0/text").stringValue()).isEqualTo(PROMPT + completion);
        assertThat(echoed.at("/usage/completion_tokens").intValue()).as("the echo is not generated").isBetween(1, 16);
    }

    @Test
    void logprobsListTokensTheirLogprobsTheTopOnesAndOffsets() {
        JsonNode completion = complete(
                "{\"prompt\": %s, \"max_tokens\": 12, \"logprobs\": 2}".formatted(quote(PROMPT)));

        String text = completion.at("/choices/0/text").stringValue();
        JsonNode logprobs = completion.at("/choices/0/logprobs");
        int count = logprobs.get("tokens").size();
        assertThat(count).isEqualTo(completion.at("/usage/completion_tokens").intValue());
        assertThat(logprobs.get("token_logprobs").size()).isEqualTo(count);
        assertThat(logprobs.get("top_logprobs").size()).isEqualTo(count);
        assertThat(logprobs.get("text_offset").size()).isEqualTo(count);
        StringBuilder tokens = new StringBuilder();
        for (int i = 0; i < count; i++) {
            String token = logprobs.at("/tokens/" + i).stringValue();
            double logprob = logprobs.at("/token_logprobs/" + i).doubleValue();
            JsonNode top = logprobs.at("/top_logprobs/" + i);
            assertThat(logprob).isLessThanOrEqualTo(0);
            // the 2 most likely, and the sampled token (greedy: one of them)
            assertThat(top.size()).isEqualTo(2);
            assertThat(top.get(token).doubleValue()).isEqualTo(logprob);
            for (JsonNode alternative : top) {
                assertThat(alternative.doubleValue()).isLessThanOrEqualTo(top.get(token).doubleValue());
            }
            assertThat(logprobs.at("/text_offset/" + i).intValue()).isEqualTo(tokens.length());
            tokens.append(token);
        }
        assertThat(tokens.toString()).startsWith(text);
    }

    @Test
    void streamsTextCompletionEventsEndingWithDone() {
        String called = complete("{\"prompt\": %s, \"max_tokens\": 16}".formatted(quote(PROMPT))).at("/choices/0/text")
            .stringValue();

        HttpResponse<String> response = http.postTo(COMPLETIONS, """
                {"prompt": %s, "max_tokens": 16, "stream": true, "logprobs": 0,
                 "stream_options": {"include_usage": true}}""".formatted(quote(PROMPT)));
        HttpResponse<String> echoed = http.postTo(COMPLETIONS, """
                {"prompt": %s, "max_tokens": 16, "stream": true, "echo": true}""".formatted(quote(PROMPT)));

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type"))
            .hasValueSatisfying((type) -> assertThat(type).startsWith("text/event-stream"));
        List<JsonNode> events = http.events(response);
        assertThat(events).allSatisfy((event) -> {
            assertThat(event.get("object").stringValue()).isEqualTo("text_completion");
            assertThat(event.get("id").stringValue()).startsWith("cmpl-");
        });
        StringBuilder text = new StringBuilder();
        events.forEach(
                (event) -> event.get("choices").forEach((choice) -> text.append(choice.get("text").stringValue())));
        assertThat(text.toString()).isEqualTo(called);
        JsonNode finish = events.get(events.size() - 2);
        assertThat(finish.at("/choices/0/finish_reason").stringValue()).isIn("stop", "length");
        assertThat(streamedLogprobs(events).get("tokens").size()).as("each with its chunk")
            .isEqualTo(events.get(events.size() - 1).at("/usage/completion_tokens").intValue());
        assertThat(finish.at("/speculation/policy").isString()).isTrue();
        assertThat(finish.at("/speculation/backend").stringValue()).as("as chat says it").isEqualTo(Backends.LOCAL);
        assertThat(events.subList(0, events.size() - 2))
            .allSatisfy((event) -> assertThat(event.at("/choices/0/finish_reason").isNull()).isTrue());
        JsonNode usage = events.get(events.size() - 1);
        assertThat(usage.get("choices").isEmpty()).isTrue();
        assertThat(usage.at("/usage/completion_tokens").intValue()).isBetween(1, 16);
        List<JsonNode> echoedEvents = http.events(echoed);
        assertThat(echoedEvents.get(0).at("/choices/0/text").stringValue()).as("the prompt comes first")
            .isEqualTo(PROMPT);
    }

    @Test
    void eachStreamedChunkCarriesTheLogprobsOfItsOwnTokens() {
        for (String echo : List.of("", ", \"echo\": true")) {
            String body = "{\"prompt\": %s, \"max_tokens\": 24, \"logprobs\": 2, \"temperature\": 0%s%s}";
            JsonNode called = complete(body.formatted(quote(PROMPT), echo, ""));
            List<JsonNode> events = http
                .events(http.postTo(COMPLETIONS, body.formatted(quote(PROMPT), echo, ", \"stream\": true")));

            assertThat(streamedLogprobs(events)).as("echo: %s", !echo.isEmpty())
                .isEqualTo(called.at("/choices/0/logprobs"));
            // how many chunks there are depends on timing (a slow reader gets the pieces
            // of
            // several rounds in one), so only what each chunk carries is checked
            for (JsonNode event : events) {
                if (!event.at("/choices/0/text").asString().isEmpty()) {
                    assertThat(event.at("/choices/0/logprobs/tokens").size()).as("a chunk with text has its tokens")
                        .isPositive();
                }
            }
        }
    }

    @Test
    void echoWithLogprobsScoresEveryPromptTokenAfterTheFirst() throws Exception {
        int[] ids = tokenizer.encode(PROMPT, true);
        JsonNode plain = complete(
                "{\"prompt\": %s, \"max_tokens\": 8, \"logprobs\": 2, \"temperature\": 0}".formatted(quote(PROMPT)));
        JsonNode echoed = complete(
                "{\"prompt\": %s, \"max_tokens\": 8, \"logprobs\": 2, \"temperature\": 0, \"echo\": true}"
                    .formatted(quote(PROMPT)));

        String completion = plain.at("/choices/0/text").stringValue();
        assertThat(echoed.at("/choices/0/text").stringValue()).isEqualTo(PROMPT + completion);
        JsonNode logprobs = echoed.at("/choices/0/logprobs");
        int generated = plain.at("/usage/completion_tokens").intValue();
        assertThat(logprobs.get("tokens").size()).isEqualTo(ids.length + generated);
        // the first token has nothing before it
        assertThat(logprobs.at("/token_logprobs/0").isNull()).isTrue();
        assertThat(logprobs.at("/top_logprobs/0").isNull()).isTrue();
        double[] reference = promptLogprobs(ids);
        int offset = 0;
        for (int i = 0; i < ids.length + generated; i++) {
            String token = logprobs.at("/tokens/" + i).stringValue();
            assertThat(logprobs.at("/text_offset/" + i).intValue()).isEqualTo(offset);
            offset += token.codePointCount(0, token.length());
            if (i > 0 && i < ids.length) {
                assertThat(token).isEqualTo(tokenizer.decode(new int[] { ids[i] }, 0, 1, false));
                assertThat(logprobs.at("/token_logprobs/" + i).doubleValue()).as("prompt token %d", i)
                    .isCloseTo(reference[i], org.assertj.core.data.Offset.offset(1e-4));
                assertThat(logprobs.at("/top_logprobs/" + i).get(token).doubleValue())
                    .isEqualTo(logprobs.at("/token_logprobs/" + i).doubleValue());
            }
        }
        // then the completion's, as without echo
        for (String field : List.of("tokens", "token_logprobs", "top_logprobs")) {
            for (int i = 0; i < generated; i++) {
                assertThat(logprobs.get(field).get(ids.length + i))
                    .isEqualTo(plain.at("/choices/0/logprobs").get(field).get(i));
            }
        }
    }

    @Test
    void echoWithMaxTokensZeroAnswersThePromptAloneScored() {
        int[] ids = tokenizer.encode(PROMPT, true);
        JsonNode withCompletion = complete(
                "{\"prompt\": %s, \"max_tokens\": 4, \"logprobs\": 1, \"echo\": true}".formatted(quote(PROMPT)));
        for (String prompt : List.of(quote(PROMPT), Arrays.toString(ids))) {
            String body = "{\"prompt\": %s, \"max_tokens\": 0, \"logprobs\": 1, \"echo\": true%s}";
            JsonNode scored = complete(body.formatted(prompt, ""));

            assertThat(scored.at("/choices/0/text").stringValue()).isEqualTo(PROMPT);
            assertThat(scored.at("/choices/0/finish_reason").stringValue()).isEqualTo("length");
            assertThat(scored.at("/usage/completion_tokens").intValue()).isZero();
            assertThat(scored.at("/usage/prompt_tokens").intValue()).isEqualTo(ids.length);
            JsonNode logprobs = scored.at("/choices/0/logprobs");
            assertThat(logprobs.get("tokens").size()).isEqualTo(ids.length);
            for (String field : List.of("tokens", "token_logprobs", "top_logprobs", "text_offset")) {
                for (int i = 0; i < ids.length; i++) {
                    assertThat(logprobs.get(field).get(i)).as("%s %d", field, i)
                        .isEqualTo(withCompletion.at("/choices/0/logprobs").get(field).get(i));
                }
            }
            // streamed: the echo carries the prompt's, the end nothing more
            List<JsonNode> events = http.events(http.postTo(COMPLETIONS, body.formatted(prompt, ", \"stream\": true")));
            assertThat(events.get(0).at("/choices/0/text").stringValue()).isEqualTo(PROMPT);
            assertThat(streamedLogprobs(events)).isEqualTo(logprobs);
            assertThat(events.get(events.size() - 1).at("/choices/0/finish_reason").stringValue()).isEqualTo("length");
        }
        JsonNode echoOnly = complete("{\"prompt\": %s, \"max_tokens\": 0, \"echo\": true}".formatted(quote(PROMPT)));
        assertThat(echoOnly.at("/choices/0/text").stringValue()).isEqualTo(PROMPT);
        assertThat(echoOnly.at("/choices/0/logprobs").isNull()).isTrue();
        assertThat(echoOnly.at("/usage/completion_tokens").intValue()).isZero();
    }

    /**
     * The target's log-probability of each prompt token after the first, computed here
     * from one call of the target over the whole prompt (entry 0 unused).
     */
    private double[] promptLogprobs(int[] ids) throws Exception {
        dev.specula.model.DecoderModel target = models.get().target();
        try (dev.specula.kv.KvSequence cache = target.newCache()) {
            dev.specula.model.StepOutput rows = target
                .forward(new dev.specula.model.StepInput(cache, ids, ids.length, false, null));
            double[] logprobs = new double[ids.length];
            int width = rows.width();
            for (int i = 1; i < ids.length; i++) {
                int row = (i - 1) * width;
                double max = Double.NEGATIVE_INFINITY;
                for (int t = 0; t < width; t++) {
                    max = Math.max(max, rows.logits()[row + t]);
                }
                double sum = 0;
                for (int t = 0; t < width; t++) {
                    sum += Math.exp(rows.logits()[row + t] - max);
                }
                logprobs[i] = rows.logits()[row + ids[i]] - max - Math.log(sum);
            }
            return logprobs;
        }
    }

    /** The logprobs objects of a stream's events, concatenated. */
    private JsonNode streamedLogprobs(List<JsonNode> events) {
        tools.jackson.databind.node.ObjectNode all = tools.jackson.databind.node.JsonNodeFactory.instance.objectNode();
        for (String field : List.of("tokens", "token_logprobs", "top_logprobs", "text_offset")) {
            tools.jackson.databind.node.ArrayNode values = all.putArray(field);
            for (JsonNode event : events) {
                JsonNode logprobs = event.at("/choices/0/logprobs");
                if (logprobs.isObject()) {
                    logprobs.get(field).forEach(values::add);
                }
            }
        }
        return all;
    }

    @Test
    void carriesTheSpeculationExtrasAndUsageAsAChatCompletionDoes() {
        JsonNode completion = complete("""
                {"prompt": %s, "max_tokens": 24, "speculation": {"policy": "fixed", "gamma": 3, "proposer": "model"},
                 "temperature": 0, "user": "someone"}""".formatted(quote(PROMPT)));

        assertThat(completion.at("/speculation/requested_policy").stringValue()).isEqualTo("fixed");
        assertThat(completion.at("/speculation/policy").isString()).isTrue();
        assertThat(completion.at("/speculation/drafted").isIntegralNumber()).isTrue();
        assertThat(completion.at("/speculation/accepted").longValue())
            .isLessThanOrEqualTo(completion.at("/speculation/drafted").longValue());
        assertThat(completion.at("/speculation/mean_accepted_length").isNumber()).isTrue();
        assertThat(completion.at("/speculation/cached").booleanValue()).isFalse();
        assertThat(completion.at("/speculation/backend").stringValue()).as("as chat says it").isEqualTo(Backends.LOCAL);
        assertThat(completion.at("/usage/total_tokens").intValue())
            .isEqualTo(completion.at("/usage/prompt_tokens").intValue()
                    + completion.at("/usage/completion_tokens").intValue());
    }

    @Test
    void aSuffixIsRefusedNamingItOnAModelWithoutFillInTheMiddleTokens() {
        assertThatThrownBy(
                () -> client.completions().create(greedy(8).toBuilder().suffix("\n\nprint(fibonacci(10))").build()))
            .isInstanceOfSatisfying(BadRequestException.class, (ex) -> {
                assertThat(ex.param()).hasValue("suffix");
                assertThat(ex.getMessage()).contains("fill-in-the-middle");
            });
        // an empty suffix fills nothing: an ordinary completion
        assertThat(complete("{\"prompt\": %s, \"max_tokens\": 4, \"suffix\": \"\"}".formatted(quote(PROMPT)))
            .at("/choices/0/text")
            .isString()).isTrue();
    }

    @Test
    void mistakesAre400sNamingTheField() {
        assertError("{\"prompt\": \"x\", \"max_tokns\": 4}", "max_tokns", "unsupported_parameter");
        assertError("{\"prompt\": [\"a\", \"b\"]}", "prompt", "unsupported_value");
        assertError("{\"prompt\": \"x\", \"logprobs\": true}", "logprobs", null);
        assertError("{\"prompt\": \"x\", \"max_tokens\": 0}", "max_tokens", null);
        assertError("{\"prompt\": [1, %d]}".formatted(tokenizer.vocabularySize()), "prompt[1]", null);
        assertError("{\"prompt\": \"x\", \"model\": \"gpt-3.5-turbo-instruct\"}", "model", "model_not_found");
        assertError("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", "messages", "unsupported_parameter");
        // the context's limit, before a stream starts, in this API's words
        for (String stream : List.of("false", "true")) {
            JsonNode error = assertError(
                    "{\"prompt\": \"x\", \"max_tokens\": 100000, \"stream\": %s}".formatted(stream), "prompt",
                    "context_length_exceeded");
            assertThat(error.get("message").stringValue()).contains("in your prompt");
        }
    }

    private JsonNode assertError(String body, String param, String code) {
        HttpResponse<String> response = http.postTo(COMPLETIONS, body);
        assertThat(response.statusCode()).as(response.body()).isEqualTo(400);
        assertThat(response.headers().firstValue("Content-Type"))
            .hasValueSatisfying((type) -> assertThat(type).startsWith("application/json"));
        JsonNode error = http.json(response).get("error");
        assertThat(error.get("type").stringValue()).isEqualTo("invalid_request_error");
        assertThat(error.get("param").stringValue()).as(response.body()).isEqualTo(param);
        if (code != null) {
            assertThat(error.get("code").stringValue()).isEqualTo(code);
        }
        return error;
    }

    private JsonNode complete(String body) {
        HttpResponse<String> response = http.postTo(COMPLETIONS, body);
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        JsonNode completion = http.json(response);
        assertThat(completion.get("object").stringValue()).isEqualTo("text_completion");
        return completion;
    }

    private static String quote(String text) {
        return "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
    }

    private static CompletionCreateParams greedy(long maxTokens) {
        return CompletionCreateParams.builder()
            .model("specula-tiny")
            .prompt(PROMPT)
            .maxTokens(maxTokens)
            .temperature(0.0)
            .build();
    }

}
