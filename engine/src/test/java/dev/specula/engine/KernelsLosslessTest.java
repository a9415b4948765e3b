package dev.specula.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import dev.specula.Fixtures;
import dev.specula.kv.KvStore;
import dev.specula.model.DecoderModel;
import dev.specula.model.MatMulKernels;
import dev.specula.model.RuntimeOptions;
import dev.specula.policy.LdlpPolicy;
import dev.specula.policy.PolicyParameters;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.SpeculationPolicy;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Greedy speculative decoding is lossless whoever runs the float32 MatMuls: ONNX
 * Runtime's kernels and Specula's ({@code specula.runtime.kernels}; the default, auto,
 * runs Specula's where the library loads, so the other suites run on them here). Every γ
 * with an agreeing and a disagreeing draft, every policy, padded and unpadded batches, on
 * the llama fixture's mask and packed graphs. The engine's build on Linux x86-64 carries
 * the library: there Specula's must load.
 */
class KernelsLosslessTest {

    private static final int NEW_TOKENS = 32;

    private static List<int[]> prompts(DecoderModel model) {
        List<int[]> prompts = new ArrayList<>();
        for (String text : Fixtures.codePrompts(12)) {
            prompts.add(model.tokenizer().encode(text, true));
        }
        return prompts;
    }

    private static DecoderModel load(String fixture, MatMulKernels kernels) {
        DecoderModel model = DecoderModel.load(Fixtures.model(fixture), RuntimeOptions.defaults().withKernels(kernels));
        assertThat(model.kernelsInUse()).as(fixture).isEqualTo(kernels);
        return model;
    }

    @ParameterizedTest
    @EnumSource(value = MatMulKernels.class, names = { "ONNX_RUNTIME", "SPECULA" })
    void everyGammaPolicyDraftAndBatchGivesTheTargetsGreedyOutput(MatMulKernels kernels) throws Exception {
        try (DecoderModel target = load("llama", kernels);
                DecoderModel packedTarget = load("llama-packed", kernels);
                DecoderModel agreeing = load("llama", kernels);
                DecoderModel disagreeing = load("llama-draft", kernels)) {
            List<int[]> prompts = prompts(target);
            assertThat(LosslessChecks.rowDependence(target, prompts)).isLessThan(1e-4f);
            GenerationStats same = LosslessChecks.compareAll(target, agreeing, prompts, NEW_TOKENS);
            assertThat(same.accepted()).isEqualTo(same.drafted());
            GenerationStats rejected = LosslessChecks.compareAll(target, disagreeing, prompts, NEW_TOKENS);
            assertThat(rejected.rounds()).isGreaterThan(rejected.accepted());
            LosslessChecks.compareAll(packedTarget, disagreeing, prompts, NEW_TOKENS);

            SpeculativeDecoder plainDecoder = new SpeculativeDecoder(new ModelPair(target, null));
            SpeculativeDecoder speculativeDecoder = new SpeculativeDecoder(new ModelPair(target, disagreeing));
            for (String name : SpeculationPolicies.names()) {
                if (name.equals(LdlpPolicy.NAME)) {
                    continue; // needs an ldlp.onnx trained for the target
                }
                Supplier<SpeculationPolicy> policy = SpeculationPolicies.factory(name,
                        PolicyParameters.ofGamma(4).withModelDirectory(target.files().directory()));
                for (int p = 0; p < 4; p++) {
                    GenerationResult speculative = speculativeDecoder.generate(
                            GenerationRequest.builder(prompts.get(p)).maxNewTokens(NEW_TOKENS).policy(policy).build());
                    assertThat(speculative.tokenIds()).as("prompt %d, policy %s", p, name)
                        .containsExactly(LosslessChecks.plain(plainDecoder, prompts.get(p), NEW_TOKENS).tokenIds());
                }
            }
            LosslessChecks.assertBatchMatches(target, agreeing, KvStore.Layout.PADDED, prompts, NEW_TOKENS);
            LosslessChecks.assertBatchMatches(packedTarget, agreeing, KvStore.Layout.PACKED, prompts, NEW_TOKENS);
        }
    }

}
