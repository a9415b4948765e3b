package dev.specula.engine;

import java.util.List;

import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PolicyParameters;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.proposer.ProposerKind;
import dev.specula.request.InvalidRequestException;
import dev.specula.sampling.SamplingParams;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A caller's mistake is an {@link InvalidRequestException} naming the field (servers
 * answer it 400); a programming error stays an {@link IllegalArgumentException} (servers
 * answer it 500).
 */
class CallerMistakesTest {

    @Test
    void badSamplingValuesNameTheField() {
        assertField(() -> new SamplingParams(-1, 0, 1, null), "temperature", "temperature must be >= 0");
        assertField(() -> new SamplingParams(Double.NaN, 0, 1, null), "temperature", "temperature must be >= 0");
        assertField(() -> new SamplingParams(0.7, -2, 1, null), "topK", "top_k must be >= 0");
        assertField(() -> new SamplingParams(0.7, 0, 1.5, null), "topP", "top_p must be in (0, 1]");
    }

    @Test
    void badMaxTokensAndStopStringsNameTheField() {
        assertField(() -> GenerationRequest.builder(new int[] { 1 }).maxNewTokens(0).build(), "maxNewTokens",
                "max new tokens must be >= 1");
        assertField(() -> GenerationRequest.builder(new int[] { 1 }).stopStrings(List.of("\n", "")).build(),
                "stopStrings", "must not be empty");
        assertField(() -> GenerationRequest.builder(new int[0]).build(), "promptIds", "at least one token");
    }

    @Test
    void anUnknownPolicyAndATooLongPromptAreCallerMistakes() {
        assertField(() -> SpeculationPolicies.factory("warp-drive", PolicyParameters.ofGamma(4)), "policy",
                "warp-drive");
        Object tooLong = new ContextLengthExceededException(100, 30, 120, "tiny");
        assertThat(tooLong).isInstanceOfSatisfying(InvalidRequestException.class, (ex) -> {
            assertThat(ex.getField()).isEqualTo("messages");
            assertThat(ex.getCode()).isEqualTo("context_length_exceeded");
        });
    }

    @Test
    void askingForTheDraftModelWithoutOneIsRefusedBeforeAnyWork() throws Exception {
        try (DecoderModel target = DecoderModel.load(Fixtures.embeddedPair().target(), RuntimeOptions.defaults());
                Engine engine = new Engine(new ModelPair(target, null), Engine.Settings.defaults())) {
            for (ProposerKind proposer : List.of(ProposerKind.MODEL, ProposerKind.MODEL_PLUS_NGRAM)) {
                GenerationRequest request = GenerationRequest.builder(new int[] { 1, 2, 3 })
                    .policy(() -> new FixedPolicy(4))
                    .proposer(proposer)
                    .build();
                assertField(() -> engine.generate(request), "proposer", "needs a draft model");
                // refused on the caller's thread, not by a failed future
                assertField(() -> engine.submit(request), "proposer", "needs a draft model");
            }
        }
    }

    @Test
    void aPredictionNeedsASpeculativePolicyAndItsOwnProposer() throws Exception {
        try (DecoderModel target = DecoderModel.load(Fixtures.embeddedPair().target(), RuntimeOptions.defaults());
                Engine engine = new Engine(new ModelPair(target, null), Engine.Settings.defaults())) {
            GenerationRequest.Builder predicted = GenerationRequest.builder(new int[] { 1, 2, 3 })
                .prediction(new int[] { 4, 5 });
            assertField(() -> engine.generate(predicted.build()), "prediction", "the plain policy drafts nothing");
            assertField(
                    () -> engine
                        .generate(predicted.policy(() -> new FixedPolicy(4)).proposer(ProposerKind.NGRAM).build()),
                    "proposer", "only the proposer 'prediction' drafts");
            assertField(() -> engine.submit(GenerationRequest.builder(new int[] { 1, 2, 3 })
                .policy(() -> new FixedPolicy(4))
                .proposer(ProposerKind.PREDICTION)
                .build()), "prediction", "the request has none");
            assertField(() -> GenerationRequest.builder(new int[] { 1 }).prediction(new int[0]).build(), "prediction",
                    "at least one token");
        }
    }

    @Test
    void programmingErrorsStayIllegalArguments() {
        assertThatThrownBy(() -> GenerationRequest.builder(new int[] { 1 }).sampling(null).build())
            .isInstanceOf(IllegalArgumentException.class)
            .isNotInstanceOf(InvalidRequestException.class);
    }

    private static void assertField(org.assertj.core.api.ThrowableAssert.ThrowingCallable call, String field,
            String message) {
        assertThatThrownBy(call)
            .isInstanceOfSatisfying(InvalidRequestException.class, (ex) -> assertThat(ex.getField()).isEqualTo(field))
            .hasMessageContaining(message);
    }

}
