package dev.specula.sample;

import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import tools.jackson.databind.JsonNode;

import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code "speculation": {"provenance": true}} on the gateway over the embedded pair: each
 * streamed chunk tells how the tokens of its text were made, a whole answer all of them;
 * requests that do not ask get the chunks they always got. The playground's page and its
 * options are served. The context is GatewayIntegrationTest's (same properties: no
 * response cache, no goodput switch).
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
        properties = { "specula.cache.response.enabled=false", "specula.chat.options.max-tokens=64",
                "specula.resilience.goodput.enabled=false" })
class GatewayProvenanceTest {

    private static final Set<String> KINDS = Set.of("accepted", "corrected", "bonus", "plain");

    private static final String MESSAGES = "\"messages\": [{\"role\": \"user\", \"content\": \"def fibonacci(n):\"}]";

    @LocalServerPort
    private int port;

    @Autowired
    private ModelPairHandle models;

    private GatewayHttp http;

    @BeforeEach
    void setUp() {
        models.await();
        http = new GatewayHttp(port);
    }

    @Test
    void eachStreamedChunkTellsHowItsTokensWereMade() {
        HttpResponse<String> response = http.post("""
                {%s, "max_tokens": 48, "temperature": 0, "stream": true, "stream_options": {"include_usage": true},
                 "speculation": {"policy": "fixed", "gamma": 4, "provenance": true}}""".formatted(MESSAGES));

        assertThat(response.statusCode()).isEqualTo(200);
        List<JsonNode> events = http.events(response);
        StringBuilder content = new StringBuilder();
        List<JsonNode> tokens = new ArrayList<>();
        JsonNode figures = null;
        JsonNode usage = null;
        for (JsonNode event : events) {
            if (event.path("usage").isObject()) {
                usage = event.get("usage");
                continue;
            }
            JsonNode choice = event.get("choices").get(0);
            if (!choice.path("finish_reason").isNull()) {
                figures = event.get("speculation");
                assertThat(figures.has("tokens")).as("the finish chunk has no text, so no tokens").isFalse();
                assertThat(choice.get("finish_reason").asString()).isEqualTo("length");
                continue;
            }
            if (choice.get("delta").has("role")) {
                assertThat(event.has("speculation")).as("the role chunk").isFalse();
                continue;
            }
            String text = choice.get("delta").get("content").asString();
            StringBuilder pieces = new StringBuilder();
            for (JsonNode token : event.get("speculation").get("tokens")) {
                assertThat(token.get("kind").asString()).isIn(KINDS);
                assertThat(token.get("round").asInt()).isPositive();
                assertThat(token.get("gamma").asInt()).isBetween(0, 4);
                assertThat(token.get("id").isInt()).isTrue();
                pieces.append(token.get("text").asString());
                tokens.add(token);
            }
            assertThat(pieces.toString()).as("the chunk's pieces spell its content").isEqualTo(text);
            content.append(text);
        }
        assertThat(figures).isNotNull();
        assertThat(usage).isNotNull();
        List<JsonNode> perToken = joined(tokens);
        assertThat(perToken).extracting((token) -> token.get("index").asInt())
            .containsExactlyElementsOf(IntStream.range(0, usage.get("completion_tokens").asInt()).boxed().toList());
        assertThat(String.join("", perToken.stream().map((token) -> token.get("text").asString()).toList()))
            .isEqualTo(content.toString());
        // max_tokens ended it: every draft the target accepted is in the answer
        assertThat(perToken.stream().filter((token) -> token.get("kind").asString().equals("accepted")).count())
            .isEqualTo(figures.get("accepted").asLong())
            .isPositive();
        assertRoundsAreDraftsThenTheTargetsToken(perToken);
    }

    @Test
    void aStreamThatDoesNotAskHasNoTokens() {
        HttpResponse<String> response = http.post("""
                {%s, "max_tokens": 16, "temperature": 0, "stream": true,
                 "speculation": {"policy": "fixed", "gamma": 4}}""".formatted(MESSAGES));

        List<JsonNode> events = http.events(response);
        for (JsonNode event : events.subList(0, events.size() - 1)) {
            assertThat(event.propertyNames()).containsExactly("id", "object", "created", "model", "choices");
        }
        assertThat(events.get(events.size() - 1).get("speculation").has("tokens")).isFalse();
    }

    @Test
    void aWholeAnswerCarriesOneEntryPerToken() {
        HttpResponse<String> response = http.post("""
                {%s, "max_tokens": 32, "temperature": 0,
                 "speculation": {"policy": "fixed", "gamma": 3, "provenance": true}}""".formatted(MESSAGES));

        assertThat(response.statusCode()).isEqualTo(200);
        JsonNode body = http.json(response.body());
        List<JsonNode> tokens = new ArrayList<>();
        body.get("speculation").get("tokens").forEach(tokens::add);
        assertThat(tokens).extracting((token) -> token.get("index").asInt())
            .containsExactlyElementsOf(
                    IntStream.range(0, body.get("usage").get("completion_tokens").asInt()).boxed().toList());
        assertThat(String.join("", tokens.stream().map((token) -> token.get("text").asString()).toList()))
            .isEqualTo(body.get("choices").get(0).get("message").get("content").asString());
        assertRoundsAreDraftsThenTheTargetsToken(tokens);
    }

    @Test
    void plainDecodingMakesOnlyPlainTokens() {
        HttpResponse<String> response = http.post("""
                {%s, "max_tokens": 16, "temperature": 0, "stream": true,
                 "speculation": {"enabled": false, "provenance": true}}""".formatted(MESSAGES));

        List<JsonNode> tokens = new ArrayList<>();
        http.events(response)
            .stream()
            .filter((event) -> event.path("speculation").has("tokens"))
            .forEach((event) -> event.get("speculation").get("tokens").forEach(tokens::add));
        assertThat(tokens).isNotEmpty();
        assertThat(tokens).allSatisfy((token) -> {
            assertThat(token.get("kind").asString()).isEqualTo("plain");
            assertThat(token.get("gamma").asInt()).isZero();
        });
    }

    @Test
    void legacyCompletionsStreamTheirTokensToo() {
        HttpResponse<String> response = http.postTo("/v1/completions", """
                {"prompt": "def fibonacci(n):\\n", "max_tokens": 24, "temperature": 0, "stream": true,
                 "speculation": {"provenance": true}}""");

        assertThat(response.statusCode()).isEqualTo(200);
        int withTokens = 0;
        for (JsonNode event : http.events(response)) {
            if (event.path("speculation").has("tokens")) {
                withTokens++;
                StringBuilder pieces = new StringBuilder();
                event.get("speculation").get("tokens").forEach((token) -> pieces.append(token.get("text").asString()));
                assertThat(pieces.toString()).isEqualTo(event.get("choices").get(0).get("text").asString());
            }
        }
        assertThat(withTokens).isPositive();
    }

    @Test
    void servesThePlaygroundAndWhatItsSelectorsOffer() {
        HttpResponse<String> page = http.get("/");
        assertThat(page.statusCode()).isEqualTo(200);
        assertThat(page.body()).contains("Specula playground", "playground.js");
        assertThat(http.get("/playground.js").body()).contains("provenance: true");

        JsonNode options = http.json(http.get("/playground/options").body());
        assertThat(options.get("model").asString()).isEqualTo("specula-tiny");
        assertThat(options.get("policies").valueStream().map(JsonNode::asString)).contains("fixed", "plain", "goodput");
        // the embedded pair has a draft and a GRIFFIN feature head; the page sends no
        // prediction
        assertThat(options.get("proposers").valueStream().map(JsonNode::asString)).contains("model", "ngram", "griffin")
            .doesNotContain("prediction");
    }

    /** The pieces of each token joined, in order. */
    private static List<JsonNode> joined(List<JsonNode> pieces) {
        List<JsonNode> tokens = new ArrayList<>();
        for (JsonNode piece : pieces) {
            int last = tokens.size() - 1;
            if (last >= 0 && tokens.get(last).get("index").asInt() == piece.get("index").asInt()) {
                tools.jackson.databind.node.ObjectNode joined = (tools.jackson.databind.node.ObjectNode) tokens
                    .get(last)
                    .deepCopy();
                joined.put("text", joined.get("text").asString() + piece.get("text").asString());
                tokens.set(last, joined);
            }
            else {
                tokens.add(piece);
            }
        }
        return tokens;
    }

    /**
     * Each round is its accepted drafts, then one token of the target (corrected, bonus
     * or plain); rounds are numbered from 1 up.
     */
    private static void assertRoundsAreDraftsThenTheTargetsToken(List<JsonNode> tokens) {
        Set<Integer> rounds = new HashSet<>();
        for (int i = 0; i < tokens.size(); i++) {
            JsonNode token = tokens.get(i);
            int round = token.get("round").asInt();
            boolean lastOfRound = i == tokens.size() - 1 || tokens.get(i + 1).get("round").asInt() != round;
            assertThat(token.get("kind").asString().equals("accepted")).as("token %d: %s", i, token)
                .isEqualTo(!lastOfRound);
            rounds.add(round);
        }
        assertThat(rounds)
            .containsExactlyInAnyOrderElementsOf(IntStream.rangeClosed(1, rounds.size()).boxed().toList());
    }

}
