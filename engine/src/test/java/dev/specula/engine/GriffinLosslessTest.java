package dev.specula.engine;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.kv.KvStore;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.PolicyParameters;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.proposer.ProposerKind;
import dev.specula.tokenizer.PromptEncoder;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The GRIFFIN feature head (proposer {@code griffin}) never changes greedy output: the
 * embedded target with the head trained on it, over code prompts, alone and in batches,
 * with long prompts fed in chunks (the head reads the target's feature of every prompt
 * position, gathered over the chunks).
 */
class GriffinLosslessTest {

    private static final int NEW_TOKENS = 48;

    private static DecoderModel target;

    private static DecoderModel packedTarget;

    private static DecoderModel head;

    private static DecoderModel draft;

    private static List<int[]> prompts;

    @BeforeAll
    static void load() throws Exception {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        target = DecoderModel.load(pair.target(), RuntimeOptions.defaults());
        packedTarget = DecoderModel.load(pair.targetPacked(), RuntimeOptions.defaults());
        head = DecoderModel.load(pair.head().orElseThrow(), RuntimeOptions.defaults());
        draft = DecoderModel.load(pair.draft(), RuntimeOptions.defaults());
        PromptEncoder encoder = new PromptEncoder(target.tokenizer(), target.chatTemplate(), "target");
        prompts = new ArrayList<>();
        for (String text : Fixtures.codePrompts(Integer.MAX_VALUE)) {
            prompts.add(encoder.text(text));
        }
    }

    @AfterAll
    static void close() {
        target.close();
        packedTarget.close();
        head.close();
        draft.close();
    }

    @Test
    void theHeadNeverChangesTheOutput() {
        SpeculativeDecoder plainDecoder = new SpeculativeDecoder(new ModelPair(target, null));
        // no draft model: griffin is the default proposer
        SpeculativeDecoder griffin = new SpeculativeDecoder(ModelPair.withHead(target, null, head));
        GenerationStats stats = new GenerationStats();
        for (int p = 0; p < 24; p++) {
            int[] prompt = prompts.get(p);
            GenerationResult plain = plainDecoder
                .generate(GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).policy(PlainPolicy::new).build());
            for (int gamma : new int[] { 1, 3, 6 }) {
                GenerationResult drafted = griffin.generate(GenerationRequest.builder(prompt)
                    .maxNewTokens(NEW_TOKENS)
                    .policy(() -> new FixedPolicy(gamma))
                    .build());
                assertThat(drafted.tokenIds()).as("prompt %d, γ = %d", p, gamma).containsExactly(plain.tokenIds());
                assertThat(drafted.proposer()).isEqualTo("griffin");
                stats.add(drafted.stats());
            }
        }
        // the trained head agrees with its target often: rounds accept several tokens
        assertThat(stats.meanAcceptedLength()).isGreaterThan(1.8);
        assertThat(stats.accepted()).isLessThan(stats.drafted());
    }

    @Test
    void everyPolicyWithTheHeadGivesTheTargetsOutput() {
        SpeculativeDecoder plainDecoder = new SpeculativeDecoder(new ModelPair(target, null));
        SpeculativeDecoder both = new SpeculativeDecoder(ModelPair.withHead(target, draft, head));
        for (String name : List.of("gammatune", "adaedl", "goodput", "confidence")) {
            GenerationStats stats = new GenerationStats();
            for (int p = 24; p < 32; p++) {
                int[] prompt = prompts.get(p);
                GenerationResult plain = plainDecoder.generate(
                        GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).policy(PlainPolicy::new).build());
                GenerationResult drafted = both.generate(GenerationRequest.builder(prompt)
                    .maxNewTokens(NEW_TOKENS)
                    .policy(SpeculationPolicies.factory(name, PolicyParameters.ofGamma(4)))
                    .proposer(ProposerKind.GRIFFIN)
                    .build());
                assertThat(drafted.tokenIds()).as("prompt %d, policy %s", p, name).containsExactly(plain.tokenIds());
                stats.add(drafted.stats());
            }
            assertThat(stats.accepted()).as("policy %s accepted", name).isPositive();
        }
    }

    @Test
    void longPromptsFedInChunksGiveTheHeadEveryFeature() {
        // chunks of 16 tokens: the first verification feeds the prompt in several
        // calls, and the head's first round reads all of their features
        try (DecoderModel chunked = DecoderModel.load(Fixtures.embeddedPair().target(),
                RuntimeOptions.defaults().withPrefillChunkTokens(16))) {
            SpeculativeDecoder plainDecoder = new SpeculativeDecoder(new ModelPair(chunked, null));
            SpeculativeDecoder griffin = new SpeculativeDecoder(ModelPair.withHead(chunked, null, head));
            SpeculativeDecoder unchunked = new SpeculativeDecoder(ModelPair.withHead(target, null, head));
            for (int p = 32; p < 40; p++) {
                // five prompts back to back: over a hundred tokens
                int[] prompt = java.util.stream.IntStream.range(p, p + 5)
                    .flatMap((i) -> java.util.Arrays.stream(prompts.get(i)))
                    .toArray();
                assertThat(prompt.length).isGreaterThan(64);
                GenerationResult plain = plainDecoder.generate(
                        GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).policy(PlainPolicy::new).build());
                GenerationRequest request = GenerationRequest.builder(prompt)
                    .maxNewTokens(NEW_TOKENS)
                    .policy(() -> new FixedPolicy(4))
                    .build();
                GenerationResult drafted = griffin.generate(request);
                assertThat(drafted.tokenIds()).as("prompt %d", p).containsExactly(plain.tokenIds());
                // the same features either way: the head drafts the same, so the rounds
                // match
                assertThat(drafted.stats().accepted()).as("prompt %d", p)
                    .isEqualTo(unchunked.generate(request).stats().accepted());
            }
        }
    }

    @Test
    void batchesMixingTheHeadTheDraftAndLookupsGiveEachRequestItsOwnOutput() {
        SpeculativeDecoder plainDecoder = new SpeculativeDecoder(new ModelPair(packedTarget, null));
        ProposerKind[] proposers = { ProposerKind.GRIFFIN, ProposerKind.MODEL, null, ProposerKind.NGRAM,
                ProposerKind.GRIFFIN };
        try (Engine engine = new Engine(ModelPair.withHead(packedTarget, draft, head),
                new Engine.Settings(8, 64, Duration.ofMillis(20), Duration.ofSeconds(30)))) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                ProposerKind proposer = proposers[i % proposers.length];
                int gamma = 3 + i % 3;
                futures.add(engine.submit(GenerationRequest.builder(prompts.get(i))
                    .maxNewTokens(24 + 8 * (i % 3))
                    .policy(proposer == null ? PlainPolicy::new : () -> new FixedPolicy(gamma))
                    .proposer(proposer)
                    .build()));
            }
            GenerationStats griffinStats = new GenerationStats();
            for (int i = 0; i < futures.size(); i++) {
                GenerationResult batched = futures.get(i).join();
                GenerationResult single = plainDecoder.generate(GenerationRequest.builder(prompts.get(i))
                    .maxNewTokens(24 + 8 * (i % 3))
                    .policy(PlainPolicy::new)
                    .build());
                assertThat(batched.tokenIds()).as("request %d", i).containsExactly(single.tokenIds());
                if (proposers[i % proposers.length] == ProposerKind.GRIFFIN) {
                    assertThat(batched.proposer()).isEqualTo("griffin");
                    griffinStats.add(batched.stats());
                }
            }
            assertThat(griffinStats.accepted()).as("the head's drafts were accepted in the batch").isPositive();
            assertThat(engine.layout()).contains(KvStore.Layout.PACKED);
        }
    }

}
