package dev.specula.sample;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.ApplicationContext;
import org.springframework.security.core.userdetails.UserDetailsService;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import tools.jackson.databind.JsonNode;

import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * API keys, rate limits and request limits on the running gateway: keys from the
 * properties and from a file, an admin key, 20 requests and 400 tokens per minute per
 * key, prompts of at most 64 tokens, and the body limit under its former name
 * ({@code max-request-size}, 64KB). Each test uses keys of its own, so that the per-key
 * limits of one test never meet another's.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
        properties = { "specula.cache.response.enabled=false", "specula.gateway.api-keys=" + GatewaySecurityTest.KEY,
                "specula.gateway.admin-api-keys=" + GatewaySecurityTest.ADMIN_KEY,
                "specula.gateway.rate-limit.requests-per-minute=20", "specula.gateway.rate-limit.tokens-per-minute=400",
                "specula.gateway.max-prompt-tokens=64", "specula.gateway.max-request-size=64KB" })
@ExtendWith(OutputCaptureExtension.class)
class GatewaySecurityTest {

    static final String KEY = "sk-plain-0123456789abcdef0123";

    static final String ADMIN_KEY = "sk-admin-0123456789abcdef0123";

    /** Keys of the key file, one per test that counts a per-key limit. */
    static final String REQUESTS_KEY = "sk-file-requests-0123456789abcdef";

    static final String TOKENS_KEY = "sk-file-tokens-0123456789abcdef";

    static final String PROMPT_KEY = "sk-file-prompt-0123456789abcdef";

    static final String COMPLETIONS_KEY = "sk-file-completions-0123456789abcdef";

    private static final Path KEY_FILE = keyFile();

    @LocalServerPort
    private int port;

    @Autowired
    private ModelPairHandle models;

    @Autowired
    private ApplicationContext context;

    private GatewayHttp http;

    @DynamicPropertySource
    static void keyFile(DynamicPropertyRegistry registry) {
        registry.add("specula.gateway.api-keys-file", KEY_FILE::toString);
    }

    @BeforeEach
    void setUp() {
        models.await();
        http = new GatewayHttp(port);
    }

    @Test
    void withoutAKeyEverythingButHealthIs401InOpenAisShape() {
        for (String path : List.of("/v1/models", "/actuator/specula", "/actuator/metrics", "/actuator/info",
                "/no/such/path")) {
            HttpResponse<String> refused = http.get(path);
            assertThat(refused.statusCode()).as(path).isEqualTo(401);
            assertThat(refused.headers().firstValue("WWW-Authenticate")).as(path).hasValue("Bearer");
            JsonNode error = http.json(refused).get("error");
            assertThat(error.get("type").stringValue()).isEqualTo("invalid_request_error");
            assertThat(error.get("code").stringValue()).isEqualTo("invalid_api_key");
            assertThat(error.get("param").isNull()).isTrue();
            assertThat(error.get("message").stringValue()).contains("Authorization: Bearer");
        }
        HttpResponse<String> completion = http.post(chat("def add(a, b):", 8));
        assertThat(completion.statusCode()).isEqualTo(401);

        HttpResponse<String> health = http.get("/actuator/health");
        assertThat(health.statusCode()).isEqualTo(200);
        assertThat(http.json(health).get("status").stringValue()).isEqualTo("UP");
    }

    /**
     * The playground's static files are open (a browser cannot send a key when it loads a
     * page); its options and the API it calls need the key it is given.
     */
    @Test
    void thePlaygroundPageIsOpenAndWhatItCallsNeedsAKey() {
        for (String page : List.of("/", "/index.html", "/playground.js", "/playground.css")) {
            assertThat(http.get(page).statusCode()).as(page).isEqualTo(200);
        }
        assertThat(http.get("/playground/options").statusCode()).isEqualTo(401);
        assertThat(http.get("/playground/options", "Authorization", "Bearer " + KEY).statusCode()).isEqualTo(200);
        // a dot segment behind an open page reaches nothing: Spring Security's firewall
        // refuses it (400 in OpenAI's shape) before any rule or endpoint sees it
        HttpResponse<String> dotted = http.get("/index.html/../v1/models");
        assertThat(dotted.statusCode()).isEqualTo(400);
        assertThat(http.json(dotted).at("/error/code").stringValue()).isEqualTo("invalid_url");
    }

    @Test
    void aWrongKeyOrAnotherSchemeIs401AndTheKeyIsNeverEchoed() {
        HttpResponse<String> wrong = http.get("/v1/models", "Authorization", "Bearer sk-guessed-0123456789");
        assertThat(wrong.statusCode()).isEqualTo(401);
        assertThat(wrong.body()).contains("Incorrect API key").doesNotContain("sk-guessed");

        HttpResponse<String> basic = http.get("/v1/models", "Authorization", "Basic " + KEY);
        assertThat(basic.statusCode()).isEqualTo(401);
        assertThat(basic.headers().firstValue("WWW-Authenticate")).hasValue("Bearer");

        OpenAIClient client = client("sk-guessed-0123456789");
        try {
            assertThatThrownBy(() -> client.models().list()).isInstanceOf(UnauthorizedException.class);
        }
        finally {
            client.close();
        }
    }

    @Test
    void keysFromThePropertiesAndTheFileOpenTheApiToTheOpenAiClient() {
        OpenAIClient client = client(KEY);
        try {
            assertThat(client.models().list().data()).singleElement()
                .satisfies((model) -> assertThat(model.id()).isEqualTo("specula-tiny"));
            ChatCompletion completion = client.chat()
                .completions()
                .create(ChatCompletionCreateParams.builder()
                    .model("specula-tiny")
                    .addUserMessage("def add(a, b):")
                    .maxCompletionTokens(8)
                    .temperature(0.0)
                    .build());
            assertThat(completion.choices().get(0).message().content()).isPresent();
        }
        finally {
            client.close();
        }
        assertThat(http.get("/v1/models", "Authorization", "Bearer " + PROMPT_KEY).statusCode()).isEqualTo(200);
        // the scheme is case-insensitive, as RFC 9110 says
        assertThat(http.get("/v1/models", "Authorization", "bearer " + KEY).statusCode()).isEqualTo(200);
    }

    @Test
    void actuatorReadsNeedAKeyAndWritesAnAdminKey() {
        assertThat(http.get("/actuator/specula", "Authorization", "Bearer " + KEY).statusCode()).isEqualTo(200);

        HttpResponse<String> forbidden = http.delete("/actuator/specula", "Authorization", "Bearer " + KEY);
        assertThat(forbidden.statusCode()).isEqualTo(403);
        JsonNode error = http.json(forbidden).get("error");
        assertThat(error.get("code").stringValue()).isEqualTo("insufficient_permissions");
        assertThat(error.get("message").stringValue()).contains("specula.gateway.admin-api-keys");

        HttpResponse<String> cleared = http.delete("/actuator/specula", "Authorization", "Bearer " + ADMIN_KEY);
        assertThat(cleared.statusCode()).as(cleared.body()).isEqualTo(200);
        // an admin key is an API key too
        assertThat(http.get("/v1/models", "Authorization", "Bearer " + ADMIN_KEY).statusCode()).isEqualTo(200);
    }

    /**
     * A streamed request without a valid key is refused before any stream starts: a plain
     * 401 JSON body in OpenAI's shape, not an event stream.
     */
    @Test
    void aStreamedRequestWithoutAValidKeyIsAPlain401() {
        String streamed = chat("def add(a, b):", 8, ", \"stream\": true");
        for (HttpResponse<String> refused : List.of(http.post(streamed),
                http.post(streamed, "Authorization", "Bearer sk-guessed-0123456789"),
                http.postTo("/v1/completions", "{\"prompt\": \"def f():\", \"max_tokens\": 4, \"stream\": true}",
                        "Authorization", "Bearer sk-guessed-0123456789"))) {
            assertThat(refused.statusCode()).isEqualTo(401);
            assertThat(refused.headers().firstValue("Content-Type"))
                .hasValueSatisfying((type) -> assertThat(type).startsWith("application/json"));
            assertThat(refused.headers().firstValue("WWW-Authenticate")).hasValue("Bearer");
            assertThat(refused.headers().firstValue("X-Request-Id")).isPresent();
            assertThat(http.json(refused).at("/error/code").stringValue()).isEqualTo("invalid_api_key");
            assertThat(refused.body()).doesNotContain("data:").doesNotContain("sk-guessed");
        }
    }

    /**
     * A key sent to an open path is not checked: a wrong one does not turn health or the
     * playground into a 401 (as before Spring Security).
     */
    @Test
    void aWrongKeyOnAnOpenPathIsIgnored() {
        assertThat(http.get("/actuator/health", "Authorization", "Bearer sk-guessed-0123456789").statusCode())
            .isEqualTo(200);
        assertThat(http.get("/", "Authorization", "Bearer sk-guessed-0123456789").statusCode()).isEqualTo(200);
    }

    /**
     * Spring Security creates no user of its own (no generated password is logged) and
     * session.
     */
    @Test
    void thereIsNoGeneratedUserAndNoSession(CapturedOutput output) {
        assertThat(context.getBeanNamesForType(UserDetailsService.class)).isEmpty();
        assertThat(output.getAll()).doesNotContain("generated security password");
        HttpResponse<String> answered = http.get("/v1/models", "Authorization", "Bearer " + KEY);
        assertThat(answered.statusCode()).isEqualTo(200);
        assertThat(answered.headers().firstValue("Set-Cookie")).isEmpty();
    }

    /**
     * Encodings and dot segments reach no endpoint past the rules: the open health paths
     * are matched on the raw path, the admin rule on the decoded, normalized one.
     */
    @Test
    void encodedOrDottedPathsDoNotSlipPastTheRules() {
        String plain = "Bearer " + KEY;
        assertThat(http.rawStatus("DELETE", "/actuator/%73pecula", "Authorization", plain)).isNotEqualTo(200);
        assertThat(http.rawStatus("DELETE", "/v1/../actuator/specula", "Authorization", plain)).isNotEqualTo(200);
        assertThat(http.rawStatus("DELETE", "/actuator/specula;x=1", "Authorization", plain)).isNotEqualTo(200);
        assertThat(http.rawStatus("GET", "/actuator/health/../specula")).isNotEqualTo(200);
        assertThat(http.rawStatus("GET", "/actuator/health/..;/specula")).isNotEqualTo(200);
        assertThat(http.rawStatus("GET", "/actuator/health/%2e%2e/specula")).isNotEqualTo(200);
        assertThat(http.rawStatus("GET", "/actuator/health")).isEqualTo(200);
    }

    @Test
    void requestsPerMinuteAreCountedPerKeyWithOpenAisHeaders() {
        String key = "Bearer " + REQUESTS_KEY;
        HttpResponse<String> first = http.get("/v1/models", "Authorization", key);
        assertThat(first.headers().firstValue("x-ratelimit-limit-requests")).hasValue("20");
        assertThat(first.headers().firstValue("x-ratelimit-remaining-requests")).hasValue("19");
        assertThat(first.headers().firstValue("x-ratelimit-reset-requests")).isPresent();
        // the bucket refills one request every 3 s: a slow machine may get a few more
        HttpResponse<String> limited = null;
        for (int i = 1; i < 30 && limited == null; i++) {
            HttpResponse<String> response = http.get("/v1/models", "Authorization", key);
            if (response.statusCode() == 429) {
                limited = response;
                assertThat(i).as("requests before the limit").isGreaterThanOrEqualTo(20);
            }
            else {
                assertThat(response.statusCode()).isEqualTo(200);
            }
        }
        assertThat(limited).as("a 429 within 30 requests").isNotNull();
        assertThat(Long.parseLong(limited.headers().firstValue("Retry-After").orElseThrow())).isBetween(1L, 60L);
        assertThat(limited.headers().firstValue("x-ratelimit-remaining-requests")).hasValue("0");
        JsonNode error = http.json(limited).get("error");
        assertThat(error.get("type").stringValue()).isEqualTo("rate_limit_error");
        assertThat(error.get("code").stringValue()).isEqualTo("rate_limit_exceeded");
        assertThat(error.get("message").stringValue()).contains("requests per minute")
            .contains("specula.gateway.rate-limit.requests-per-minute");
        // other keys have their own minute
        assertThat(http.get("/v1/models", "Authorization", "Bearer " + KEY).statusCode()).isEqualTo(200);
    }

    /**
     * 400 tokens a minute: max_tokens over it is refused for good; a request reserves
     * max_tokens + its prompt and gives back what it did not use, streamed or not, so
     * short answers leave room for the next; long ones spend the minute.
     */
    @Test
    void tokensPerMinuteReserveMaxTokensAndGiveBackWhatIsUnused() {
        String key = "Bearer " + TOKENS_KEY;
        HttpResponse<String> tooLarge = http.post(chat("def add(a, b):", 500), "Authorization", key);
        assertThat(tooLarge.statusCode()).isEqualTo(429);
        assertThat(tooLarge.headers().firstValue("Retry-After")).isEmpty();
        assertThat(http.json(tooLarge).at("/error/message").stringValue()).contains("max_tokens 500")
            .contains("specula.gateway.rate-limit.tokens-per-minute");

        // ends at its first line: a few tokens used of the 300 reserved
        String shortAnswer = chat("def add(a, b):", 300, ", \"stop\": [\"\\n\"]");
        HttpResponse<String> first = http.post(shortAnswer, "Authorization", key);
        assertThat(first.statusCode()).as(first.body()).isEqualTo(200);
        assertThat(first.headers().firstValue("x-ratelimit-limit-tokens")).hasValue("400");
        assertThat(http.json(first).at("/usage/total_tokens").asInt()).isLessThan(100);
        HttpResponse<String> streamed = http
            .post(chat("def add(a, b):", 300, ", \"stop\": [\"\\n\"], \"stream\": true"), "Authorization", key);
        assertThat(streamed.statusCode()).as(streamed.body()).isEqualTo(200);
        assertThat(streamed.body()).contains("data: [DONE]");
        // 300 + 300 reserved would be over 400: passes only if both gave back
        HttpResponse<String> third = http.post(shortAnswer, "Authorization", key);
        assertThat(third.statusCode()).as(third.body()).isEqualTo(200);

        // runs to its 300 tokens (no end of sequence for this prompt): the minute is
        // spent
        HttpResponse<String> longAnswer = http.post(chat("class Foo:", 300), "Authorization", key);
        assertThat(longAnswer.statusCode()).as(longAnswer.body()).isEqualTo(200);
        assertThat(http.json(longAnswer).at("/usage/completion_tokens").asInt()).isEqualTo(300);
        // 390 + the prompt needs a nearly full minute: 45 s of refill
        HttpResponse<String> spent = http.post(chat("class Foo:", 390), "Authorization", key);
        assertThat(spent.statusCode()).as(spent.body()).isEqualTo(429);
        assertThat(Long.parseLong(spent.headers().firstValue("Retry-After").orElseThrow())).isPositive();
        assertThat(spent.headers().firstValue("x-ratelimit-remaining-tokens")).isPresent();
        assertThat(http.json(spent).at("/error/message").stringValue()).contains("tokens per minute");
    }

    /**
     * max-prompt-tokens 64: far over it is refused from the characters alone ("at
     * least"), a little over it once counted, under it answered.
     */
    @Test
    void promptsOverMaxPromptTokensAre400ContextLengthExceeded() {
        String key = "Bearer " + PROMPT_KEY;
        for (String body : List.of(chat("x".repeat(5000), 8), chat("x".repeat(5000), 8, ", \"stream\": true"))) {
            HttpResponse<String> huge = http.post(body, "Authorization", key);
            assertThat(huge.statusCode()).as(huge.body()).isEqualTo(400);
            JsonNode error = http.json(huge).get("error");
            assertThat(error.get("code").stringValue()).isEqualTo("context_length_exceeded");
            assertThat(error.get("param").stringValue()).isEqualTo("messages");
            assertThat(error.get("message").stringValue()).contains("at least")
                .contains("specula.gateway.max-prompt-tokens")
                .contains("64 tokens");
        }

        HttpResponse<String> over = http.post(chat("def add(a, b):\\n    return a + b\\n".repeat(12), 8),
                "Authorization", key);
        assertThat(over.statusCode()).as(over.body()).isEqualTo(400);
        assertThat(http.json(over).at("/error/message").stringValue()).doesNotContain("at least")
            .containsPattern("resulted in \\d+ tokens");

        HttpResponse<String> under = http.post(chat("def add(a, b):", 8), "Authorization", key);
        assertThat(under.statusCode()).as(under.body()).isEqualTo(200);
    }

    /**
     * /v1/completions has the same limits: a key, the prompt-token limit (naming
     * {@code prompt}, before or after tokenizing) and the token headers.
     */
    @Test
    void theCompletionsEndpointHasTheSameKeysAndLimits() {
        String key = "Bearer " + COMPLETIONS_KEY;
        assertThat(http.postTo("/v1/completions", "{\"prompt\": \"def f():\", \"max_tokens\": 4}").statusCode())
            .isEqualTo(401);

        HttpResponse<String> huge = http.postTo("/v1/completions",
                "{\"prompt\": \"" + "x".repeat(5000) + "\", \"max_tokens\": 4}", "Authorization", key);
        assertThat(huge.statusCode()).as(huge.body()).isEqualTo(400);
        assertThat(http.json(huge).at("/error/param").stringValue()).isEqualTo("prompt");
        assertThat(http.json(huge).at("/error/code").stringValue()).isEqualTo("context_length_exceeded");
        assertThat(http.json(huge).at("/error/message").stringValue()).contains("at least")
            .contains("specula.gateway.max-prompt-tokens");

        HttpResponse<String> over = http.postTo("/v1/completions",
                "{\"prompt\": \"" + "def add(a, b):\\n    return a + b\\n".repeat(12) + "\", \"max_tokens\": 4}",
                "Authorization", key);
        assertThat(over.statusCode()).as(over.body()).isEqualTo(400);
        assertThat(http.json(over).at("/error/param").stringValue()).isEqualTo("prompt");
        assertThat(http.json(over).at("/error/message").stringValue()).doesNotContain("at least");

        HttpResponse<String> answered = http.postTo("/v1/completions",
                "{\"prompt\": \"def f():\", \"max_tokens\": 4, \"temperature\": 0}", "Authorization", key);
        assertThat(answered.statusCode()).as(answered.body()).isEqualTo(200);
        assertThat(answered.headers().firstValue("x-ratelimit-limit-tokens")).hasValue("400");
        assertThat(answered.headers().firstValue("x-ratelimit-limit-requests")).hasValue("20");
        assertThat(
                http.postTo("/v1/completions", "{\"prompt\": \"def f():\", \"max_tokens\": 500}", "Authorization", key)
                    .statusCode())
            .isEqualTo(429);
    }

    @Test
    void theBodyLimitStillAnswersToItsFormerName() {
        HttpResponse<String> refused = http.post(chat("x".repeat(70 * 1024), 8), "Authorization", "Bearer " + KEY);
        assertThat(refused.statusCode()).isEqualTo(413);
        assertThat(http.json(refused).at("/error/message").stringValue()).contains("64KB")
            .contains("specula.gateway.max-request-bytes");
    }

    private OpenAIClient client(String key) {
        return OpenAIOkHttpClient.builder()
            .baseUrl("http://localhost:" + port + "/v1")
            .apiKey(key)
            .maxRetries(0)
            .timeout(Duration.ofSeconds(60))
            .build();
    }

    private static String chat(String content, int maxTokens) {
        return chat(content, maxTokens, "");
    }

    /**
     * A greedy request; {@code extra} fields are appended as written (", \"stream\":
     * true").
     */
    private static String chat(String content, int maxTokens, String extra) {
        return "{\"messages\": [{\"role\": \"user\", \"content\": \"" + content + "\"}], \"max_tokens\": " + maxTokens
                + ", \"temperature\": 0" + extra + "}";
    }

    private static Path keyFile() {
        try {
            Path file = Files.createTempFile("specula-keys", ".txt");
            file.toFile().deleteOnExit();
            Files.writeString(file, "# keys of GatewaySecurityTest\n\n" + REQUESTS_KEY + "\n  " + TOKENS_KEY + "  \n"
                    + PROMPT_KEY + "\n" + COMPLETIONS_KEY + "\n");
            return file;
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

}
