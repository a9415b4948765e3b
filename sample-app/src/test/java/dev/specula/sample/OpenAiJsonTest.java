package dev.specula.sample;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.metadata.ChatResponseMetadata;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.model.Generation;

import dev.specula.chat.SpeculaChatModel;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The gateway's {@code speculation} object says which policy was asked for, which ran and
 * why they differ.
 */
class OpenAiJsonTest {

    @Test
    void speculationCarriesTheRequestedAndTheEffectivePolicyAndTheReason() {
        assertThat(OpenAiJson.speculation(response("fixed", "fixed", null))).containsEntry("requested_policy", "fixed")
            .containsEntry("policy", "fixed")
            .doesNotContainKey("reason");
        assertThat(OpenAiJson.speculation(response("fixed", "plain", "probe")))
            .containsEntry("requested_policy", "fixed")
            .containsEntry("policy", "plain")
            .containsEntry("reason", "probe");
        assertThat(OpenAiJson.speculation(response("fixed", "plain", "breaker-open"))).containsEntry("reason",
                "breaker-open");
        Map<String, Object> cached = OpenAiJson.speculation(response("fixed", "cache", "cache"));
        assertThat(cached).containsEntry("policy", "cache").containsEntry("reason", "cache");
        assertThat(List.copyOf(cached.keySet())).startsWith("requested_policy", "policy", "reason");
    }

    private static ChatResponse response(String requested, String effective, String reason) {
        ChatResponseMetadata.Builder metadata = ChatResponseMetadata.builder()
            .keyValue(SpeculaChatModel.METADATA_REQUESTED_POLICY, requested)
            .keyValue(SpeculaChatModel.METADATA_POLICY, effective)
            .keyValue(SpeculaChatModel.METADATA_DRAFTED, 0L);
        if (reason != null) {
            metadata.keyValue(SpeculaChatModel.METADATA_POLICY_REASON, reason);
        }
        return new ChatResponse(List.of(new Generation(new AssistantMessage("x"))), metadata.build());
    }

}
