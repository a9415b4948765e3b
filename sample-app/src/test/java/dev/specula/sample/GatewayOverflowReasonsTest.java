package dev.specula.sample;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import tools.jackson.databind.JsonNode;

import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Why requests overflow, and what they cost, over real HTTP between gateways in one JVM:
 * a "remote" gateway serving {@value #REMOTE_MODEL}, and two local ones whose
 * {@code specula.overflow.base-url} points at it:
 * <ul>
 * <li>{@code unready}, whose models never load (its model directory is empty): every
 * request it gets overflows as "models not ready". It has API keys and a small tokens per
 * minute ({@value #TOKENS_PER_MINUTE}), each test its own key, so overflowed tokens can
 * be seen to count;</li>
 * <li>{@code shortPrompts}, whose prompts may have at most {@value #MAX_PROMPT_TOKENS}
 * tokens ({@code specula.gateway.max-prompt-tokens}): a longer prompt overflows as "over
 * the local context".</li>
 * </ul>
 */
class GatewayOverflowReasonsTest {

    private static final String REMOTE_MODEL = "remote-tiny";

    private static final String COMPLETIONS = "/v1/completions";

    private static final int TOKENS_PER_MINUTE = 60;

    private static final int MAX_PROMPT_TOKENS = 16;

    /** {@code shortPrompts}' default max_tokens (the remote's is 256). */
    private static final int LOCAL_MAX_TOKENS = 5;

    /** 160 characters: 40 tokens reserved at admission, more than 16 once tokenized. */
    private static final String LONG_PROMPT = "def fibonacci(n):\\n    if n < 2:\\n        return n\\n    "
            + "return fibonacci(n - 1) + fibonacci(n - 2)\\n\\ndef factorial(n):\\n    return 1 if n < 2 else n * "
            + "factorial(n - 1)\\n";

    private static ConfigurableApplicationContext remote;

    private static ConfigurableApplicationContext unready;

    private static ConfigurableApplicationContext shortPrompts;

    private static GatewayHttp unreadyHttp;

    private static GatewayHttp shortPromptsHttp;

    private static Path noModels;

    @BeforeAll
    static void startTheGateways() throws IOException {
        remote = new SpringApplicationBuilder(SpeculaGatewayApplication.class).run("--server.port=0",
                "--specula.model-name=" + REMOTE_MODEL, "--specula.load-mode=eager",
                "--specula.cache.response.enabled=false");
        String overflowTo = "--specula.overflow.base-url=http://localhost:"
                + ((WebServerApplicationContext) remote).getWebServer().getPort() + "/v1";
        noModels = Files.createTempDirectory("specula-no-models");
        unready = new SpringApplicationBuilder(SpeculaGatewayApplication.class).run("--server.port=0",
                "--specula.target.location=" + noModels, "--specula.model-name=unready-tiny",
                "--specula.load-mode=background", "--specula.cache.response.enabled=false",
                "--specula.gateway.api-keys=" + String.join(",", Keys.ALL),
                "--specula.gateway.rate-limit.tokens-per-minute=" + TOKENS_PER_MINUTE,
                "--specula.overflow.enabled=true", overflowTo, "--specula.overflow.model=" + REMOTE_MODEL);
        unready.getBean(ModelPairHandle.class).await();
        unreadyHttp = new GatewayHttp(((WebServerApplicationContext) unready).getWebServer().getPort());
        shortPrompts = new SpringApplicationBuilder(SpeculaGatewayApplication.class).run("--server.port=0",
                "--specula.load-mode=eager", "--specula.cache.response.enabled=false",
                "--specula.gateway.max-prompt-tokens=" + MAX_PROMPT_TOKENS,
                "--specula.chat.options.max-tokens=" + LOCAL_MAX_TOKENS, "--specula.overflow.enabled=true", overflowTo,
                "--specula.overflow.model=" + REMOTE_MODEL);
        shortPromptsHttp = new GatewayHttp(((WebServerApplicationContext) shortPrompts).getWebServer().getPort());
    }

    @AfterAll
    static void stopTheGateways() throws IOException {
        for (ConfigurableApplicationContext context : new ConfigurableApplicationContext[] { shortPrompts, unready,
                remote }) {
            if (context != null) {
                context.close();
            }
        }
        if (noModels != null) {
            Files.deleteIfExists(noModels);
        }
    }

    @Test
    void chatOverflowsWhenTheModelsAreNotReadyStreamedOrNot() {
        String body = chat("def add(a, b):", 8);
        HttpResponse<String> whole = unreadyHttp.post(body + "}", bearer(Keys.CHAT_NOT_READY));
        assertOverflowed(whole);
        assertThat(unreadyHttp.json(whole).at("/choices/0/message/content").stringValue()).isNotEmpty();

        HttpResponse<String> streamed = unreadyHttp.post(body + ", \"stream\": true}", bearer(Keys.CHAT_NOT_READY));
        assertOverflowed(streamed);
        assertThat(streamedChat(unreadyHttp.events(streamed))).isNotEmpty();
    }

    @Test
    void chatOverflowsWhenThePromptIsOverTheLocalContextStreamedOrNot() {
        String body = chat(LONG_PROMPT, 8);
        HttpResponse<String> whole = shortPromptsHttp.post(body + "}");
        assertOverflowed(whole);
        assertThat(shortPromptsHttp.json(whole).at("/usage/prompt_tokens").intValue()).isGreaterThan(MAX_PROMPT_TOKENS);

        HttpResponse<String> streamed = shortPromptsHttp.post(body + ", \"stream\": true}");
        assertOverflowed(streamed);
        assertThat(streamedChat(shortPromptsHttp.events(streamed))).isNotEmpty();

        // a prompt that fits stays local
        HttpResponse<String> fits = shortPromptsHttp.post(chat("x", 4) + "}");
        assertThat(fits.statusCode()).as(fits.body()).isEqualTo(200);
        assertThat(fits.headers().firstValue(Backends.HEADER)).hasValue(Backends.LOCAL);
    }

    /**
     * A client talks to this gateway: a request without max_tokens is capped by this
     * gateway's default wherever it is answered, not by the remote's own (256).
     */
    @Test
    void aRequestWithoutMaxTokensOverflowsCappedByThisGatewaysDefault() {
        HttpResponse<String> chat = shortPromptsHttp
            .post("{\"messages\": [{\"role\": \"user\", \"content\": \"" + LONG_PROMPT + "\"}]}");
        assertOverflowed(chat);
        assertThat(shortPromptsHttp.json(chat).at("/usage/completion_tokens").intValue()).isBetween(1,
                LOCAL_MAX_TOKENS);

        HttpResponse<String> completion = shortPromptsHttp.postTo(COMPLETIONS, "{\"prompt\": \"" + LONG_PROMPT + "\"}");
        assertOverflowed(completion);
        assertThat(shortPromptsHttp.json(completion).at("/usage/completion_tokens").intValue()).isBetween(1,
                LOCAL_MAX_TOKENS);
    }

    /**
     * The first answer's usage (its prompt alone is more tokens than the minute has left
     * after it) leaves too few tokens for the second one's reservation.
     */
    @Test
    void overflowedChatsCountAgainstTheCallersTokensPerMinute() {
        String body = chat(LONG_PROMPT, 16) + "}";
        assertOverflowed(unreadyHttp.post(body, bearer(Keys.CHAT_TOKENS)));
        assertTokensPerMinuteSpent(unreadyHttp.post(body, bearer(Keys.CHAT_TOKENS)));
    }

    /** Without stream_options.include_usage: the gateway asks the remote for it. */
    @Test
    void streamedOverflowedChatsCountAgainstTheCallersTokensPerMinute() {
        String body = chat(LONG_PROMPT, 16) + ", \"stream\": true}";
        HttpResponse<String> streamed = unreadyHttp.post(body, bearer(Keys.CHAT_STREAM_TOKENS));
        assertOverflowed(streamed);
        assertThat(unreadyHttp.events(streamed)).noneMatch((event) -> event.has("usage"));
        assertTokensPerMinuteSpent(unreadyHttp.post(body, bearer(Keys.CHAT_STREAM_TOKENS)));
    }

    @Test
    void chatsNamingTheRemoteModelCountAgainstTheCallersTokensPerMinute() {
        String body = "{\"model\": \"" + REMOTE_MODEL + "\", " + chat(LONG_PROMPT, 16).substring(1) + "}";
        HttpResponse<String> first = unreadyHttp.post(body, bearer(Keys.CHAT_REMOTE_TOKENS));
        assertOverflowed(first);
        assertThat(first.headers().firstValue("x-ratelimit-remaining-tokens")).isPresent();
        assertTokensPerMinuteSpent(unreadyHttp.post(body, bearer(Keys.CHAT_REMOTE_TOKENS)));
    }

    @Test
    void completionsOverflowWhenTheModelsAreNotReadyStreamedOrNot() {
        String body = completion("def add(a, b):", 8);
        HttpResponse<String> whole = unreadyHttp.postTo(COMPLETIONS, body + "}", bearer(Keys.COMPLETIONS_NOT_READY));
        assertOverflowed(whole);
        assertThat(unreadyHttp.json(whole).at("/object").stringValue()).isEqualTo("text_completion");
        assertThat(unreadyHttp.json(whole).at("/choices/0/text").stringValue()).isNotEmpty();

        HttpResponse<String> streamed = unreadyHttp.postTo(COMPLETIONS,
                body + ", \"stream\": true, \"stream_options\": {\"include_usage\": true}}",
                bearer(Keys.COMPLETIONS_NOT_READY));
        assertOverflowed(streamed);
        List<JsonNode> events = unreadyHttp.events(streamed);
        assertThat(events)
            .allSatisfy((event) -> assertThat(event.at("/object").stringValue()).isEqualTo("text_completion"));
        assertThat(streamedText(events)).isNotEmpty();
        assertThat(events.get(events.size() - 1).at("/usage/completion_tokens").intValue()).isPositive();

        // token ids travel as they are: the remote serves the same vocabulary
        HttpResponse<String> ids = unreadyHttp.postTo(COMPLETIONS, "{\"prompt\": [1, 2, 3], \"max_tokens\": 4}",
                bearer(Keys.COMPLETIONS_NOT_READY));
        assertOverflowed(ids);
        assertThat(unreadyHttp.json(ids).at("/usage/prompt_tokens").intValue()).isEqualTo(3);
    }

    @Test
    void completionsOverflowWhenThePromptIsOverTheLocalContextStreamedOrNot() {
        String body = completion(LONG_PROMPT, 8);
        HttpResponse<String> whole = shortPromptsHttp.postTo(COMPLETIONS, body + "}");
        assertOverflowed(whole);
        assertThat(shortPromptsHttp.json(whole).at("/usage/prompt_tokens").intValue()).isGreaterThan(MAX_PROMPT_TOKENS);

        HttpResponse<String> streamed = shortPromptsHttp.postTo(COMPLETIONS, body + ", \"stream\": true}");
        assertOverflowed(streamed);
        assertThat(streamedText(shortPromptsHttp.events(streamed))).isNotEmpty();

        // a prompt that fits stays local
        HttpResponse<String> fits = shortPromptsHttp.postTo(COMPLETIONS, completion("x", 4) + "}");
        assertThat(fits.statusCode()).as(fits.body()).isEqualTo(200);
        assertThat(fits.headers().firstValue(Backends.HEADER)).hasValue(Backends.LOCAL);
    }

    /**
     * A request with a field only the local engine honours stays local: here it gets the
     * local refusal.
     */
    @Test
    void completionsWithALocalOnlyFieldDoNotOverflow() {
        HttpResponse<String> logprobs = unreadyHttp.postTo(COMPLETIONS,
                completion("def add(a, b):", 4) + ", \"logprobs\": 1}", bearer(Keys.COMPLETIONS_LOCAL_ONLY));
        assertThat(logprobs.statusCode()).as(logprobs.body()).isEqualTo(503);
        assertThat(unreadyHttp.json(logprobs).at("/error/code").stringValue()).isEqualTo("models_failed");

        HttpResponse<String> named = unreadyHttp.postTo(COMPLETIONS, "{\"model\": \"" + REMOTE_MODEL + "\", "
                + completion("def add(a, b):", 4).substring(1) + ", \"top_k\": 5}",
                bearer(Keys.COMPLETIONS_LOCAL_ONLY));
        assertThat(named.statusCode()).as(named.body()).isEqualTo(400);
        assertThat(unreadyHttp.json(named).at("/error/param").stringValue()).isEqualTo("top_k");
        assertThat(unreadyHttp.json(named).at("/error/message").stringValue()).contains("leave model out");
    }

    @Test
    void overflowedCompletionsCountAgainstTheCallersTokensPerMinute() {
        String body = completion(LONG_PROMPT, 16) + "}";
        assertOverflowed(unreadyHttp.postTo(COMPLETIONS, body, bearer(Keys.COMPLETIONS_TOKENS)));
        assertTokensPerMinuteSpent(unreadyHttp.postTo(COMPLETIONS, body, bearer(Keys.COMPLETIONS_TOKENS)));
    }

    /** Without stream_options.include_usage: the gateway asks the remote for it. */
    @Test
    void streamedOverflowedCompletionsCountAgainstTheCallersTokensPerMinute() {
        String body = completion(LONG_PROMPT, 16) + ", \"stream\": true}";
        HttpResponse<String> streamed = unreadyHttp.postTo(COMPLETIONS, body, bearer(Keys.COMPLETIONS_STREAM_TOKENS));
        assertOverflowed(streamed);
        assertThat(unreadyHttp.events(streamed)).noneMatch((event) -> event.has("usage"));
        assertTokensPerMinuteSpent(unreadyHttp.postTo(COMPLETIONS, body, bearer(Keys.COMPLETIONS_STREAM_TOKENS)));
    }

    @Test
    void completionsNamingTheRemoteModelCountAgainstTheCallersTokensPerMinute() {
        String body = "{\"model\": \"" + REMOTE_MODEL + "\", " + completion(LONG_PROMPT, 16).substring(1)
                + ", \"stream\": true}";
        HttpResponse<String> first = unreadyHttp.postTo(COMPLETIONS, body, bearer(Keys.COMPLETIONS_REMOTE_TOKENS));
        assertOverflowed(first);
        assertThat(first.headers().firstValue("x-ratelimit-remaining-tokens")).isPresent();
        assertTokensPerMinuteSpent(unreadyHttp.postTo(COMPLETIONS, body, bearer(Keys.COMPLETIONS_REMOTE_TOKENS)));
    }

    private static String completion(String prompt, int maxTokens) {
        return "{\"prompt\": \"" + prompt + "\", \"max_tokens\": " + maxTokens;
    }

    private static String streamedText(List<JsonNode> events) {
        StringBuilder text = new StringBuilder();
        events.forEach((event) -> text.append(event.at("/choices/0/text").asString("")));
        return text.toString();
    }

    private static String chat(String content, int maxTokens) {
        return "{\"messages\": [{\"role\": \"user\", \"content\": \"" + content + "\"}], \"max_tokens\": " + maxTokens;
    }

    private static String[] bearer(String key) {
        return new String[] { "Authorization", "Bearer " + key };
    }

    /** A 200 from the remote: said in the header and in the body, named by its model. */
    private static void assertOverflowed(HttpResponse<String> response) {
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.headers().firstValue(Backends.HEADER)).hasValue(Backends.OVERFLOW);
        boolean streamed = response.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream");
        List<JsonNode> bodies = streamed ? unreadyHttp.events(response) : List.of(unreadyHttp.json(response));
        assertThat(bodies).allSatisfy((body) -> assertThat(body.at("/model").stringValue()).isEqualTo(REMOTE_MODEL));
        assertThat(bodies).anySatisfy(
                (body) -> assertThat(body.at("/speculation/backend").asString("")).isEqualTo(Backends.OVERFLOW));
    }

    private static void assertTokensPerMinuteSpent(HttpResponse<String> response) {
        assertThat(response.statusCode()).as(response.body()).isEqualTo(429);
        JsonNode error = unreadyHttp.json(response).get("error");
        assertThat(error.get("code").stringValue()).isEqualTo(RateLimitExceededException.CODE);
        assertThat(error.get("message").stringValue()).contains("tokens per minute (TPM)");
    }

    private static String streamedChat(List<JsonNode> events) {
        StringBuilder text = new StringBuilder();
        events.forEach((event) -> text.append(event.at("/choices/0/delta/content").asString("")));
        return text.toString();
    }

    /** The unready gateway's API keys: one per test, each its own tokens per minute. */
    private static final class Keys {

        static final String CHAT_NOT_READY = "sk-chat-not-ready-0123456789abcdef";

        static final String CHAT_TOKENS = "sk-chat-tokens-0123456789abcdef";

        static final String CHAT_STREAM_TOKENS = "sk-chat-stream-tokens-0123456789abcdef";

        static final String CHAT_REMOTE_TOKENS = "sk-chat-remote-tokens-0123456789abcdef";

        static final String COMPLETIONS_NOT_READY = "sk-completions-not-ready-0123456789abcdef";

        static final String COMPLETIONS_LOCAL_ONLY = "sk-completions-local-only-0123456789abcdef";

        static final String COMPLETIONS_TOKENS = "sk-completions-tokens-0123456789abcdef";

        static final String COMPLETIONS_STREAM_TOKENS = "sk-completions-stream-tokens-0123456789abcdef";

        static final String COMPLETIONS_REMOTE_TOKENS = "sk-completions-remote-tokens-0123456789abcdef";

        static final List<String> ALL = List.of(CHAT_NOT_READY, CHAT_TOKENS, CHAT_STREAM_TOKENS, CHAT_REMOTE_TOKENS,
                COMPLETIONS_NOT_READY, COMPLETIONS_LOCAL_ONLY, COMPLETIONS_TOKENS, COMPLETIONS_STREAM_TOKENS,
                COMPLETIONS_REMOTE_TOKENS);

    }

}
