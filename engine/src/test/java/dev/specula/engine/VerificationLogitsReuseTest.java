package dev.specula.engine;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;

import ai.onnxruntime.OrtException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.ForwardingDecoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.models.tiny.TinyModels;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.ProposerKind;
import dev.specula.proposer.TreeShape;
import dev.specula.sampling.SamplingParams;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A sequence's verifications write the target's logits into one array of its own, round
 * after round, instead of a new (γ + 1) × vocabulary array a call: megabytes at a real
 * vocabulary, and in a fresh JVM each new array lands on memory the heap has not touched
 * yet. Chains, trees and sampling keep the target's output.
 */
class VerificationLogitsReuseTest {

    private static final int NEW_TOKENS = 48;

    private static DecoderModel target;

    private static DecoderModel draft;

    private static int[] prompt;

    @BeforeAll
    static void load() throws Exception {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        target = DecoderModel.load(pair.targetPacked(), RuntimeOptions.defaults());
        draft = DecoderModel.load(pair.draftPacked(), RuntimeOptions.defaults());
        prompt = target.tokenizer().encode("def parse_header(line):\n    name, _, value = line.partition(':')\n", true);
    }

    @AfterAll
    static void close() {
        target.close();
        draft.close();
    }

    @Test
    void chainsTreesAndLookupVerifyIntoOneArrayAndKeepTheTargetsOutput() {
        int[] expected = generate(new SpeculativeDecoder(new ModelPair(target, null)), PlainPolicy::new, null, null,
                SamplingParams.GREEDY)
            .tokenIds();
        record Case(String name, ProposerKind proposer, TreeShape tree) {
        }
        for (Case c : List.of(new Case("model chain", null, null), new Case("model tree", null, new TreeShape(2, 6)),
                new Case("suffix lookup", ProposerKind.SUFFIX, null))) {
            Recording steps = new Recording(target);
            GenerationResult result = generate(new SpeculativeDecoder(new ModelPair(target, steps, draft)),
                    () -> new FixedPolicy(4), c.proposer(), c.tree(), SamplingParams.GREEDY);
            assertThat(result.tokenIds()).as(c.name()).containsExactly(expected);
            assertThat(steps.verifications).as("%s: verifications after the first", c.name()).isGreaterThan(4);
            assertThat(steps.intoGiven).as("%s: every verification but the first writes into an array given", c.name())
                .isGreaterThanOrEqualTo(steps.verifications - 1);
            assertThat(steps.arrays).as("%s: one array, grown at most once", c.name()).hasSizeBetween(1, 2);
        }
    }

    @Test
    void sampledRoundsReuseTheArrayToo() {
        SamplingParams sampling = new SamplingParams(0.8, 0, 1, 11L);
        GenerationResult once = generate(new SpeculativeDecoder(new ModelPair(target, draft)), () -> new FixedPolicy(4),
                null, null, sampling);
        Recording steps = new Recording(target);
        GenerationResult again = generate(new SpeculativeDecoder(new ModelPair(target, steps, draft)),
                () -> new FixedPolicy(4), null, null, sampling);
        assertThat(again.tokenIds()).as("the same seed, the same tokens").containsExactly(once.tokenIds());
        assertThat(steps.intoGiven).isGreaterThanOrEqualTo(steps.verifications - 1);
        assertThat(steps.arrays).hasSizeBetween(1, 2);
    }

    @Test
    void aChainsDraftStepsWriteIntoOneArrayToo() {
        Recording draftSteps = new Recording(draft, 1);
        GenerationResult result = generate(new SpeculativeDecoder(new ModelPair(target, target, draftSteps)),
                () -> new FixedPolicy(4), null, null, SamplingParams.GREEDY);
        int[] expected = generate(new SpeculativeDecoder(new ModelPair(target, null)), PlainPolicy::new, null, null,
                SamplingParams.GREEDY)
            .tokenIds();
        assertThat(result.tokenIds()).containsExactly(expected);
        assertThat(draftSteps.verifications).as("draft calls").isGreaterThan(8);
        assertThat(draftSteps.intoGiven).isGreaterThanOrEqualTo(draftSteps.verifications - 1);
        assertThat(draftSteps.arrays).hasSize(1);
    }

    private static GenerationResult generate(SpeculativeDecoder decoder, Supplier<? extends SpeculationPolicy> policy,
            ProposerKind proposer, TreeShape tree, SamplingParams sampling) {
        return decoder.generate(GenerationRequest.builder(prompt)
            .maxNewTokens(NEW_TOKENS)
            .ignoreEos(true)
            .policy(policy)
            .proposer(proposer)
            .tree(tree)
            .sampling(sampling)
            .build());
    }

    /** The target's steps, recording the arrays verifications were given. */
    private static final class Recording extends ForwardingDecoder {

        int verifications;

        int intoGiven;

        final Set<float[]> arrays = Collections.newSetFromMap(new IdentityHashMap<>());

        private final int minRows;

        /** Records the calls of two rows or more: a target's verifications. */
        Recording(DecoderModel delegate) {
            this(delegate, 2);
        }

        Recording(DecoderModel delegate, int minRows) {
            super(delegate);
            this.minRows = minRows;
        }

        @Override
        public List<StepOutput> forward(List<StepInput> batch) throws OrtException {
            List<StepOutput> outputs = new ArrayList<>(super.forward(batch));
            for (int i = 0; i < batch.size(); i++) {
                StepInput input = batch.get(i);
                if (input.logitsRows() >= minRows) {
                    verifications++;
                    if (input.logitsInto() != null) {
                        intoGiven++;
                        if (input.logitsInto().length >= input.logitsRows() * logitsWidth()) {
                            assertThat(outputs.get(i).logits()).isSameAs(input.logitsInto());
                        }
                    }
                    arrays.add(outputs.get(i).logits());
                }
            }
            return outputs;
        }

    }

}
