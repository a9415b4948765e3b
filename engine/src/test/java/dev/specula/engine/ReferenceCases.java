package dev.specula.engine;

import com.fasterxml.jackson.databind.JsonNode;

import dev.specula.Fixtures;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A fixture's reference cases (reference.json: prompt ids and transformers' greedy ids)
 * decoded through the engine.
 */
final class ReferenceCases {

    private ReferenceCases() {
    }

    /**
     * Plain and fixed-γ greedy decoding of every reference case of fixture {@code name},
     * for each γ of {@code gammas}, give its greedy ids; returns the draft tokens
     * rejected.
     */
    static long decodeToReference(ModelPair models, String name, int... gammas) {
        JsonNode reference = Fixtures.json(Fixtures.model(name).resolve("reference.json"));
        SpeculativeDecoder decoder = new SpeculativeDecoder(models);
        long rejected = 0;
        for (JsonNode testCase : reference.path("cases")) {
            int[] promptIds = Fixtures.ints(testCase.path("prompt_ids"));
            int[] expected = Fixtures.ints(testCase.path("greedy_ids"));
            GenerationResult plain = decoder.generate(GenerationRequest.builder(promptIds)
                .maxNewTokens(expected.length)
                .ignoreEos(true)
                .policy(PlainPolicy::new)
                .build());
            assertThat(plain.tokenIds()).as("%s: plain greedy ids of %s", name, testCase.path("prompt"))
                .containsExactly(expected);
            for (int gamma : gammas) {
                GenerationResult speculative = decoder.generate(GenerationRequest.builder(promptIds)
                    .maxNewTokens(expected.length)
                    .ignoreEos(true)
                    .policy(() -> new FixedPolicy(gamma))
                    .build());
                assertThat(speculative.tokenIds())
                    .as("%s: speculative (gamma %d) ids of %s", name, gamma, testCase.path("prompt"))
                    .containsExactly(expected);
                rejected += speculative.stats().drafted() - speculative.stats().accepted();
            }
        }
        return rejected;
    }

}
