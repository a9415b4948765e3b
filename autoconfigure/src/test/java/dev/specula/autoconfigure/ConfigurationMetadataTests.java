package dev.specula.autoconfigure;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import dev.specula.policy.SpeculationPolicies;
import dev.specula.proposer.ProposerKind;
import dev.specula.serving.CircuitBreakerSettings;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The metadata the configuration processor generated (IDE completion and docs): every
 * {@code specula.*} property described per Spring Boot's conventions, and the policy
 * hints in step with the policies.
 */
class ConfigurationMetadataTests {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void everyPropertyIsDescribedByBootConventions() throws IOException {
        JsonNode metadata = metadata("META-INF/spring-configuration-metadata.json");
        List<String> names = new ArrayList<>();
        for (JsonNode property : metadata.path("properties")) {
            String name = property.path("name").asText();
            if (!name.startsWith("specula.")) {
                continue;
            }
            names.add(name);
            String description = property.path("description").asText("");
            assertThat(description).as(name).isNotBlank().doesNotStartWith("The ").doesNotStartWith("A ").endsWith(".");
            if ("java.lang.Boolean".equals(property.path("type").asText())) {
                assertThat(description).as(name).startsWith("Whether");
            }
        }
        assertThat(names).contains("specula.target.location", "specula.draft.location", "specula.draft.enabled",
                "specula.model-name", "specula.load-mode", "specula.runtime.provider", "specula.runtime.device-id",
                "specula.runtime.intra-op-threads", "specula.runtime.spinning", "specula.policy.name",
                "specula.policy.gamma", "specula.policy.options", "specula.chat.options.temperature",
                "specula.chat.options.max-tokens", "specula.cache.response.enabled",
                "specula.cache.response.maximum-size", "specula.cache.response.time-to-live",
                "specula.cache.prefix.size", "specula.resilience.round-timeout",
                "specula.resilience.max-concurrent-generations", "specula.resilience.goodput.enabled",
                "specula.resilience.goodput.sliding-window-size", "specula.resilience.goodput.minimum-number-of-calls",
                "specula.resilience.goodput.failure-rate-threshold",
                "specula.resilience.goodput.wait-duration-in-open-state",
                "specula.resilience.draft-breaker.failure-rate-threshold",
                "specula.resilience.draft-breaker.sliding-window-size",
                "specula.resilience.draft-breaker.minimum-number-of-calls",
                "specula.resilience.draft-breaker.wait-duration-in-open-state", "specula.chat.stream-threads",
                "specula.batching.enabled", "specula.batching.max-batch-size", "specula.batching.queue-capacity",
                "specula.batching.max-wait", "specula.batching.path")
            .doesNotContain("specula.target.enabled", "specula.cache.enabled", "specula.scheduler.batching",
                    "specula.scheduler.prefix-cache-size", "specula.resilience.sliding-window-size");
        assertThat(names).contains("specula.runtime.prefill-chunk-tokens", "specula.runtime.kv-in-place",
                "specula.warm-up");
        assertThat(names).contains("specula.griffin.location", "specula.griffin.enabled")
            .doesNotContain("specula.griffin.file");
    }

    @Test
    void breakerDefaultsInTheMetadataAreTheServingLayers() throws IOException {
        JsonNode metadata = metadata("META-INF/spring-configuration-metadata.json");
        Map<String, String> defaults = new HashMap<>();
        for (JsonNode property : metadata.path("properties")) {
            defaults.put(property.path("name").asText(), property.path("defaultValue").asText(null));
        }
        for (String prefix : List.of("specula.resilience.draft-breaker.", "specula.resilience.goodput.")) {
            CircuitBreakerSettings expected = prefix.contains("draft") ? CircuitBreakerSettings.DRAFT_DEFAULTS
                    : CircuitBreakerSettings.GOODPUT_DEFAULTS;
            assertThat(Float.parseFloat(defaults.get(prefix + "failure-rate-threshold"))).as(prefix)
                .isEqualTo(expected.failureRateThreshold());
            assertThat(defaults.get(prefix + "sliding-window-size")).as(prefix)
                .isEqualTo(String.valueOf(expected.slidingWindowSize()));
            assertThat(defaults.get(prefix + "minimum-number-of-calls")).as(prefix)
                .isEqualTo(String.valueOf(expected.minimumNumberOfCalls()));
            assertThat(Duration
                .ofSeconds(Long.parseLong(defaults.get(prefix + "wait-duration-in-open-state").replace("s", ""))))
                .as(prefix)
                .isEqualTo(expected.waitDurationInOpenState());
        }
    }

    @Test
    void hintsListEveryKnownPolicyAndProposer() throws IOException {
        JsonNode metadata = metadata("META-INF/additional-spring-configuration-metadata.json");
        List<String> hinted = new ArrayList<>();
        List<String> hints = new ArrayList<>();
        for (JsonNode hint : metadata.path("hints")) {
            hints.add(hint.path("name").asText());
            if ("specula.policy.name".equals(hint.path("name").asText())) {
                hint.path("values").forEach((value) -> hinted.add(value.path("value").asText()));
            }
        }
        assertThat(hinted).containsExactlyInAnyOrderElementsOf(SpeculationPolicies.names());
        // every proposer a property may name (prediction comes with a request's
        // prediction)
        List<String> proposers = new ArrayList<>();
        for (JsonNode hint : metadata.path("hints")) {
            if ("specula.policy.proposer".equals(hint.path("name").asText())) {
                hint.path("values").forEach((value) -> proposers.add(value.path("value").asText()));
            }
        }
        assertThat(proposers).containsExactlyInAnyOrderElementsOf(java.util.Arrays.stream(ProposerKind.values())
            .filter((kind) -> kind != ProposerKind.PREDICTION)
            .map(ProposerKind::id)
            .toList());
        assertThat(hints).contains("spring.ai.model.chat", "specula.runtime.provider", "specula.load-mode",
                "specula.batching.path");
    }

    /**
     * Every group of the metadata is one that a value given to it is refused for
     * (PropertyGroups), and nothing else.
     */
    @Test
    void everyGroupIsCheckedForAValueGivenToIt() throws IOException {
        java.util.Set<String> groups = new java.util.TreeSet<>();
        for (JsonNode group : metadata("META-INF/spring-configuration-metadata.json").path("groups")) {
            if (group.path("name").asText().startsWith("specula")) {
                groups.add(group.path("name").asText());
            }
        }
        assertThat(new java.util.TreeSet<>(PropertyGroups.names())).isEqualTo(groups);
    }

    /**
     * This module's copy of a metadata file (other jars on the test class path have their
     * own).
     */
    private static JsonNode metadata(String resource) throws IOException {
        for (URL url : Collections.list(ConfigurationMetadataTests.class.getClassLoader().getResources(resource))) {
            try (InputStream in = url.openStream()) {
                JsonNode root = JSON.readTree(in);
                if (root.toString().contains("\"specula.")) {
                    return root;
                }
            }
        }
        throw new IllegalStateException(resource + " of this module is not on the class path");
    }

}
