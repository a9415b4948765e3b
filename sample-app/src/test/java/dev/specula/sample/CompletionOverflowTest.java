package dev.specula.sample;

import java.time.Duration;
import java.util.HashSet;
import java.util.Set;

import com.openai.core.ObjectMappers;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import dev.specula.request.InvalidRequestException;
import dev.specula.serving.ServiceBusyException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * What a legacy completion sends to the overflow remote, and which requests stay local:
 * every field a client may send is carried, or keeps the request local; none is dropped
 * unsaid.
 */
class CompletionOverflowTest {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    /**
     * Fields the remote request carries, or that need not travel: {@code stream} and
     * {@code stream_options} (the gateway streams from the remote itself), {@code n} and
     * {@code best_of} (1, the remote's default too), {@code speculation} (steers the
     * local decoding only; its provenance keeps the request local), {@code user} (ignored
     * locally too).
     */
    private static final Set<String> CARRIED = Set.of("model", "prompt", "suffix", "echo", "temperature", "top_p",
            "max_tokens", "stop", "seed", "frequency_penalty", "presence_penalty", "stream", "stream_options", "n",
            "best_of", "speculation", "user");

    /** Neither call here reaches the remote: there is none. */
    private final CompletionOverflow overflow = new CompletionOverflow(null,
            CircuitBreaker.ofDefaults("completion-overflow-test"), "remote", Duration.ofSeconds(5));

    @Test
    void everyFieldAClientMaySendIsCarriedOrKeepsTheRequestLocal() {
        Set<String> accepted = new HashSet<>(CompletionRequest.SUPPORTED);
        accepted.addAll(CompletionRequest.IGNORED);
        Set<String> decided = new HashSet<>(CARRIED);
        decided.addAll(CompletionOverflow.LOCAL_ONLY);
        assertThat(decided).as("add a new request field to CARRIED (and params) or to LOCAL_ONLY")
            .containsExactlyInAnyOrderElementsOf(accepted);

        ServiceBusyException busy = new ServiceBusyException(1);
        for (String field : CompletionOverflow.LOCAL_ONLY) {
            JsonNode body = body("{\"prompt\": \"x\", \"" + field + "\": 1}");
            assertThat(overflow.takes(busy, body)).as(field).isFalse();
            assertThatThrownBy(() -> overflow.checkPortable(body)).isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo(field));
        }
        assertThat(overflow.takes(busy, body("{\"prompt\": \"x\", \"speculation\": {\"provenance\": true}}")))
            .isFalse();
        assertThat(overflow.takes(busy, body("{\"prompt\": \"x\", \"speculation\": {\"policy\": \"fixed\"}}")))
            .isTrue();
    }

    @Test
    void theRemoteRequestCarriesThePromptAndThePortableOptions() throws Exception {
        CompletionRequest request = CompletionRequest.read(body("""
                {"model": "remote", "prompt": "def add(a, b):", "suffix": "\\n\\nprint(add(1, 2))", "echo": true,
                 "temperature": 0.2, "top_p": 0.9, "max_tokens": 40, "stop": ["\\n\\n"], "seed": 7,
                 "frequency_penalty": 0.5, "presence_penalty": -0.5, "stream": true}"""), "remote");

        JsonNode sent = sent(request, 40, true);
        assertThat(sent.get("model").stringValue()).isEqualTo("remote");
        assertThat(sent.get("prompt").stringValue()).isEqualTo("def add(a, b):");
        assertThat(sent.get("suffix").stringValue()).isEqualTo("\n\nprint(add(1, 2))");
        assertThat(sent.get("echo").booleanValue()).isTrue();
        assertThat(sent.get("temperature").doubleValue()).isEqualTo(0.2);
        assertThat(sent.get("top_p").doubleValue()).isEqualTo(0.9);
        assertThat(sent.get("max_tokens").intValue()).isEqualTo(40);
        assertThat(sent.get("stop").get(0).stringValue()).isEqualTo("\n\n");
        assertThat(sent.get("seed").intValue()).isEqualTo(7);
        assertThat(sent.get("frequency_penalty").doubleValue()).isEqualTo(0.5);
        assertThat(sent.get("presence_penalty").doubleValue()).isEqualTo(-0.5);
        // asked of the remote even when the client did not: it settles the tokens per
        // minute
        assertThat(sent.at("/stream_options/include_usage").booleanValue()).isTrue();
    }

    @Test
    void tokenIdsTravelAsTheyAreAndWhatTheRequestLeftOutStaysOut() throws Exception {
        CompletionRequest request = CompletionRequest.read(body("{\"prompt\": [[1, 2, 3]]}"), "remote");

        JsonNode sent = sent(request, 256, false);
        assertThat(sent.get("prompt").toString()).isEqualTo("[1,2,3]");
        // the local default max_tokens, not the legacy API's 16
        assertThat(sent.get("max_tokens").intValue()).isEqualTo(256);
        assertThat(sent.propertyNames()).containsExactlyInAnyOrder("model", "prompt", "max_tokens");
    }

    /** The body openai-java sends for {@code request}, as JSON. */
    private JsonNode sent(CompletionRequest request, int maxTokens, boolean stream) throws Exception {
        String body = ObjectMappers.jsonMapper()
            .writeValueAsString(overflow.params(request, maxTokens, stream)._body());
        return JSON.readTree(body);
    }

    private static JsonNode body(String json) {
        return JSON.readTree(json);
    }

}
