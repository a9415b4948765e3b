package dev.specula.engine;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.model.ModelLoadException;
import dev.specula.model.RuntimeOptions;
import dev.specula.policy.FixedPolicy;
import dev.specula.proposer.ProposerKind;
import dev.specula.request.InvalidRequestException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A GRIFFIN feature head that cannot serve its target is refused at load, naming the fix;
 * a request for the proposer {@code griffin} without a head is refused before any work,
 * naming the field.
 */
class FeatureHeadChecksTest {

    private static DecoderModel hiddenTarget;

    private static DecoderModel head;

    @BeforeAll
    static void load() {
        hiddenTarget = Fixtures.load("llama-hidden-packed");
        head = Fixtures.load("griffin-random");
    }

    @AfterAll
    static void close() {
        hiddenTarget.close();
        head.close();
    }

    @Test
    void aTargetWithoutLastHiddenStateIsRefused() {
        try (DecoderModel noHidden = Fixtures.load("llama-packed")) {
            assertThatThrownBy(() -> ModelPair.withHead(noHidden, null, head)).isInstanceOf(ModelLoadException.class)
                .hasMessageContaining("last_hidden_state")
                .hasMessageContaining("--with-hidden");
        }
    }

    @Test
    void aHeadOfAnotherWidthIsRefused() {
        try (DecoderModel wide = DecoderModel.load(Fixtures.embeddedPair().target(), RuntimeOptions.defaults())) {
            assertThatThrownBy(() -> ModelPair.withHead(wide, null, head)).isInstanceOf(ModelLoadException.class)
                .hasMessageContaining("width 64")
                .hasMessageContaining("width 384");
        }
    }

    @Test
    void aDecoderIsNoHeadAndAHeadIsNoTargetNorDraft() {
        try (DecoderModel draft = Fixtures.load("llama-draft")) {
            assertThatThrownBy(() -> ModelPair.withHead(hiddenTarget, null, draft))
                .isInstanceOf(ModelLoadException.class)
                .hasMessageContaining("is not a feature head")
                .hasMessageContaining("train-griffin");
        }
        assertThatThrownBy(() -> new ModelPair(head, null)).isInstanceOf(ModelLoadException.class)
            .hasMessageContaining("is a feature head");
        assertThatThrownBy(() -> new ModelPair(hiddenTarget, head)).isInstanceOf(ModelLoadException.class)
            .hasMessageContaining("is a feature head");
    }

    @Test
    void theProposerGriffinNeedsAHead() {
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(hiddenTarget, null));
        assertThatThrownBy(() -> decoder.generate(GenerationRequest.builder(new int[] { 5, 17, 42 })
            .maxNewTokens(4)
            .policy(() -> new FixedPolicy(3))
            .proposer(ProposerKind.GRIFFIN)
            .build()))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("proposer"))
            .hasMessageContaining("--griffin");
    }

    @Test
    void withAHeadAndNoDraftTheHeadProposesByDefault() {
        SpeculativeDecoder decoder = new SpeculativeDecoder(ModelPair.withHead(hiddenTarget, null, head));
        GenerationResult result = decoder.generate(GenerationRequest.builder(new int[] { 5, 17, 42 })
            .maxNewTokens(12)
            .ignoreEos(true)
            .policy(() -> new FixedPolicy(3))
            .build());
        assertThat(result.proposer()).isEqualTo("griffin");
        assertThat(result.stats().drafted()).isPositive();
    }

}
