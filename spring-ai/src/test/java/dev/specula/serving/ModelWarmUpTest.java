package dev.specula.serving;

import java.time.Duration;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.engine.ModelPair;
import dev.specula.proposer.ProposerKind;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@code specula.model.warm-up} on the embedded pair: plain and speculative generations
 * alternate until the budget has passed, batched or not, under the configured policy and
 * proposer.
 */
class ModelWarmUpTest {

    private static ModelPair pair;

    @BeforeAll
    static void load() {
        pair = Fixtures.embeddedModels();
    }

    @AfterAll
    static void close() {
        pair.close();
    }

    @Test
    void alternatesPlainAndSpeculativeGenerationsUntilTheBudgetHasPassed() {
        Duration budget = Duration.ofMillis(400);
        for (BatchingSettings batching : new BatchingSettings[] { BatchingSettings.disabled(),
                BatchingSettings.defaults() }) {
            ModelWarmUp.Report report = ModelWarmUp.run(pair, PolicySettings.defaults(), batching, budget);
            assertThat(report.plainGenerations()).as("plain").isPositive();
            assertThat(report.speculativeGenerations()).as("speculative").isPositive();
            assertThat(report.plainGenerations() - report.speculativeGenerations()).isBetween(0, 1);
            assertThat(report.tokens()).isGreaterThanOrEqualTo(report.generations());
            assertThat(report.nanos()).isGreaterThanOrEqualTo(budget.toNanos());
        }
    }

    @Test
    void runsTheConfiguredPolicyAndProposer() {
        PolicySettings goodputLookup = PolicySettings.builder().name("goodput").proposer(ProposerKind.NGRAM).build();
        ModelWarmUp.Report report = ModelWarmUp.run(pair, goodputLookup, BatchingSettings.disabled(),
                Duration.ofMillis(200));
        assertThat(report.speculativeGenerations()).isPositive();
    }

    @Test
    void aZeroBudgetDecodesNothingAndANegativeOneIsRefused() {
        assertThat(ModelWarmUp.run(pair, PolicySettings.defaults(), BatchingSettings.disabled(), Duration.ZERO))
            .isEqualTo(new ModelWarmUp.Report(0, 0, 0, 0));
        assertThatThrownBy(() -> ModelWarmUp.run(pair, PolicySettings.defaults(), BatchingSettings.disabled(),
                Duration.ofMillis(-1)))
            .isInstanceOf(IllegalArgumentException.class)
            .hasMessageContaining("budget");
    }

}
