package dev.specula.sample;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.regex.Pattern;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.errors.RateLimitException;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.model.Generation;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.annotation.Bean;
import reactor.core.publisher.Flux;
import tools.jackson.databind.JsonNode;

import dev.specula.chat.SpeculaChatModel;
import dev.specula.request.InvalidRequestException;
import dev.specula.serving.GenerationService;
import dev.specula.serving.ModelPairHandle;
import dev.specula.serving.ServiceBusyException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * How failures inside the model reach clients: status, headers and OpenAI's error body,
 * for streamed and non-streamed requests. Specula's auto-configuration is off
 * ({@code spring.ai.model.chat=none}); the gateway talks to a {@link SwitchableChatModel}
 * that each test points at a failing model. The 503s come from real
 * {@link SpeculaChatModel}s whose models are still loading, or failed to; the 429 from a
 * stand-in that throws {@link ServiceBusyException} (a real bulkhead needs loaded
 * models). Output is captured to check what the gateway logs.
 */
@ExtendWith(OutputCaptureExtension.class)
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT, properties = "spring.ai.model.chat=none")
class GatewayErrorsTest {

    private static final String MODEL = "test-model";

    private static final String HELLO = "{\"messages\": [{\"role\": \"user\", \"content\": \"hello\"}]";

    private static final String COMPLETE = HELLO + "}";

    private static final String STREAM = HELLO + ", \"stream\": true}";

    /** Never loads: its loader is handed to an executor that does not run it. */
    private static final GenerationService LOADING = GenerationService.builder(ModelPairHandle.loading(() -> {
        throw new AssertionError("never runs");
    }, (task) -> {
    })).build();

    /** Failed to load, for good. */
    private static final GenerationService FAILED = GenerationService.builder(ModelPairHandle.loading(() -> {
        throw new IllegalStateException("config.json not found in /models/broken");
    }, Runnable::run)).build();

    @LocalServerPort
    private int port;

    @Autowired
    private SwitchableChatModel chatModel;

    private GatewayHttp http;

    @TestConfiguration(proxyBeanMethods = false)
    static class Models {

        @Bean
        SwitchableChatModel switchableChatModel() {
            return new SwitchableChatModel();
        }

    }

    @BeforeEach
    void setUp() {
        http = new GatewayHttp(port);
    }

    @AfterAll
    static void closeServices() {
        LOADING.close();
        FAILED.close();
    }

    @Test
    void busyIs429WithRetryAfter() {
        chatModel.use(new Failing(() -> new ServiceBusyException(4)));

        for (String body : List.of(COMPLETE, STREAM)) {
            HttpResponse<String> response = http.post(body);
            assertThat(response.statusCode()).isEqualTo(429);
            assertThat(response.headers().firstValue("Retry-After")).hasValue("1");
            JsonNode error = http.json(response).get("error");
            assertThat(error.get("type").stringValue()).isEqualTo("rate_limit_error");
            assertThat(error.get("code").stringValue()).isEqualTo("busy");
            assertThat(error.get("message").stringValue()).contains("4 generation slots");
        }
    }

    @Test
    void theOpenAiClientSeesBusyAsARateLimit() {
        chatModel.use(new Failing(() -> new ServiceBusyException(2)));
        OpenAIClient client = OpenAIOkHttpClient.builder()
            .baseUrl("http://localhost:" + port + "/v1")
            .apiKey("unused")
            .maxRetries(0)
            .build();
        try {
            assertThatThrownBy(() -> client.chat()
                .completions()
                .create(ChatCompletionCreateParams.builder().model(MODEL).addUserMessage("hello").build()))
                .isInstanceOfSatisfying(RateLimitException.class, (ex) -> assertThat(ex.code()).hasValue("busy"));
        }
        finally {
            client.close();
        }
    }

    @Test
    void modelsStillLoadingIs503WithRetryAfter() {
        chatModel.use(SpeculaChatModel.builder().service(LOADING).modelName(MODEL).build());

        for (String body : List.of(COMPLETE, STREAM)) {
            HttpResponse<String> response = http.post(body);
            assertThat(response.statusCode()).isEqualTo(503);
            assertThat(response.headers().firstValue("Retry-After")).hasValue("5");
            assertThat(http.json(response).at("/error/code").stringValue()).isEqualTo("models_loading");
        }
    }

    @Test
    void modelsThatFailedToLoadAre503WithoutRetryAfter() {
        FAILED.models().await();
        chatModel.use(SpeculaChatModel.builder().service(FAILED).modelName(MODEL).build());

        for (String body : List.of(COMPLETE, STREAM)) {
            HttpResponse<String> response = http.post(body);
            assertThat(response.statusCode()).isEqualTo(503);
            assertThat(response.headers().firstValue("Retry-After")).isEmpty();
            JsonNode error = http.json(response).get("error");
            assertThat(error.get("code").stringValue()).isEqualTo("models_failed");
            assertThat(error.get("message").stringValue()).contains("config.json not found");
        }
    }

    @Test
    void aRequestTheModelRejectsIs400NamingTheParamAndAnythingElse500() {
        chatModel.use(new Failing(
                () -> new InvalidRequestException("gamma", "gamma of policy 'fixed' must be in [1, 64] but was 100")));
        for (String body : List.of(COMPLETE, STREAM)) {
            HttpResponse<String> rejected = http.post(body);
            assertThat(rejected.statusCode()).isEqualTo(400);
            JsonNode error = http.json(rejected).get("error");
            assertThat(error.get("type").stringValue()).isEqualTo("invalid_request_error");
            assertThat(error.get("param").stringValue()).isEqualTo("speculation.gamma");
            assertThat(error.get("message").stringValue()).contains("gamma");
        }

        chatModel.use(new Failing(() -> new IllegalStateException("ONNX Runtime: out of memory")));
        for (String body : List.of(COMPLETE, STREAM)) {
            HttpResponse<String> failed = http.post(body);
            assertThat(failed.statusCode()).isEqualTo(500);
            assertThat(http.json(failed).at("/error/type").stringValue()).isEqualTo("server_error");
            assertThat(http.json(failed).at("/error/message").stringValue()).contains("out of memory");
        }
    }

    /**
     * Our bugs (an IllegalArgumentException inside the engine) are 500s, not "your
     * request is invalid".
     */
    @Test
    void anInternalFaultIs500WithARequestIdLoggedWithItsStackTraceButNotThePrompt(CapturedOutput output) {
        String secret = "the-prompt-nobody-may-log-4711";
        String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"" + secret + "\"}]";
        List<Supplier<RuntimeException>> faults = List.of(
                () -> new IllegalArgumentException("Direct buffer of -2147483648 bytes"),
                () -> new IllegalStateException("KV cache: position 70 beyond 64"));
        for (Supplier<RuntimeException> fault : faults) {
            chatModel.use(new Failing(fault));
            for (String request : List.of(body + "}", body + ", \"stream\": true}")) {
                HttpResponse<String> failed = http.post(request);

                assertThat(failed.statusCode()).as(failed.body()).isEqualTo(500);
                String requestId = failed.headers().firstValue("X-Request-Id").orElseThrow();
                assertThat(requestId).matches("req-[0-9a-f]{32}");
                JsonNode error = http.json(failed).get("error");
                assertThat(error.get("type").stringValue()).isEqualTo("server_error");
                assertThat(error.get("message").stringValue()).contains(requestId);
                // the line that reports the failure names the request, and the stack
                // trace follows it
                assertThat(output.getOut()).containsPattern("ERROR .*Chat completion " + requestId + " failed\\R+"
                        + Pattern.quote(fault.get().getClass().getName()) + ": .*\\R\\s+at dev\\.specula\\.sample\\.");
            }
        }
        assertThat(output.getAll()).doesNotContain(secret);
    }

    @Test
    void theClientsRequestIdIsKeptWhenItIsSane() {
        chatModel.use(new Failing(() -> new IllegalStateException("device lost")));

        HttpResponse<String> kept = http.post(COMPLETE, "X-Request-Id", "client-7.a_b:c");
        assertThat(kept.headers().firstValue("X-Request-Id")).hasValue("client-7.a_b:c");
        assertThat(http.json(kept).at("/error/message").stringValue()).contains("client-7.a_b:c");

        HttpResponse<String> replaced = http.post(COMPLETE, "X-Request-Id", "x".repeat(200));
        assertThat(replaced.headers().firstValue("X-Request-Id").orElseThrow()).matches("req-[0-9a-f]{32}");
    }

    @Test
    void callerMistakesAre400NamingTheParam() {
        Counting counting = new Counting();
        chatModel.use(counting);
        assertRejected("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": -0.5}",
                "temperature");
        assertRejected("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_p\": 1.5}", "top_p");
        assertRejected(
                "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"speculation\": {\"policy\": \"warp\"}}",
                "speculation.policy");
        assertThat(counting.calls).hasValue(0);
    }

    /**
     * Refused on its size alone: never parsed into messages, never handed to the model,
     * never tokenized.
     */
    @Test
    void aTenMegabyteBodyIsRefusedBeforeTheModelSeesIt() {
        Counting counting = new Counting();
        chatModel.use(counting);
        String huge = "{\"messages\": [{\"role\": \"user\", \"content\": \"" + "x".repeat(10 * 1024 * 1024) + "\"}]}";

        for (boolean chunked : List.of(false, true)) {
            long start = System.nanoTime();
            HttpResponse<String> refused = chunked ? http.postChunked(huge) : http.post(huge);
            Duration took = Duration.ofNanos(System.nanoTime() - start);

            assertThat(refused.statusCode()).as(refused.body()).isEqualTo(413);
            JsonNode error = http.json(refused).get("error");
            assertThat(error.get("type").stringValue()).isEqualTo("invalid_request_error");
            assertThat(error.get("code").stringValue()).isEqualTo("request_too_large");
            assertThat(error.get("message").stringValue()).contains("1MB")
                .contains("specula.gateway.max-request-bytes");
            assertThat(took).isLessThan(Duration.ofSeconds(10));
        }
        assertThat(counting.calls).hasValue(0);
    }

    private void assertRejected(String body, String param) {
        HttpResponse<String> rejected = http.post(body);
        assertThat(rejected.statusCode()).as(rejected.body()).isEqualTo(400);
        assertThat(http.json(rejected).at("/error/param").stringValue()).isEqualTo(param);
        assertThat(http.json(rejected).at("/error/type").stringValue()).isEqualTo("invalid_request_error");
    }

    @Test
    void aFailureAfterTheFirstChunkEndsTheStreamWithAnErrorEvent() {
        chatModel.use(new Failing(() -> new IllegalStateException("ONNX Runtime: device lost")) {
            @Override
            public Flux<ChatResponse> stream(Prompt prompt) {
                return Flux.concat(Flux.just(new ChatResponse(List.of(new Generation(new AssistantMessage("def"))))),
                        super.stream(prompt));
            }
        });

        HttpResponse<String> response = http.post(STREAM);

        assertThat(response.statusCode()).isEqualTo(200);
        List<JsonNode> events = List.of(response.body().split("\n\n"))
            .stream()
            .map((event) -> http.json(event.substring("data: ".length())))
            .toList();
        assertThat(events).hasSize(3);
        assertThat(events.get(0).at("/choices/0/delta/role").stringValue()).isEqualTo("assistant");
        assertThat(events.get(1).at("/choices/0/delta/content").stringValue()).isEqualTo("def");
        assertThat(events.get(2).at("/error/message").stringValue()).contains("device lost");
        assertThat(events.get(2).at("/error/type").stringValue()).isEqualTo("server_error");
    }

    @Test
    void listsTheChatModelsDefaultModelName() {
        chatModel.use(new Failing(() -> new IllegalStateException("not called")));

        HttpResponse<String> response = http.get("/v1/models");

        assertThat(response.statusCode()).isEqualTo(200);
        JsonNode models = http.json(response);
        assertThat(models.get("object").stringValue()).isEqualTo("list");
        assertThat(models.at("/data/0/id").stringValue()).isEqualTo(MODEL);
        assertThat(models.at("/data/0/object").stringValue()).isEqualTo("model");
        assertThat(models.at("/data/0/owned_by").stringValue()).isEqualTo("specula");
        assertThat(models.at("/data/0/created").isIntegralNumber()).isTrue();
    }

    /**
     * The ChatModel bean the gateway uses: forwards to whichever model the test chose.
     */
    static final class SwitchableChatModel implements ChatModel {

        private volatile ChatModel delegate;

        void use(ChatModel model) {
            this.delegate = model;
        }

        @Override
        public ChatResponse call(Prompt prompt) {
            return delegate.call(prompt);
        }

        @Override
        public Flux<ChatResponse> stream(Prompt prompt) {
            return delegate.stream(prompt);
        }

        @Override
        public ChatOptions getOptions() {
            return ChatOptions.builder().model(MODEL).build();
        }

    }

    /** Counts the requests that reach the model, and answers none of them. */
    static final class Counting implements ChatModel {

        final AtomicInteger calls = new AtomicInteger();

        @Override
        public ChatResponse call(Prompt prompt) {
            calls.incrementAndGet();
            throw new IllegalStateException("not expected to be called");
        }

        @Override
        public Flux<ChatResponse> stream(Prompt prompt) {
            calls.incrementAndGet();
            return Flux.error(new IllegalStateException("not expected to be called"));
        }

    }

    /**
     * Fails every call, and every stream before its first chunk, with the given
     * exception.
     */
    static class Failing implements ChatModel {

        private final Supplier<RuntimeException> failure;

        Failing(Supplier<RuntimeException> failure) {
            this.failure = failure;
        }

        @Override
        public ChatResponse call(Prompt prompt) {
            throw failure.get();
        }

        @Override
        public Flux<ChatResponse> stream(Prompt prompt) {
            return Flux.error(failure);
        }

    }

}
