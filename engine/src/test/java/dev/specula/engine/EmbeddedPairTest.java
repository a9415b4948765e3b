package dev.specula.engine;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.RoundContext;
import dev.specula.policy.RoundOutcome;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.tokenizer.ChatMessage;
import dev.specula.tokenizer.PromptEncoder;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Graph variants: a packed (attention-bias) export, the embedded target's hidden-state
 * output, the chat path.
 */
class EmbeddedPairTest {

    private static final String PROMPT = "def parse_header(line):\n    ";

    @Test
    void packedExportDecodesLikeTheMaskedOne() {
        // the llama fixture exported --packed: rollback holes are expressed in the
        // attention bias instead of the mask
        try (DecoderModel masked = Fixtures.load("llama");
                DecoderModel packed = Fixtures.load("llama-packed");
                DecoderModel draft = Fixtures.load("llama-draft")) {
            assertThat(packed.signature().hasAttentionBias()).isTrue();
            assertThat(packed.signature().hasAttentionMask()).isFalse();
            int[] prompt = { 5, 17, 42, 99, 7, 300, 12 };
            GenerationResult reference = new SpeculativeDecoder(new ModelPair(masked, null))
                .generate(GenerationRequest.builder(prompt)
                    .maxNewTokens(40)
                    .ignoreEos(true)
                    .policy(PlainPolicy::new)
                    .build());
            GenerationResult viaBias = new SpeculativeDecoder(new ModelPair(packed, draft))
                .generate(GenerationRequest.builder(prompt)
                    .maxNewTokens(40)
                    .ignoreEos(true)
                    .policy(() -> new FixedPolicy(4))
                    .build());
            assertThat(viaBias.tokenIds()).containsExactly(reference.tokenIds());
            // rollbacks happened
            assertThat(viaBias.stats().drafted()).isGreaterThan(viaBias.stats().accepted());
        }
    }

    @Test
    void policiesThatAskGetTheTargetsHiddenState() {
        List<float[]> seen = new ArrayList<>();
        SpeculationPolicy recording = new SpeculationPolicy() {
            @Override
            public String name() {
                return "recording";
            }

            @Override
            public boolean usesTargetHiddenState() {
                return true;
            }

            @Override
            public int draftLength(RoundContext context) {
                seen.add(context.targetHiddenState());
                return 3;
            }

            @Override
            public void observe(RoundOutcome outcome) {
                // records in draftLength
            }
        };
        try (ModelPair models = Fixtures.embeddedModels()) {
            assertThat(models.target().signature().hasHiddenState()).isTrue();
            int[] prompt = models.target().tokenizer().encode(PROMPT, true);
            new SpeculativeDecoder(models)
                .generate(GenerationRequest.builder(prompt).maxNewTokens(12).policy(() -> recording).build());
            // nothing verified yet before the first round
            assertThat(seen.get(0)).isNull();
            assertThat(seen.subList(1, seen.size())).isNotEmpty()
                .allSatisfy((hidden) -> assertThat(hidden).hasSize(models.target().signature().hiddenSize()));
        }
    }

    @Test
    void chatPromptsRenderAndGenerate() {
        try (ModelPair models = Fixtures.embeddedModels()) {
            DecoderModel target = models.target();
            PromptEncoder encoder = new PromptEncoder(target.tokenizer(), target.chatTemplate(), "target");
            String rendered = encoder.render(List.of(ChatMessage.user("Return the larger of two numbers")));
            assertThat(rendered).contains("Return the larger of two numbers");
            GenerationResult result = new SpeculativeDecoder(models).generate(GenerationRequest
                .builder(encoder.chat(List.of(ChatMessage.user("Return the larger of two numbers"))))
                .maxNewTokens(24)
                .policy(() -> new FixedPolicy(4))
                .build());
            assertThat(result.tokenIds()).isNotEmpty();
            assertThat(result.stats().drafted()).isPositive();
        }
    }

}
