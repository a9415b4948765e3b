package dev.specula.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
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
import dev.specula.policy.RoundContext;
import dev.specula.policy.RoundOutcome;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.PromptLookup;
import dev.specula.proposer.ProposerKind;
import dev.specula.proposer.SuffixLookup;
import dev.specula.proposer.TokenProposer;
import dev.specula.tokenizer.PromptEncoder;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Greedy speculative decoding is lossless: for 52 code prompts × 48 new tokens × γ ∈ {1,
 * 2, 4, 8} the output equals plain target decoding token for token, with the embedded
 * draft (which mostly agrees) and with a random-init draft (which mostly disagrees, so
 * nearly every round rolls back).
 */
class LosslessGreedyTest {

    private static final int NEW_TOKENS = 48;

    private static final int[] GAMMAS = { 1, 2, 4, 8 };

    private static DecoderModel target;

    private static DecoderModel trainedDraft;

    private static DecoderModel randomDraft;

    private static List<int[]> prompts;

    @BeforeAll
    static void load() throws Exception {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        target = DecoderModel.load(pair.target(), RuntimeOptions.defaults());
        trainedDraft = DecoderModel.load(pair.draft(), RuntimeOptions.defaults());
        randomDraft = Fixtures.load("random-draft");
        PromptEncoder encoder = new PromptEncoder(target.tokenizer(), target.chatTemplate(), "target");
        prompts = new ArrayList<>();
        for (String text : Fixtures.codePrompts(Integer.MAX_VALUE)) {
            prompts.add(encoder.text(text));
        }
        assertThat(prompts).hasSizeGreaterThanOrEqualTo(50);
    }

    @AfterAll
    static void close() {
        target.close();
        trainedDraft.close();
        randomDraft.close();
    }

    @Test
    void trainedDraftNeverChangesTheOutput() {
        GenerationStats stats = compareAll(trainedDraft);
        // the embedded draft agrees often: most rounds accept several tokens
        assertThat(stats.meanAcceptedLength()).isGreaterThan(1.8);
    }

    @Test
    void disagreeingDraftNeverChangesTheOutput() {
        GenerationStats stats = compareAll(randomDraft);
        // a random draft is mostly rejected, so the rollback path runs in nearly every
        // round
        assertThat(stats.acceptanceRate()).isLessThan(0.3);
        assertThat(stats.rounds()).isGreaterThan(stats.accepted());
    }

    @Test
    void everyPolicyGivesTheTargetsGreedyOutput() {
        ModelPair pair = new ModelPair(target, trainedDraft);
        SpeculativeDecoder plainDecoder = new SpeculativeDecoder(new ModelPair(target, null));
        SpeculativeDecoder speculativeDecoder = new SpeculativeDecoder(pair);
        for (String name : SpeculationPolicies.names()) {
            Supplier<SpeculationPolicy> policy = SpeculationPolicies.factory(name,
                    PolicyParameters.ofGamma(4).withModelDirectory(target.files().directory()));
            GenerationStats stats = new GenerationStats();
            for (int p = 0; p < 20; p++) {
                int[] prompt = prompts.get(p);
                GenerationResult plain = plainDecoder.generate(
                        GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).policy(PlainPolicy::new).build());
                GenerationResult speculative = speculativeDecoder
                    .generate(GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).policy(policy).build());
                assertThat(speculative.tokenIds()).as("prompt %d, policy %s", p, name)
                    .containsExactly(plain.tokenIds());
                stats.add(speculative.stats());
            }
            if (!name.equals(PlainPolicy.NAME)) {
                assertThat(stats.drafted()).as("policy %s drafted", name).isPositive();
            }
        }
    }

    @Test
    void promptLookupWithoutADraftNeverChangesTheOutput() {
        // --target alone: the default proposer is prompt lookup
        assertLookupNeverChangesTheOutput(null, "ngram");
    }

    @Test
    void suffixLookupNeverChangesTheOutput() {
        assertLookupNeverChangesTheOutput(ProposerKind.SUFFIX, "suffix");
    }

    private static void assertLookupNeverChangesTheOutput(ProposerKind proposer, String expectedProposer) {
        SpeculativeDecoder plainDecoder = new SpeculativeDecoder(new ModelPair(target, null));
        GenerationStats stats = new GenerationStats();
        for (int p = 0; p < prompts.size(); p++) {
            int[] prompt = prompts.get(p);
            GenerationResult plain = plainDecoder
                .generate(GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).policy(PlainPolicy::new).build());
            for (int gamma : new int[] { 2, 8 }) {
                GenerationResult lookedUp = plainDecoder.generate(GenerationRequest.builder(prompt)
                    .maxNewTokens(NEW_TOKENS)
                    .policy(() -> new FixedPolicy(gamma))
                    .proposer(proposer)
                    .build());
                assertThat(lookedUp.tokenIds()).as("prompt %d, γ = %d, %s", p, gamma, expectedProposer)
                    .containsExactly(plain.tokenIds());
                assertThat(lookedUp.proposer()).isEqualTo(expectedProposer);
                stats.add(lookedUp.stats());
            }
        }
        // code repeats itself: lookups are proposed, and some are right
        assertThat(stats.drafted()).isPositive();
        assertThat(stats.accepted()).isPositive();
        assertThat(stats.accepted()).isLessThan(stats.drafted());
    }

    @Test
    void draftModelAndPromptLookupTogetherNeverChangeTheOutput() {
        SpeculativeDecoder plainDecoder = new SpeculativeDecoder(new ModelPair(target, null));
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, trainedDraft));
        for (ProposerKind proposer : List.of(ProposerKind.MODEL, ProposerKind.NGRAM, ProposerKind.MODEL_PLUS_NGRAM,
                ProposerKind.SUFFIX, ProposerKind.MODEL_PLUS_SUFFIX)) {
            GenerationStats stats = new GenerationStats();
            for (int p = 0; p < 20; p++) {
                int[] prompt = prompts.get(p);
                GenerationResult plain = plainDecoder.generate(
                        GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).policy(PlainPolicy::new).build());
                GenerationResult speculative = decoder.generate(GenerationRequest.builder(prompt)
                    .maxNewTokens(NEW_TOKENS)
                    .policy(() -> new FixedPolicy(4))
                    .proposer(proposer)
                    .build());
                assertThat(speculative.tokenIds()).as("prompt %d, proposer %s", p, proposer)
                    .containsExactly(plain.tokenIds());
                assertThat(speculative.proposer()).isEqualTo(proposer.id());
                stats.add(speculative.stats());
            }
            assertThat(stats.accepted()).as("proposer %s accepted", proposer).isPositive();
        }
    }

    @Test
    void aModelAndLookupRoundTellsThePolicyWhichOfThemProposes() {
        // the policy chooses γ knowing what proposes: the lookup's id when it matches the
        // tokens committed so far (its drafts cost nothing), else the draft model's
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, trainedDraft));
        for (ProposerKind proposer : List.of(ProposerKind.MODEL_PLUS_NGRAM, ProposerKind.MODEL_PLUS_SUFFIX)) {
            String lookupId = proposer == ProposerKind.MODEL_PLUS_NGRAM ? "ngram" : "suffix";
            java.util.Set<String> heard = new java.util.HashSet<>();
            for (int p = 0; p < 8; p++) {
                int[] prompt = prompts.get(p);
                List<RoundContext> contexts = new ArrayList<>();
                SpeculationPolicy recording = new SpeculationPolicy() {
                    @Override
                    public String name() {
                        return "recording";
                    }

                    @Override
                    public int draftLength(RoundContext context) {
                        contexts.add(context);
                        return 4;
                    }

                    @Override
                    public void observe(RoundOutcome outcome) {
                        // records in draftLength
                    }
                };
                GenerationResult result = decoder.generate(GenerationRequest.builder(prompt)
                    .maxNewTokens(NEW_TOKENS)
                    .policy(() -> recording)
                    .proposer(proposer)
                    .build());
                for (RoundContext context : contexts) {
                    int[] committed = java.util.stream.IntStream
                        .concat(Arrays.stream(prompt), Arrays.stream(result.tokenIds(), 0, context.generated()))
                        .toArray();
                    TokenProposer lookup = proposer == ProposerKind.MODEL_PLUS_NGRAM ? PromptLookup.DEFAULT
                            : new SuffixLookup();
                    boolean matches = lookup.propose(committed, committed.length, 4, new int[4]) > 0;
                    assertThat(context.proposer()).as("prompt %d, %s after %d tokens", p, proposer, context.generated())
                        .isEqualTo(matches ? lookupId : "model");
                    heard.add(context.proposer());
                }
            }
            assertThat(heard).as("%s", proposer).containsExactlyInAnyOrder(lookupId, "model");
        }
    }

    @Test
    void anEditedPredictionNeverChangesTheOutput() {
        // Predicted Outputs: the target's own answer with a replaced token, an inserted
        // one
        // and a deleted one is the prediction; the output stays the target's
        SpeculativeDecoder plainDecoder = new SpeculativeDecoder(new ModelPair(target, null));
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, trainedDraft));
        GenerationStats stats = new GenerationStats();
        int generated = 0;
        for (int p = 0; p < 20; p++) {
            int[] prompt = prompts.get(p);
            GenerationResult plain = plainDecoder
                .generate(GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).policy(PlainPolicy::new).build());
            int[] answer = plain.tokenIds();
            java.util.List<Integer> edited = new ArrayList<>();
            for (int i = 0; i < answer.length; i++) {
                if (i == 30) {
                    continue;
                }
                edited.add(i == 10 ? (answer[i] + 1) % target.logitsWidth() : answer[i]);
                if (i == 20) {
                    edited.add(7);
                }
            }
            int[] prediction = edited.stream().mapToInt(Integer::intValue).toArray();
            GenerationResult predicted = decoder.generate(GenerationRequest.builder(prompt)
                .maxNewTokens(NEW_TOKENS)
                .policy(() -> new FixedPolicy(8))
                .prediction(prediction)
                .build());
            assertThat(predicted.tokenIds()).as("prompt %d, prediction", p).containsExactly(answer);
            assertThat(predicted.proposer()).isEqualTo("prediction");
            stats.add(predicted.stats());
            generated += answer.length;
        }
        // most of the answer came from the prediction, past each edit
        assertThat(stats.accepted()).isGreaterThan(generated * 3 / 4);
        assertThat(stats.draftCalls()).isZero();
    }

    private static GenerationStats compareAll(DecoderModel draft) {
        ModelPair plainModels = new ModelPair(target, null);
        ModelPair pair = new ModelPair(target, draft);
        SpeculativeDecoder plainDecoder = new SpeculativeDecoder(plainModels);
        SpeculativeDecoder speculativeDecoder = new SpeculativeDecoder(pair);
        GenerationStats total = new GenerationStats();
        for (int p = 0; p < prompts.size(); p++) {
            int[] prompt = prompts.get(p);
            GenerationResult plain = plainDecoder
                .generate(GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).policy(PlainPolicy::new).build());
            for (int gamma : GAMMAS) {
                GenerationResult speculative = speculativeDecoder.generate(GenerationRequest.builder(prompt)
                    .maxNewTokens(NEW_TOKENS)
                    .policy(() -> new FixedPolicy(gamma))
                    .build());
                assertThat(speculative.tokenIds()).as("prompt %d, γ = %d, draft %s", p, gamma, draft.name())
                    .containsExactly(plain.tokenIds());
                assertThat(speculative.text()).isEqualTo(plain.text());
                assertThat(speculative.finishReason()).isEqualTo(plain.finishReason());
                total.add(speculative.stats());
            }
        }
        return total;
    }

}
