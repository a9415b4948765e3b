package dev.specula.engine;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.PolicyParameters;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.ProposerKind;
import dev.specula.proposer.TreeShape;
import dev.specula.request.InvalidRequestException;
import dev.specula.tokenizer.PromptEncoder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Draft trees never change a greedy output: the embedded pair's packed graphs, 20 code
 * prompts × 48 new tokens, trees of width 2, 3 and 4 (nodes auto, 8, 16) under fixed and
 * goodput policies, alone and in unpadded batches beside chains, each equal to the packed
 * target decoding alone. Trees the models cannot draft or verify are refused by name.
 */
class DraftTreeLosslessTest {

    private static final int NEW_TOKENS = 48;

    private static final List<TreeShape> SHAPES = List.of(new TreeShape(2, 0), new TreeShape(3, 8),
            new TreeShape(4, 16));

    private static DecoderModel target;

    private static DecoderModel draft;

    private static List<int[]> prompts;

    private static SpeculativeDecoder plain;

    @BeforeAll
    static void load() throws Exception {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        target = DecoderModel.load(pair.targetPacked(), RuntimeOptions.defaults());
        draft = DecoderModel.load(pair.draftPacked(), RuntimeOptions.defaults());
        plain = new SpeculativeDecoder(new ModelPair(target, null));
        PromptEncoder encoder = new PromptEncoder(target.tokenizer(), target.chatTemplate(), "target");
        prompts = new ArrayList<>();
        for (String text : Fixtures.codePrompts(20)) {
            prompts.add(encoder.text(text));
        }
    }

    @AfterAll
    static void close() {
        target.close();
        draft.close();
    }

    private static int[] plainOutput(int[] prompt) {
        return plain
            .generate(GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).policy(PlainPolicy::new).build())
            .tokenIds();
    }

    @Test
    void treesOfEveryShapeAndPolicyGiveTheTargetsGreedyOutput() {
        assertThat(target.supportsTrees()).isTrue();
        assertThat(draft.supportsTrees()).isTrue();
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, draft));
        List<Supplier<? extends SpeculationPolicy>> policies = List.of(() -> new FixedPolicy(4),
                SpeculationPolicies.factory("goodput", PolicyParameters.ofGamma(4)));
        GenerationStats[] byShape = new GenerationStats[SHAPES.size()];
        for (int s = 0; s < SHAPES.size(); s++) {
            byShape[s] = new GenerationStats();
        }
        for (int p = 0; p < prompts.size(); p++) {
            int[] prompt = prompts.get(p);
            int[] expected = plainOutput(prompt);
            for (int s = 0; s < SHAPES.size(); s++) {
                TreeShape shape = SHAPES.get(s);
                int policyIndex = (p + s) % policies.size();
                Supplier<? extends SpeculationPolicy> policy = policies.get(policyIndex);
                GenerationResult tree = decoder.generate(
                        GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).policy(policy).tree(shape).build());
                assertThat(tree.tokenIds()).as("prompt %d, %s", p, shape).containsExactly(expected);
                assertThat(tree.fallback()).as("prompt %d, %s: no fallback", p, shape).isNull();
                GenerationStats stats = tree.stats();
                byShape[s].add(stats);
                if (policyIndex == 0) {
                    // fixed:4 drafts every round; goodput may find from its timings that
                    // no round pays for a draft on a busy machine, and then grows no tree
                    assertThat(stats.draftCalls()).as("prompt %d, %s: fixed:4 drafts", p, shape).isPositive();
                }
                if (!shape.autoNodes() && stats.draftCalls() > 0) {
                    // a fixed shape grows a tree every round the draft model drafts
                    assertThat(stats.treeRounds()).as("prompt %d, %s: trees verified", p, shape).isPositive();
                    assertThat(stats.meanTreeNodes()).isLessThanOrEqualTo(shape.nodes());
                }
            }
        }
        // auto drafts chains while branches do not pay, and probes a tree one round in 16
        for (int s = 0; s < SHAPES.size(); s++) {
            assertThat(byShape[s].treeRounds()).as("%s: trees verified", SHAPES.get(s)).isPositive();
        }
    }

    @Test
    void treesWiderThanOneAcceptMoreThanAChainOfTheSameDepth() {
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, draft));
        GenerationStats chain = new GenerationStats();
        GenerationStats tree = new GenerationStats();
        for (int[] prompt : prompts) {
            chain.add(decoder.generate(
                    GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).policy(() -> new FixedPolicy(4)).build())
                .stats());
            tree.add(decoder
                .generate(GenerationRequest.builder(prompt)
                    .maxNewTokens(NEW_TOKENS)
                    .policy(() -> new FixedPolicy(4))
                    .tree(new TreeShape(3, 12))
                    .build())
                .stats());
        }
        // a tree holds the chain's own path (its best-first expansion follows each
        // level's likeliest token) and more
        assertThat(tree.meanAcceptedLength()).isGreaterThan(chain.meanAcceptedLength());
    }

    @Test
    void treesShareUnpaddedBatchesWithChainsAndLookups() {
        try (Engine batch = new Engine(new ModelPair(target, draft),
                new Engine.Settings(8, 64, Duration.ofMillis(20), Duration.ofSeconds(30)))) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                int gamma = 3 + i % 3;
                GenerationRequest.Builder request = GenerationRequest.builder(prompts.get(i))
                    .maxNewTokens(24 + 8 * (i % 3))
                    .policy(i % 4 == 3 ? PlainPolicy::new : () -> new FixedPolicy(gamma));
                if (i % 4 == 1) {
                    request.proposer(ProposerKind.NGRAM);
                }
                else if (i % 4 != 3) {
                    request.tree(SHAPES.get(i % SHAPES.size()));
                }
                futures.add(batch.submit(request.build()));
            }
            GenerationStats stats = new GenerationStats();
            for (int i = 0; i < futures.size(); i++) {
                GenerationResult batched = futures.get(i).join();
                GenerationResult alone = plain.generate(GenerationRequest.builder(prompts.get(i))
                    .maxNewTokens(24 + 8 * (i % 3))
                    .policy(PlainPolicy::new)
                    .build());
                assertThat(batched.tokenIds()).as("request %d", i).containsExactly(alone.tokenIds());
                stats.add(batched.stats());
            }
            assertThat(stats.treeRounds()).as("trees ran in the batch").isPositive();
        }
    }

    @Test
    void aTreeTheModelsCannotDraftOrVerifyIsRefusedByName() {
        SpeculativeDecoder packed = new SpeculativeDecoder(new ModelPair(target, draft));
        GenerationRequest lookupTree = GenerationRequest.builder(prompts.get(0))
            .policy(() -> new FixedPolicy(3))
            .proposer(ProposerKind.NGRAM)
            .tree(TreeShape.DEFAULT)
            .build();
        assertThatThrownBy(() -> packed.generate(lookupTree)).isInstanceOf(InvalidRequestException.class)
            .hasMessageContaining("'ngram'")
            .extracting((ex) -> ((InvalidRequestException) ex).getField())
            .isEqualTo("draftShape");

        try (ModelPair masks = ModelPair.load(Fixtures.embeddedPair().target(), Fixtures.embeddedPair().draft(),
                RuntimeOptions.defaults())) {
            GenerationRequest tree = GenerationRequest.builder(prompts.get(0))
                .policy(() -> new FixedPolicy(3))
                .tree(TreeShape.DEFAULT)
                .build();
            assertThatThrownBy(() -> new SpeculativeDecoder(masks).generate(tree))
                .isInstanceOf(InvalidRequestException.class)
                .hasMessageContaining("model_packed.onnx");
        }
    }

}
