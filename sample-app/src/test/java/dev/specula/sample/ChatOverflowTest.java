package dev.specula.sample;

import java.time.Duration;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import dev.specula.chat.PromptTokenLimitException;
import dev.specula.engine.ContextLengthExceededException;
import dev.specula.engine.KvCapacityExceededException;
import dev.specula.request.InvalidRequestException;
import dev.specula.serving.ModelsNotReadyException;
import dev.specula.serving.ServiceBusyException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Which requests may overflow: those the remote can answer as asked. A request that asks
 * how its tokens were made ({@code speculation.provenance}) stays local, and naming the
 * remote model with it is refused by name.
 */
class ChatOverflowTest {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    /** Neither call here reaches the remote: there is none. */
    private final ChatOverflow overflow = new ChatOverflow(null, CircuitBreaker.ofDefaults("overflow-test"), "remote",
            Duration.ofSeconds(5));

    @Test
    void aRequestAskingForProvenanceNeverOverflows() {
        ServiceBusyException busy = new ServiceBusyException(1);

        assertThat(overflow.takes(busy, body("{\"speculation\": {\"policy\": \"fixed\"}}"))).isTrue();
        assertThat(overflow.takes(busy, body("{\"speculation\": {\"provenance\": false}}"))).isTrue();
        assertThat(overflow.takes(busy, body("{\"speculation\": {\"provenance\": true}}"))).isFalse();
    }

    @Test
    void aFullEngineModelsNotReadyAndPromptsOverTheLocalContextPromptLimitOrKvOverflowCallersMistakesDoNot() {
        JsonNode plain = body("{\"messages\": []}");

        assertThat(overflow.takes(new ServiceBusyException(1), plain)).isTrue();
        assertThat(overflow.takes(new ModelsNotReadyException("loading", null, false), plain)).isTrue();
        assertThat(overflow.takes(new ContextLengthExceededException(2000, 100, 2048, "target"), plain)).isTrue();
        // over the model's context length, or over specula.gateway.max-prompt-tokens
        assertThat(overflow.takes(new PromptTokenLimitException(3000, true, 2048, true), plain)).isTrue();
        assertThat(overflow.takes(new PromptTokenLimitException(600, true, 512, false), plain)).isTrue();
        assertThat(overflow.takes(new KvCapacityExceededException(2000, 100, 1024, 2_150_400, 1_000_000), plain))
            .isTrue();
        // the remote would refuse these too: they are the caller's
        assertThat(overflow.takes(new InvalidRequestException("temperature", "must be >= 0"), plain)).isFalse();
        assertThat(overflow.takes(new IllegalStateException("a bug"), plain)).isFalse();
    }

    @Test
    void provenanceForTheRemoteModelIsRefusedByName() {
        assertThatThrownBy(() -> overflow.checkPortable(body("{\"speculation\": {\"provenance\": true}}")))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("speculation.provenance"));
    }

    private static JsonNode body(String json) {
        return JSON.readTree(json);
    }

}
